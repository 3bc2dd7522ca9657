"""Statements over many rows at once, the writer's hot path: inserts straight to the driver,
and look-ups by a list of values, each written the way its engine answers fastest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import ARRAY, Boolean, ColumnElement, Connection, LargeBinary, Select, Table, and_, any_, bindparam, func
from sqlmodel import Session

# Values per IN list on SQLite (with up to 50 feed ids beside it: under 999, the parameter
# limit of builds before 3.32).
_IN_CHUNK = 900

# Values both drivers (sqlite3, psycopg) take as they are: bytes for a BLOB/bytea, and bools
# (SQLite stores True as 1, what SQLAlchemy's processor would pass). Their processors only
# wrapped or re-checked each value, ~8 % of the writer's time per article.
_NATIVE_TYPES = (LargeBinary, Boolean)


def insert_rows(connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """Rows straight to the driver, with the bind processing the drivers need (UTC
    datetimes, floats; not bytes or bools, _NATIVE_TYPES) applied here: SQLAlchemy's generic
    per-row parameter handling costs several times what SQLite spends inserting a row, on
    the 20,000 rows of a cold pass and the 32 band rows per candidate. SQLite takes them as
    one executemany of the statement SQLAlchemy compiles; PostgreSQL as a COPY, which
    inserts them a page at a time where executemany runs a statement per row (its executor
    start, index opening and bind parsing: 0.3 s of the server's and 0.3 s of the writer's
    CPU time per 20,000 articles)."""
    dialect = connection.dialect
    processors = [
        (index, processor)
        for index, name in enumerate(columns)
        if not isinstance(table.c[name].type, _NATIVE_TYPES)
        and (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors:
        rows = [_processed(row, processors) for row in rows]
    if dialect.name == "postgresql":
        _copy_rows(connection, table, columns, rows)
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup or ()]
        params: list = [tuple(row[i] for i in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    connection.exec_driver_sql(str(compiled), params)


def _copy_rows(connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """COPY … FROM STDIN in psycopg's text format (None is NULL, bytes go as bytea), inside
    the connection's transaction. A column left out gets its server default, as with INSERT;
    a Python-side default (SQLAlchemy's) is not applied: callers name every such column."""
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(name) for name in columns)}) FROM STDIN"
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:  # type: ignore[attr-defined]  # psycopg's cursor
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _processed(row: tuple, processors: list[tuple[int, Callable[[object], object]]]) -> tuple:
    values = list(row)
    for index, processor in processors:
        values[index] = processor(values[index])
    return tuple(values)


@dataclass(frozen=True)
class Among:
    """`column IN (values)` for one chunk of a look-up (or for other values given). On
    PostgreSQL it is `column = ANY(array)`, one parameter: an IN list of 900 values cost the
    writer more than the look-up itself (SQLAlchemy rendering a placeholder per value,
    psycopg re-splitting the long statement, the server parsing and planning it afresh each
    time), where the array's statement is the same text every time, so it is prepared once."""

    chunk: Sequence
    postgres: bool

    def __call__(self, column: ColumnElement, values: Sequence | None = None) -> ColumnElement[bool]:
        values = self.chunk if values is None else values
        if self.postgres:
            return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
        return column.in_(values)


def select_in(session: Session, query_for: Callable[[Among], Select], values: Sequence) -> list:
    """The rows of a query over a list of values, `query_for(among)` saying where they go
    (`among(Article.guid)`). A group of 50 large feeds can hold tens of thousands of guids:
    on SQLite the query runs once per chunk of _IN_CHUNK values (a statement may carry at
    most 32,766 parameters, 999 on builds before 3.32); on PostgreSQL once, with an array."""
    postgres = session.get_bind().dialect.name == "postgresql"
    size = max(len(values), 1) if postgres else _IN_CHUNK
    rows: list = []
    for start in range(0, len(values), size):
        rows.extend(session.exec(query_for(Among(values[start : start + size], postgres))).all())
    return rows


def select_pairs(session: Session, query: Select, first: ColumnElement, second: ColumnElement, pairs: Sequence[tuple]) -> list:
    """The rows of `query` whose (first, second) is one of `pairs`: the articles of a batch
    by (feed, guid). On PostgreSQL the pairs are a table joined on the two columns, one
    index probe per pair: PostgreSQL 15 answers `feed_id = ANY(..) AND guid = ANY(..)` with
    a probe per combination, 25 feeds x 1,000 guids a group, 35 ms where the join takes 2.
    On SQLite two IN lists, which it answers in a few ms: rows of a feed's guid found under
    another feed of the batch may come back too, so callers look up the pair they need."""
    if not pairs:
        return []
    if session.get_bind().dialect.name == "postgresql":
        keys = func.unnest(
            bindparam(None, [pair[0] for pair in pairs], type_=ARRAY(first.type)),
            bindparam(None, [pair[1] for pair in pairs], type_=ARRAY(second.type)),
        ).table_valued("first", "second").render_derived()
        return list(session.exec(query.join(keys, and_(first == keys.c.first, second == keys.c.second))).all())
    firsts = sorted({pair[0] for pair in pairs})
    return select_in(session, lambda among: query.where(among(first, firsts), among(second)), sorted({pair[1] for pair in pairs}))
