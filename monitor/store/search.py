"""Archive search, the database part: the index on each engine and the query against it.

SQLite: `article_search`, a contentless FTS5 table (rowid = article.id) over the search words
of title and text (monitor.search.index_text), tokenised by FTS5's `ascii` tokenizer: the
words are normalised already, so only spaces separate them, and it costs half of unicode61.
Contentless: the article table holds the text; the index is ~0.75 KB an article. A row of a
contentless table is removed by handing FTS5 the words it was indexed with, which
`index_text` recomputes from the stored text (see reindex_article).

PostgreSQL: `article_search(article_id, document)`, a tsvector of the same words (title
weighted A, text B, parsed by the `simple` configuration) with a GIN index.

Both: every query word or phrase must match; title matches rank above text-only matches,
then by BM25 (SQLite) or ts_rank (PostgreSQL). User text never reaches the query language:
the terms are word characters only, double-quoted for FTS5 and bound as parameters of
phraseto_tsquery for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, bindparam, text

from monitor.models import UTCDateTime
from monitor.search import SearchHit, SearchQuery, SearchRequest, index_text

log = structlog.get_logger(__name__)

SEARCH_TABLE = "article_search"
REBUILD_BATCH = 1000
# A query matching more articles than this ranks the newest this many of them: ranking all
# of a common word's matches (a Kuwaiti archive's «الكويت») would cost time in proportion to
# the archive; the newest are what a reader of news asks for first.
CANDIDATES = 5000
# How long before its publication date an article may have been stored and still be found
# by --since: a date filter is first an id range by storage time (see _first_id_seen_since).
SEEN_BEFORE_PUBLISHED = timedelta(days=1)  # articles read, normalised and indexed at a time by a (re)build

_TITLE_WEIGHT, _BODY_WEIGHT = 10.0, 1.0


def is_search_index(name: str | None) -> bool:
    """The names of the search index's tables (and FTS5's shadow tables on SQLite): engine-
    specific objects the SQLModel metadata does not describe, for schema comparisons."""
    return bool(name) and (name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_"))  # type: ignore[union-attr]


# -- building the index ------------------------------------------------------------------------


def create_index(connection: Connection) -> None:
    """The empty index (migration 0009)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5(title, body, content='', tokenize='ascii')"
        )
    else:
        connection.exec_driver_sql(
            f"CREATE TABLE {SEARCH_TABLE} (article_id BIGINT PRIMARY KEY REFERENCES article (id),"
            " document TSVECTOR NOT NULL)"
        )


def create_postgres_gin(connection: Connection) -> None:
    """Built after the rows are in: one sorted build is far cheaper than growing it row by row."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"CREATE INDEX ix_{SEARCH_TABLE}_document ON {SEARCH_TABLE} USING gin (document)")


def drop_index(connection: Connection) -> None:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")


def fill_index(connection: Connection, batch: int | None = None) -> int:
    """Index every stored article, `batch` at a time in id order (memory: one batch)."""
    batch = batch or REBUILD_BATCH
    last_id, indexed = 0, 0
    while True:
        rows = connection.execute(
            text("SELECT id, title, summary FROM article WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last_id, "n": batch},
        ).all()
        if not rows:
            log.info("search index built", articles=indexed)
            return indexed
        insert_rows(connection, [(row.id, index_text(row.title), index_text(row.summary)) for row in rows])
        last_id, indexed = rows[-1].id, indexed + len(rows)


def rebuild_index(connection: Connection) -> int:
    """Drop and build the index again: for a migration that changes monitor.search's words."""
    drop_index(connection)
    create_index(connection)
    indexed = fill_index(connection)
    create_postgres_gin(connection)
    return indexed


# -- keeping it in step with the articles -------------------------------------------------------


def insert_rows(connection: Connection, rows: Sequence[tuple[int, str, str]]) -> None:
    """Index articles by id: (article id, title words, text words) from monitor.search.index_text."""
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"INSERT INTO {SEARCH_TABLE} (rowid, title, body) VALUES (?, ?, ?)", list(rows))
    else:
        connection.exec_driver_sql(f"INSERT INTO {SEARCH_TABLE} (article_id, document) VALUES {_PG_DOCUMENT}", list(rows))


def catch_up(engine: Engine, batch: int = REBUILD_BATCH) -> int:
    """Index every article stored since the last catch-up, `batch` per transaction, and
    return how many. The writer only marks new articles `search_pending`: indexing inside
    its transactions tripled the writer's time (bench/store_bench.py), so the daemon calls
    this after each polling pass, and a search calls it first so that it sees everything.
    Two daemons may run it at once: each batch takes its rows with FOR UPDATE SKIP LOCKED on
    PostgreSQL; SQLite has one writer at a time."""
    indexed = 0
    while True:
        with engine.begin() as connection:
            done = index_pending(connection, batch)
        indexed += done
        if done < batch:
            if indexed:
                log.debug("search index caught up", articles=indexed)
            return indexed


def index_pending(connection: Connection, batch: int = REBUILD_BATCH) -> int:
    """Index up to `batch` pending articles in the caller's transaction."""
    lock = " FOR UPDATE SKIP LOCKED" if connection.dialect.name == "postgresql" else ""
    rows = connection.execute(
        text(f"SELECT id, title, summary FROM article WHERE search_pending ORDER BY id LIMIT :n{lock}"), {"n": batch}
    ).all()
    if not rows:
        return 0
    insert_rows(connection, [(row.id, index_text(row.title), index_text(row.summary)) for row in rows])
    ids = [row.id for row in rows]
    connection.execute(
        text("UPDATE article SET search_pending = :no WHERE id IN :ids").bindparams(bindparam("ids", expanding=True)),
        {"no": False, "ids": ids},
    )
    return len(rows)


def reindex_article(connection: Connection, article_id: int, old: tuple[str, str], new: tuple[str, str]) -> None:
    """An article's text changed (repair): its index row follows. `old` and `new` are its
    (title, summary) as stored before and after. A contentless FTS5 row is deleted by giving
    the words it was indexed with, so they are recomputed from the old text."""
    title, body = index_text(new[0]), index_text(new[1])
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, title, body) VALUES ('delete', ?, ?, ?)",
            (article_id, index_text(old[0]), index_text(old[1])),
        )
        connection.exec_driver_sql(
            f"INSERT INTO {SEARCH_TABLE} (rowid, title, body) VALUES (?, ?, ?)", (article_id, title, body)
        )
    else:
        connection.exec_driver_sql(
            f"UPDATE {SEARCH_TABLE} SET document = setweight(to_tsvector('simple', %s), 'A')"
            " || setweight(to_tsvector('simple', %s), 'B') WHERE article_id = %s",
            (title, body, article_id),
        )


_PG_DOCUMENT = "(%s, setweight(to_tsvector('simple', %s), 'A') || setweight(to_tsvector('simple', %s), 'B'))"


# -- querying ---------------------------------------------------------------------------------


def search_archive(engine: Engine, request: SearchRequest) -> list[SearchHit]:
    catch_up(engine)  # what the last polling pass stored is searchable too
    with engine.connect() as connection:
        return search(connection, request)


def search(connection: Connection, request: SearchRequest) -> list[SearchHit]:
    """The best `request.limit` matches, title matches first."""
    floor = 0
    if request.since is not None:
        floor = _first_id_seen_since(connection, request.since - SEEN_BEFORE_PUBLISHED)
        if floor is None:
            return []
    if connection.dialect.name == "sqlite":
        statement, params = _sqlite_statement(request)
    else:
        statement, params = _postgres_statement(request)
    params["floor"] = floor
    clause = text(statement)
    if request.since is not None:  # compared as stored: the column's own bind processing
        clause = clause.bindparams(bindparam("since", type_=UTCDateTime()))
    rows = connection.execute(clause.columns(published_at=UTCDateTime()), params).mappings().all()
    return [_hit(row) for row in rows]


def _first_id_seen_since(connection: Connection, moment: datetime) -> int | None:
    """The id of the first article stored at or after `moment` (first_seen_at is indexed):
    ids grow with the time articles are stored, so a date filter becomes an id range the
    index can seek to, instead of a check of every match's date (564 ms for a common word
    over a week of a 1M-article archive, 24 ms with the range)."""
    row = connection.execute(
        text("SELECT id FROM article WHERE first_seen_at >= :moment ORDER BY first_seen_at LIMIT 1").bindparams(
            bindparam("moment", type_=UTCDateTime())
        ),
        {"moment": moment},
    ).first()
    return None if row is None else int(row[0])


def fts5_expression(query: SearchQuery) -> str:
    """The FTS5 MATCH expression: every term, each an OR of its forms, each form a quoted
    phrase. Terms hold word characters only; quotes are doubled all the same."""
    return " AND ".join(
        "(" + " OR ".join(_fts5_phrase(form) for form in term.alternatives()) + ")" for term in query.terms
    )


def _fts5_phrase(words: tuple[str, ...]) -> str:
    return '"' + " ".join(words).replace('"', '""') + '"'


_COLUMNS = (
    "a.id, a.link, a.title, a.summary, f.name AS source, a.feed_id, a.published_at, a.watch, a.flagged,"
    " a.story_id"
)


def _filters(wanted: SearchRequest, params: dict[str, object]) -> str:
    clauses = []
    if wanted.since is not None:
        clauses.append("a.published_at >= :since")
        params["since"] = wanted.since
    if wanted.flagged or wanted.watch is not None:
        clauses.append("a.flagged")
    if wanted.watch is not None:
        clauses.append("a.watch = :watch")
        params["watch"] = wanted.watch
    return "".join(f" AND {clause}" for clause in clauses)


def _sqlite_statement(request: SearchRequest) -> tuple[str, dict[str, object]]:
    """The newest CANDIDATES matches (FTS5 walks its doclists by descending rowid and stops
    there, so BM25 is computed for them only), then ranked; the article and feed columns
    are read for the `limit` results only. Flagged and watch are an id list read once from
    the `flagged` index ("+rowid": checked against it, not used to drive the scan): joining
    each match to its article cost 238 ms for a common word over 1M articles, this 25 ms."""
    params: dict[str, object] = {"match": fts5_expression(request.query), "limit": request.limit,
                                 "candidates": CANDIDATES}
    where, join = "", ""
    if request.since is not None:
        join, where = f" JOIN article a ON a.id = {SEARCH_TABLE}.rowid", " AND a.published_at >= :since"
        params["since"] = request.since
    if request.flagged or request.watch is not None:
        watch = " AND watch = :watch" if request.watch is not None else ""
        where += f" AND +{SEARCH_TABLE}.rowid IN (SELECT id FROM article WHERE flagged = 1{watch})"
        params["watch"] = request.watch
    statement = (
        f"SELECT {_COLUMNS}, m.score, m.in_title FROM ("
        f"SELECT {SEARCH_TABLE}.rowid AS id, -bm25({SEARCH_TABLE}, {_TITLE_WEIGHT}, {_BODY_WEIGHT}) AS score,"
        f" bm25({SEARCH_TABLE}, 1.0, 0.0) < 0 AS in_title FROM {SEARCH_TABLE}{join}"
        f" WHERE {SEARCH_TABLE} MATCH :match AND {SEARCH_TABLE}.rowid >= :floor{where}"
        f" ORDER BY {SEARCH_TABLE}.rowid DESC LIMIT :candidates) m"
        " JOIN article a ON a.id = m.id JOIN feed f ON f.id = a.feed_id"
        " ORDER BY m.in_title DESC, m.score DESC, a.published_at DESC LIMIT :limit"
    )
    return statement, params


def _postgres_statement(request: SearchRequest) -> tuple[str, dict[str, object]]:
    """As on SQLite: the newest CANDIDATES matches (ids from the GIN index), then ranked."""
    params: dict[str, object] = {"limit": request.limit, "candidates": CANDIDATES}
    terms = []
    for term_index, term in enumerate(request.query.terms):
        forms = []
        for form_index, form in enumerate(term.alternatives()):
            name = f"t{term_index}_{form_index}"
            params[name] = " ".join(form)
            forms.append(f"phraseto_tsquery('simple', :{name})")
        terms.append("(" + " || ".join(forms) + ")")
    tsquery = " && ".join(terms)
    where = _filters(request, params)
    join = " JOIN article a ON a.id = s.article_id" if where else ""
    statement = (
        f"WITH q AS (SELECT {tsquery} AS query),"
        f" m AS (SELECT s.article_id AS id, s.document FROM q, {SEARCH_TABLE} s{join}"
        f" WHERE s.document @@ q.query AND s.article_id >= :floor{where}"
        # "+ 0": not the primary key's order, or the planner walks it backwards testing each
        # row's document and reads the whole table for a rare word (600 ms at 100k articles)
        " ORDER BY s.article_id + 0 DESC LIMIT :candidates)"
        f" SELECT {_COLUMNS}, ts_rank('{{0.1, 0.2, 0.4, 1.0}}', m.document, q.query) AS score,"
        " ts_rank('{0, 0, 0, 1}', m.document, q.query) > 0 AS in_title"
        " FROM q, m JOIN article a ON a.id = m.id JOIN feed f ON f.id = a.feed_id"
        " ORDER BY in_title DESC, score DESC, a.published_at DESC LIMIT :limit"
    )
    return statement, params


def _hit(row: object) -> SearchHit:
    return SearchHit(
        id=int(row["id"]),  # type: ignore[index]
        url=row["link"],  # type: ignore[index]
        title=row["title"],  # type: ignore[index]
        summary=row["summary"],  # type: ignore[index]
        source=row["source"] or row["feed_id"],  # type: ignore[index]
        feed_id=row["feed_id"],  # type: ignore[index]
        published=row["published_at"],  # type: ignore[index]
        watch=row["watch"],  # type: ignore[index]
        flagged=bool(row["flagged"]),  # type: ignore[index]
        story=row["story_id"],  # type: ignore[index]
        score=round(float(row["score"]), 4),  # type: ignore[index]
        in_title=bool(row["in_title"]),  # type: ignore[index]
    )


__all__ = [
    "SEARCH_TABLE",
    "create_index",
    "fill_index",
    "catch_up",
    "index_pending",
    "insert_rows",
    "is_search_index",
    "rebuild_index",
    "reindex_article",
    "search",
    "search_archive",
]
