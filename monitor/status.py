"""`monitor status`: how the monitor is doing, on one screen, without reading logs (#11).

Everything is read from the database, so the answer is the same from any host and whether or
not a daemon runs: a daemon says it is alive with a heartbeat row (`daemon`, refreshed every
HEARTBEAT_SECONDS, deleted at a clean stop); the rest are a few aggregate queries, each over an
indexed column or the small feed, digest and delivery tables. `--json` is a contract: its keys
are documented in the README ("Status and metrics"); keys may be added, never renamed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import case, delete, func, text, update
from sqlalchemy.engine import make_url
from sqlmodel import select

from monitor import __version__
from monitor.config import Config
from monitor.models import Article, DaemonProcess, Delivery, DigestRun, Feed, utcnow
from monitor.schedule import latest_slot
from monitor.store import (
    HOST,
    Store,
    current_revision,
    held_by_dead_process,
    make_engine,
    upgrade,
)
from monitor.store.engine import masked

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 30
SILENT_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)  # no heartbeat for this long: not running
WORST_FEEDS = 5
STATUS_VERSION = 1  # of the --json document; raised only if a key changes meaning


# -- the heartbeat the daemon writes --------------------------------------------------------------


def register_daemon(store: Store, owner: str, now: datetime, metrics_listen: str | None) -> None:
    """Record this daemon as running (and drop the rows of this host's daemons that died
    without a clean stop, so they do not linger as "gone" for ever)."""
    host, _, pid = owner.rpartition(":")
    with store.session() as session:
        for row in session.exec(select(DaemonProcess).where(DaemonProcess.host == HOST)):
            if row.owner == owner or held_by_dead_process(row.owner):
                session.delete(row)
        session.flush()
        session.add(
            DaemonProcess(owner=owner, host=host, pid=int(pid), started_at=now, heartbeat_at=now,
                          version=__version__, metrics_listen=metrics_listen)
        )
        session.commit()


def heartbeat(store: Store, owner: str, now: datetime) -> None:
    with store.session() as session:
        session.execute(update(DaemonProcess).where(DaemonProcess.owner == owner).values(heartbeat_at=now))  # type: ignore[arg-type]
        session.commit()


def unregister_daemon(store: Store, owner: str) -> None:
    with store.session() as session:
        session.execute(delete(DaemonProcess).where(DaemonProcess.owner == owner))  # type: ignore[arg-type]
        session.commit()


# -- what status reports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonStatus:
    owner: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    running: bool  # heartbeat within SILENT_AFTER
    version: str
    metrics_listen: str | None


@dataclass(frozen=True)
class FeedProblem:
    id: str
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None


@dataclass(frozen=True)
class FeedCounts:
    ok: int
    failing: int
    disabled: int
    never_polled: int
    worst: tuple[FeedProblem, ...]


@dataclass(frozen=True)
class ArticleCounts:
    stored: int
    flagged: int
    flagged_by_watch: dict[str, int]


@dataclass(frozen=True)
class DigestStatus:
    id: str
    last_built_at: datetime | None
    last_slot: datetime | None
    last_stories: int | None
    next_at: datetime


@dataclass(frozen=True)
class DatabaseStatus:
    engine: str
    url: str
    size_bytes: int | None
    revision: str | None


@dataclass(frozen=True)
class Status:
    generated_at: datetime
    daemon_running: bool
    daemons: tuple[DaemonStatus, ...]
    feeds: FeedCounts
    articles_24h: ArticleCounts
    digests: tuple[DigestStatus, ...]
    deliveries: dict[str, int]
    database: DatabaseStatus


def open_status_store(config: Config) -> Store:
    """The database brought to the latest schema (as every command does) but, unlike
    open_store, with the feed table left as the daemon has it: status reports, it does not
    apply a config the daemon may not have loaded yet."""
    engine = make_engine(config.database_url)
    upgrade(engine)
    return Store(engine)


def collect_status(store: Store, config: Config, now: datetime | None = None) -> Status:
    now = now or utcnow()
    daemons = read_daemons(store, now)
    return Status(
        generated_at=now,
        daemon_running=any(d.running for d in daemons),
        daemons=daemons,
        feeds=read_feeds(store),
        articles_24h=read_articles(store, [w.id for w in config.watches], now - timedelta(hours=24), now),
        digests=read_digests(store, config, now),
        deliveries=read_deliveries(store),
        database=read_database(store),
    )


def read_daemons(store: Store, now: datetime) -> tuple[DaemonStatus, ...]:
    with store.session() as session:
        rows = session.exec(select(DaemonProcess).order_by(DaemonProcess.started_at)).all()
    return tuple(
        DaemonStatus(row.owner, row.host, row.pid, row.started_at, row.heartbeat_at,
                     now - row.heartbeat_at <= SILENT_AFTER, row.version, row.metrics_listen)
        for row in rows
    )


def read_feeds(store: Store) -> FeedCounts:
    with store.session() as session:
        enabled = Feed.enabled.is_(True)  # type: ignore[attr-defined]
        polled = Feed.last_polled_at.is_not(None)  # type: ignore[union-attr]
        row = session.exec(
            select(
                func.sum(case((enabled & polled & (Feed.consecutive_failures == 0), 1), else_=0)),
                func.sum(case((enabled & (Feed.consecutive_failures > 0), 1), else_=0)),
                func.sum(case((~enabled, 1), else_=0)),
                func.sum(case((enabled & ~polled & (Feed.consecutive_failures == 0), 1), else_=0)),
            )
        ).one()
        worst = session.exec(
            select(Feed.id, Feed.consecutive_failures, Feed.last_error, Feed.last_success_at)
            .where(enabled, Feed.consecutive_failures > 0)
            .order_by(Feed.consecutive_failures.desc(), Feed.id)  # type: ignore[attr-defined]
            .limit(WORST_FEEDS)
        ).all()
    ok, failing, disabled, never = (int(value or 0) for value in row)
    return FeedCounts(ok, failing, disabled, never, tuple(FeedProblem(*item) for item in worst))


def read_articles(store: Store, watches: list[str], since: datetime, until: datetime) -> ArticleCounts:
    """By first_seen_at (indexed): what this monitor stored in the window, whatever the
    articles' own publication dates. The window is closed at both ends so that SQLite's
    planner (no statistics) searches the first_seen_at index: with `>= since` alone it
    scanned the whole table in ix_article_flagged order for the GROUP BY (1.6 s at 100k
    articles, bench/archive_bench.py)."""
    with store.session() as session:
        rows = session.exec(
            select(Article.flagged, Article.watch, func.count())
            .where(Article.first_seen_at >= since, Article.first_seen_at <= until)
            .group_by(Article.flagged, Article.watch)
        ).all()
    by_watch = dict.fromkeys(watches, 0)
    stored = flagged = 0
    for is_flagged, watch, count in rows:
        stored += count
        if is_flagged:
            flagged += count
            by_watch[watch or ""] = by_watch.get(watch or "", 0) + count
    return ArticleCounts(stored, flagged, by_watch)


def read_digests(store: Store, config: Config, now: datetime) -> tuple[DigestStatus, ...]:
    result = []
    with store.session() as session:
        for digest in config.digests:
            last = session.exec(
                select(DigestRun).where(DigestRun.digest_id == digest.id).order_by(DigestRun.slot.desc()).limit(1)  # type: ignore[attr-defined]
            ).first()
            result.append(
                DigestStatus(
                    id=digest.id,
                    last_built_at=last.created_at if last else None,
                    last_slot=last.slot if last else None,
                    last_stories=last.story_count if last else None,
                    next_at=next_slot(digest.at, config, now),
                )
            )
    return tuple(result)


def next_slot(at: str, config: Config, now: datetime) -> datetime:
    """The first scheduled time after `now`: the latest slot a day ahead (latest_slot
    follows daylight saving, so a 23- or 25-hour day still has its one slot)."""
    candidate = latest_slot(at, config.tz, now + timedelta(days=1))
    return candidate if candidate > now else latest_slot(at, config.tz, now + timedelta(days=2))


def read_deliveries(store: Store) -> dict[str, int]:
    with store.session() as session:
        rows = dict(
            session.exec(
                select(Delivery.status, func.count())
                .where(Delivery.status.in_(("pending", "failed")))  # type: ignore[attr-defined]
                .group_by(Delivery.status)
            ).all()
        )
    return {"pending": int(rows.get("pending", 0)), "failed": int(rows.get("failed", 0))}


def read_database(store: Store) -> DatabaseStatus:
    engine = store.engine
    url = engine.url.render_as_string(hide_password=False)
    return DatabaseStatus(engine.dialect.name, masked(url), database_size(store), current_revision(engine))


def database_size(store: Store) -> int | None:
    """SQLite: the file and its write-ahead log; PostgreSQL: pg_database_size."""
    engine = store.engine
    if engine.dialect.name == "sqlite":
        database = make_url(engine.url.render_as_string(hide_password=False)).database
        if not database or database == ":memory:":
            return None
        paths = [Path(database + suffix) for suffix in ("", "-wal")]
        return sum(os.path.getsize(path) for path in paths if path.exists())
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)


# -- output ----------------------------------------------------------------------------------------


def status_json(status: Status) -> dict[str, Any]:
    """The --json document (README "Status and metrics"): datetimes as ISO 8601 UTC."""
    data = asdict(status)
    data["version"] = STATUS_VERSION
    return _iso(data)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _iso(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_iso(item) for item in value]
    return value


def render_text(status: Status, tz: Any) -> str:
    """One screen: the daemon, feeds, the last day's articles, digests, outbox, database."""
    lines = [_daemon_line(status, tz)]
    for daemon in status.daemons:
        if not daemon.running:
            lines.append(f"  gone:    {daemon.owner}, last heartbeat {_local(daemon.heartbeat_at, tz)}")
    feeds = status.feeds
    lines.append(f"Feeds:      {feeds.ok} ok, {feeds.failing} failing, {feeds.disabled} disabled, {feeds.never_polled} not polled yet")
    for problem in feeds.worst:
        error = (problem.last_error or "")[:90]
        lines.append(f"  {problem.id:<24} {problem.consecutive_failures:>4} failures  {error}")
    articles = status.articles_24h
    per_watch = ", ".join(f"{watch} {count}" for watch, count in articles.flagged_by_watch.items()) or "no watches"
    lines.append(f"Last 24 h:  {articles.stored} articles stored, {articles.flagged} flagged ({per_watch})")
    for digest in status.digests:
        last = (f"last {_local(digest.last_slot, tz)} ({digest.last_stories} stories)"
                if digest.last_slot else "never built")
        lines.append(f"Digest {digest.id}: {last}, next {_local(digest.next_at, tz)}")
    if not status.digests:
        lines.append("Digests:    none configured")
    lines.append(f"Outbox:     {status.deliveries['pending']} pending, {status.deliveries['failed']} failed")
    db = status.database
    size = f"{db.size_bytes / 1e6:.1f} MB" if db.size_bytes is not None else "size unknown"
    lines.append(f"Database:   {db.engine} {db.url}, {size}, schema revision {db.revision or 'none'}")
    return "\n".join(lines) + "\n"


def _daemon_line(status: Status, tz: Any) -> str:
    running = [d for d in status.daemons if d.running]
    if not running:
        return "Daemon:     not running against this database"
    parts = [f"{d.owner} since {_local(d.started_at, tz)}" + (f", metrics {d.metrics_listen}" if d.metrics_listen else "")
             for d in running]
    return f"Daemon:     running ({'; '.join(parts)})"


def _local(value: datetime | None, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if value else "never"
