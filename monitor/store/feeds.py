"""The feed table: what the config lists, which feeds are due, who polls them, how they fare."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Integer, bindparam, func, or_, update
from sqlmodel import Session, select

from monitor.models import Article, Feed
from monitor.store.engine import Database
from monitor.process import held_by_dead_process

if TYPE_CHECKING:
    from monitor.store.records import PollResult, StoredPoll

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FeedHealth:
    id: str
    url: str
    enabled: bool
    last_success_at: datetime | None
    last_status: str | None
    last_http_status: int | None
    last_error: str | None
    consecutive_failures: int
    next_poll_at: datetime
    has_etag: bool
    has_last_modified: bool
    article_count: int
    last_warning: str | None = None


@dataclass(frozen=True)
class DueFeed:
    """What a poll needs to know about a feed it has claimed."""

    id: str
    url: str
    etag: str | None
    last_modified: str | None
    last_body_hash: str | None
    interval_seconds: int
    consecutive_failures: int
    language: str | None
    # Who claimed it: the write of the poll's result checks the feed is still leased to this
    # owner (record_polls). None: not claimed through a lease (tests, tools), not checked.
    lease_owner: str | None = None


class FeedConfigLike:  # pragma: no cover - typing aid only
    """The attributes sync_feeds reads from monitor.config.FeedConfig."""

    id: str
    url: str
    name: str
    language: str
    enabled: bool
    interval: timedelta | None


# Suspect (maybe garbled) articles are left out so that they are classified again and
# repaired when the feed sends them clean (monitor.store.repair).
_KNOWN_GUIDS = (
    select(Article.guid)
    .where(Article.feed_id == bindparam("feed_id"), Article.text_suspect.is_(False))  # type: ignore[attr-defined]
    .order_by(Article.id.desc())  # type: ignore[union-attr]
    .limit(bindparam("limit", type_=Integer))
)


class FeedStore(Database):
    """Reads and writes of the feed table."""

    # -- feeds ---------------------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[FeedConfigLike], default_interval: timedelta, now: datetime) -> None:
        """Make the feed table match the config: new feeds are due now, removed ones disabled.

        A feed whose configured URL is unchanged keeps its stored URL, which may be the target
        of a permanent redirect learned while polling.
        """
        configured = {feed.id: feed for feed in feeds}
        with self.session() as session:
            stored = {row.id: row for row in session.exec(select(Feed))}
            for feed_id, feed in configured.items():
                interval = int((feed.interval or default_interval).total_seconds())
                row = stored.get(feed_id)
                if row is None:
                    session.add(
                        Feed(
                            id=feed_id,
                            url=feed.url,
                            configured_url=feed.url,
                            name=feed.name,
                            language=feed.language,
                            enabled=feed.enabled,
                            interval_seconds=interval,
                            next_poll_at=now,
                        )
                    )
                    continue
                if row.configured_url != feed.url:
                    row.url = feed.url
                    row.configured_url = feed.url
                    row.etag = row.last_modified = row.last_body_hash = None
                    row.next_poll_at = now
                row.name, row.language, row.enabled = feed.name, feed.language, feed.enabled
                if row.interval_seconds != interval:
                    row.interval_seconds = interval
                    row.next_poll_at = min(row.next_poll_at, now + timedelta(seconds=interval))
                session.add(row)
            for feed_id, row in stored.items():
                if feed_id not in configured and row.enabled:
                    row.enabled = False
                    session.add(row)
            session.commit()

    def claim_due_feeds(
        self,
        now: datetime,
        owner: str,
        lease: timedelta,
        limit: int = 1000,
        only: Iterable[str] | None = None,
    ) -> list[DueFeed]:
        """Lease the feeds that are due, so that no other poller takes them meanwhile.

        On PostgreSQL the candidate rows are locked with SKIP LOCKED, so several daemons sharing
        one database each get a disjoint set; on SQLite the write lock serialises claims.
        The UPDATE itself is conditional too (only rows whose lease is free or has run out,
        RETURNING the ones it took): of two claims racing for one row, whatever the engine
        or isolation, one takes it and the other does not poll it.
        With `only`, the named feeds are claimed whether due or not (`monitor poll --feed`).
        """
        with self.session() as session:
            query = select(Feed.id).where(Feed.enabled.is_(True))  # type: ignore[attr-defined]
            query = query.where(or_(Feed.lease_until.is_(None), Feed.lease_until < now))  # type: ignore[union-attr]
            if only is not None:
                query = query.where(Feed.id.in_(list(only)))  # type: ignore[attr-defined]
            else:
                query = query.where(Feed.next_poll_at <= now)
            query = query.order_by(Feed.next_poll_at).limit(limit)
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.exec(query))
            if not ids:
                return []
            claim = (
                update(Feed)
                .where(Feed.id.in_(ids), or_(Feed.lease_until.is_(None), Feed.lease_until < now))  # type: ignore[attr-defined,union-attr]
                .values(lease_owner=owner, lease_until=now + lease)
                .returning(Feed.id)
                .execution_options(synchronize_session=False)
            )
            taken = set(session.execute(claim).scalars())
            ids = [feed_id for feed_id in ids if feed_id in taken]
            rows = session.exec(select(Feed).where(Feed.id.in_(ids))).all() if ids else []  # type: ignore[attr-defined]
            session.commit()
            order = {feed_id: position for position, feed_id in enumerate(ids)}
            return [
                DueFeed(
                    id=row.id,
                    url=row.url,
                    etag=row.etag,
                    last_modified=row.last_modified,
                    last_body_hash=row.last_body_hash,
                    interval_seconds=row.interval_seconds,
                    consecutive_failures=row.consecutive_failures,
                    language=row.language,
                    lease_owner=owner,
                )
                for row in sorted(rows, key=lambda r: order[r.id])
            ]

    def release_leases(self, owner: str, feed_ids: Sequence[str] | None = None) -> None:
        """Give back feeds this process claimed but did not finish (shutdown); with
        `feed_ids`, only those (a retiring poller must not free its successor's claims)."""
        statement = update(Feed).where(Feed.lease_owner == owner)
        if feed_ids is not None:
            statement = statement.where(Feed.id.in_(list(feed_ids)))  # type: ignore[attr-defined]
        with self.session() as session:
            session.exec(statement.values(lease_owner=None, lease_until=None))
            session.commit()

    def renew_leases(self, owner: str, feed_ids: Collection[str], until: datetime) -> int:
        """Extend to `until` the leases `owner` still holds on `feed_ids` (the feeds its polls
        are working on): the daemon's heartbeat, so that a lease outlives a slow poll but a
        killed daemon's feeds are free `lease` after its last heartbeat. One UPDATE, and only
        of rows still leased to `owner`: a feed another process took over is not taken back.
        Returns how many leases were renewed."""
        if not feed_ids:
            return 0
        ids = sorted(feed_ids)
        mine = select(Feed.id).where(Feed.lease_owner == owner, Feed.id.in_(ids))  # type: ignore[attr-defined]
        if self.engine.dialect.name == "postgresql":
            # Row locks in id order, as the writer takes them (lock_own_leases): two
            # transactions that lock in one order cannot deadlock.
            mine = mine.order_by(Feed.id).with_for_update(key_share=True)
        statement = update(Feed).where(Feed.id.in_(mine.scalar_subquery())).values(lease_until=until)  # type: ignore[attr-defined]
        with self.session() as session:
            renewed = session.execute(statement.execution_options(synchronize_session=False)).rowcount
            session.commit()
        return renewed

    def release_dead_leases(self, host: str, is_alive: Callable[[int], bool]) -> list[str]:
        """Free the feeds leased by processes of this host that no longer exist, so a restart
        after a crash polls them at once instead of waiting for the lease to expire."""
        freed = []
        with self.session() as session:
            rows = session.exec(select(Feed).where(Feed.lease_owner.like(f"{host}:%"))).all()  # type: ignore[union-attr]
            for row in rows:
                if held_by_dead_process(row.lease_owner, is_alive):
                    row.lease_owner, row.lease_until = None, None
                    session.add(row)
                    freed.append(row.id)
            session.commit()
        if freed:
            log.info("released the leases of a dead process", feeds=len(freed))
        return freed

    def overdue_feeds(self, now: datetime, intervals: int) -> list[str]:
        """Enabled feeds nobody holds (or whose holder's lease ran out) that have been due
        for `intervals` of their own polling intervals: polling has stalled."""
        with self.session() as session:
            shortest = session.exec(select(func.min(Feed.interval_seconds)).where(Feed.enabled.is_(True))).one()  # type: ignore[attr-defined]
            if shortest is None:
                return []
            query = (
                select(Feed.id, Feed.next_poll_at, Feed.interval_seconds)
                .where(Feed.enabled.is_(True))  # type: ignore[attr-defined]
                .where(or_(Feed.lease_until.is_(None), Feed.lease_until < now))  # type: ignore[union-attr]
                .where(Feed.next_poll_at < now - timedelta(seconds=intervals * shortest))
                .order_by(Feed.next_poll_at)
            )
            rows = session.exec(query).all()
        return [feed_id for feed_id, due, interval in rows if due < now - timedelta(seconds=intervals * interval)]

    def next_due_at(self) -> datetime | None:
        with self.session() as session:
            return session.exec(select(func.min(Feed.next_poll_at)).where(Feed.enabled.is_(True))).one()  # type: ignore[attr-defined]

    def known_guids(self, feed_id: str, limit: int = 2000) -> set[str]:
        """The guids of the feed's latest articles: what the parse workers may skip. Bounded
        so a feed with years of history does not ship its whole archive to a worker at every
        poll; an older entry that reappears costs a classification and is then recognised
        by the writer (feed+guid is unique)."""
        # A Core connection and a statement built once, not an ORM session and a new query:
        # asked for every changed feed at every poll, their set-up was most of the cost
        # (0.75 ms on an empty table).
        with self.engine.connect() as connection:
            return set(connection.execute(_KNOWN_GUIDS, {"feed_id": feed_id, "limit": limit}).scalars())

    def feed_health(self) -> list[FeedHealth]:
        with self.session() as session:
            rows = session.exec(select(Feed).order_by(Feed.id)).all()
            return [
                FeedHealth(
                    id=row.id,
                    url=row.url,
                    enabled=row.enabled,
                    last_success_at=row.last_success_at,
                    last_status=row.last_status,
                    last_http_status=row.last_http_status,
                    last_error=row.last_error,
                    consecutive_failures=row.consecutive_failures,
                    next_poll_at=row.next_poll_at,
                    has_etag=bool(row.etag),
                    has_last_modified=bool(row.last_modified),
                    article_count=row.article_count,
                    last_warning=row.last_warning,
                )
                for row in rows
            ]

    def article_count(self) -> int:
        with self.session() as session:
            return session.exec(select(func.count()).select_from(Article)).one()


def _feed_state(result: PollResult) -> dict[str, object]:
    """The feed columns a poll sets (article_count and consecutive_failures are counted in SQL)."""
    outcome = result.outcome
    values: dict[str, object] = {
        "last_polled_at": result.fetched_at,
        "last_status": "error" if result.error is not None else outcome.status,  # fetched, then failed to parse
        "last_http_status": outcome.http_status,
        "lease_owner": None,
        "lease_until": None,
        "next_poll_at": result.next_poll_at,
    }
    if result.error is not None:
        values["last_error"] = result.error
        return values
    values.update(last_success_at=result.fetched_at, last_error=None, consecutive_failures=0)
    if outcome.status == "ok":  # a body was parsed: its warnings replace the last ones
        values["last_warning"] = result.warning
    if outcome.status in ("ok", "unchanged"):
        # Kept on "unchanged" too: a server that rotates validators on identical bodies
        # would otherwise never earn a 304.
        values.update(etag=outcome.etag, last_modified=outcome.last_modified, last_body_hash=outcome.body_hash)
    if outcome.permanent_redirect:
        values["url"] = outcome.permanent_redirect
    return values


def lost_leases(session: Session, results: Sequence[PollResult]) -> set[str]:
    """The feeds of `results` no longer leased to the poll that claimed them: its lease ran
    out (a stalled heartbeat, a paused process) and another process claimed the feed, which
    may be polling it now or have recorded its poll already. Such a result is stale and
    must not be written over the new owner's work.

    On PostgreSQL the rows still ours are locked (FOR NO KEY UPDATE, in id order) until the
    caller commits, so no claim can slip in between this check and the write: a claim's
    SKIP LOCKED passes over them, and a claim that got there first has changed the owner
    this reads. On SQLite the database's single writer serialises the claim and the write."""
    expected = {result.feed.id: result.feed.lease_owner for result in results if result.feed.lease_owner is not None}
    if not expected:
        return set()
    query = select(Feed.id, Feed.lease_owner).where(Feed.id.in_(sorted(expected))).order_by(Feed.id)  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    holders = dict(session.exec(query).all())
    lost = {feed_id for feed_id, owner in expected.items() if holders.get(feed_id, owner) != owner}
    if lost:
        log.warning("poll outlived its lease; another process holds the feed now, result dropped",
                    feeds=sorted(lost), holders=sorted({str(holders[f]) for f in lost}))
    return lost


def update_feeds(session: Session, results: Sequence[PollResult], stored: Sequence[StoredPoll]) -> None:
    """One executemany UPDATE per shape of change (success, failure, redirect…), not one
    ORM flush per feed: the warm pass is 500 of these and nothing else."""
    table = Feed.__table__  # type: ignore[attr-defined]
    shapes: dict[tuple[tuple[str, ...], bool], list[dict[str, object]]] = {}
    for result, poll in zip(results, stored, strict=True):
        values = _feed_state(result)
        row = {f"v_{column}": value for column, value in values.items()}
        row.update(v_id=result.feed.id, v_new=poll.new)
        shapes.setdefault((tuple(values), result.error is not None), []).append(row)
    for (columns, failed), rows in shapes.items():
        assignments: dict[str, object] = {column: bindparam(f"v_{column}") for column in columns}
        assignments["article_count"] = table.c.article_count + bindparam("v_new")
        if failed:
            assignments["consecutive_failures"] = table.c.consecutive_failures + 1
        statement = update(table).where(table.c.id == bindparam("v_id")).values(assignments)
        session.connection().execute(statement, rows)
