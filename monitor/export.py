"""`monitor export`: the stored archive as JSON Lines, a contract read by tools outside this repo.

One line per stored article, ordered by id, each key's meaning fixed (new keys may be added,
none removed or changed). The rows are read from the database in chunks (`yield_per`: a
server-side cursor on PostgreSQL, a stepped cursor on SQLite) and written one at a time, so
exporting a million articles takes the memory of one chunk, not of the archive.

Times are RFC 3339 in UTC with a "Z" suffix; fractional seconds appear only when non-zero.
`--since` compares with `first_seen`: when the monitor learnt of an article, which only grows
as it runs. Filtering on `published` would silently skip an article published last week
but found today (a sitemap's back catalogue, a feed that lags, a wrong date), so a daily
`--since 1d` run would never export it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Any

import structlog
from sqlalchemy import Engine, Select, select

from monitor.durations import parse_duration
from monitor.models import Article

log = structlog.get_logger(__name__)

CHUNK_ROWS = 1000  # rows held at once; also the server-side cursor's fetch size on PostgreSQL
SINCE_EXAMPLE = "use a duration such as 30d or 12h, a date such as 2026-11-01, or a time such as 2026-11-01T08:00:00Z"

# The columns read: never `features` (a blob nobody outside needs) nor any column not exported.
_COLUMNS = (
    Article.id, Article.feed_id, Article.link, Article.title, Article.summary, Article.published_at,
    Article.first_seen_at, Article.language, Article.flagged, Article.watch, Article.score, Article.round,
    Article.decision, Article.story_id, Article.duplicate_of, Article.source_type, Article.full_text,
    Article.page_error, Article.canonical_url,
)


class ExportError(ValueError):
    """A usage error in the export's options, said in one line that names the option."""


@dataclass(frozen=True)
class ExportFilter:
    """Which articles to export; all of them when every field is left at its default."""

    since: datetime | None = None  # first seen at or after this aware UTC time
    flagged: bool = False
    watch: str | None = None  # implies flagged


# -- options (pure) -------------------------------------------------------------------------


def parse_since(value: str, now: datetime) -> datetime:
    """The aware UTC instant `--since VALUE` means: a duration back from `now`, a date (its
    midnight UTC) or an ISO 8601 time (UTC when it names no offset). Never in the future."""
    text = value.strip()
    try:
        since = _since_instant(text, now)
    except (ValueError, OverflowError):
        raise ExportError(f"--since: cannot read {value!r}: {SINCE_EXAMPLE}") from None
    if since > now:
        raise ExportError(f"--since: {value!r} is in the future (now is {iso_utc(now.replace(microsecond=0))}): nothing could match")
    return since


def _since_instant(text: str, now: datetime) -> datetime:
    if text[-1:].isalpha() and not _looks_like_a_time(text):
        return now - parse_duration(text)
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _looks_like_a_time(text: str) -> bool:
    """'2026-11-01T08:00Z' ends in a letter like '30d' does; a time has a date in front."""
    return len(text) > 10 and text[4:5] == "-" and text[:4].isdigit()


def export_filter(
    since: str | None, flagged: bool, watch: str | None, known_watches: Sequence[str], now: datetime
) -> ExportFilter:
    """The command line's options checked against the config's watches."""
    if watch is not None and watch not in known_watches:
        known = ", ".join(known_watches) or "none configured"
        raise ExportError(f"--watch: unknown watch {watch!r} (known: {known})")
    return ExportFilter(
        since=parse_since(since, now) if since is not None else None,
        flagged=flagged or watch is not None,
        watch=watch,
    )


# -- one article (pure) ----------------------------------------------------------------------


def iso_utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    moment = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.removesuffix("+00:00") + "Z"


def stored_topics(decision: str | None) -> list[str]:
    """The topics of a stored decision (Decision.to_json_dict's "topics"). Read leniently: a
    row written before topics existed, or a damaged one, exports [] instead of stopping."""
    try:
        data = json.loads(decision or "{}")
    except ValueError:
        return []
    topics = data.get("topics") if isinstance(data, dict) else None
    if not isinstance(topics, list):
        return []
    return [topic for topic in topics if isinstance(topic, str)]


def article_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's object for one stored article row (keys in the documented order)."""
    return {
        "id": int(row["id"]),
        "feed_id": row["feed_id"],
        "url": row["link"],
        "title": row["title"],
        "text": row["summary"],
        "published": iso_utc(row["published_at"]),
        "first_seen": iso_utc(row["first_seen_at"]),
        "language": row["language"],
        "flagged": bool(row["flagged"]),
        "watch": row["watch"],
        "score": float(row["score"]),
        "round": None if row["round"] is None else int(row["round"]),
        "topics": stored_topics(row["decision"]),
        "story": row["story_id"],
        "duplicate_of": row["duplicate_of"],
        "source_type": row["source_type"],
        "full_text": bool(row["full_text"]),
        "page_error": row["page_error"],
        "canonical_url": row["canonical_url"],
    }


def article_line(row: Mapping[str, Any]) -> bytes:
    """One JSON Lines line, UTF-8, Arabic as itself rather than \\u escapes."""
    return (json.dumps(article_record(row), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


# -- the database ------------------------------------------------------------------------------


def export_query(wanted: ExportFilter) -> Select[Any]:
    query = select(*_COLUMNS).order_by(Article.id)  # type: ignore[call-overload]
    if wanted.since is not None:
        query = query.where(Article.first_seen_at >= wanted.since)  # type: ignore[operator]
    if wanted.flagged:
        query = query.where(Article.flagged.is_(True))  # type: ignore[attr-defined]
    if wanted.watch is not None:
        query = query.where(Article.watch == wanted.watch)
    return query


def stored_rows(engine: Engine, wanted: ExportFilter, chunk: int = CHUNK_ROWS) -> Iterator[Mapping[str, Any]]:
    """The matching rows, fetched `chunk` at a time and handed out one by one."""
    query = export_query(wanted).execution_options(yield_per=chunk)
    with engine.connect() as connection:
        for row in connection.execute(query).mappings():
            yield row


def write_export(engine: Engine, wanted: ExportFilter, out: IO[bytes], chunk: int = CHUNK_ROWS) -> int:
    """Write every matching article to `out` as it is read; the number written. A reader that
    goes away (BrokenPipeError) ends it: the caller decides that this is not an error."""
    written = 0
    rows = stored_rows(engine, wanted, chunk)
    try:
        for row in rows:
            out.write(article_line(row))
            written += 1
        out.flush()
    finally:
        rows.close()  # the cursor and the connection go back now, not when collected
    log.debug("export written", articles=written)
    return written


def export_to_file(engine: Engine, wanted: ExportFilter, path: Path, chunk: int = CHUNK_ROWS) -> int:
    """Write the export to `path` whole or not at all: a reader never sees half an export,
    and one that fails half-way leaves any earlier file at `path` as it was. The partial file
    is created with the usual mode (0666 less the umask), as `path` itself would be."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise ExportError(f"--output {path}: cannot write there: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            written = write_export(engine, wanted, out, chunk)
        os.replace(temporary, path)
    except OSError as exc:  # a full disk, `path` a directory: said in one line, nothing left behind
        temporary.unlink(missing_ok=True)
        raise ExportError(f"--output {path}: cannot write there: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return written


__all__ = [
    "CHUNK_ROWS",
    "ExportError",
    "ExportFilter",
    "article_line",
    "article_record",
    "export_filter",
    "export_query",
    "export_to_file",
    "iso_utc",
    "parse_since",
    "stored_rows",
    "stored_topics",
    "write_export",
]
