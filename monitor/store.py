"""The database: engine set-up, migrations, and every read and write the daemon makes.

The database is the source of truth. Each write here is idempotent (a unique key decides
whether a row exists) and each feed's poll is committed in one transaction, so a crash leaves
the database as it was before or after that feed, never in between.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
import uuid

import structlog
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, Select, Table, bindparam, event, func, or_, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine, select

from monitor import dedup
from monitor.dedup import ArticleFeatures, DedupConfig
from monitor.models import Article, ArticleBand, Feed, Story, utcnow

if TYPE_CHECKING:
    from monitor.poll import Candidate, PollResult
    from monitor.rules import Decision, RuleSet

log = structlog.get_logger(__name__)

HOST = os.uname().nodename


def this_process() -> str:
    """The owner recorded on what this process leases (feeds being polled, deliveries being
    sent), so that a restart on the same host can free what a killed process held."""
    return f"{HOST}:{os.getpid()}"


def held_by_dead_process(owner: str | None, is_alive: Callable[[int], bool] | None = None) -> bool:
    """Whether a lease owner "host:pid" (of this host: callers select those) has exited."""
    pid = (owner or "").rpartition(":")[2]
    return pid.isdigit() and not (is_alive or pid_alive)(int(pid))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the user's URL names (or omits)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs to be safe under concurrent use."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config() -> AlembicConfig:
    """Alembic settings built in code, so migrations run from an installed package too."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def migrations_dir() -> Path:
    """`alembic/` beside the package in a source checkout; `monitor/migrations/` in a wheel.

    The folder has no `__init__.py` on purpose: a package named `alembic` at the top of the
    checkout would shadow the Alembic library itself."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "alembic", package / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the Alembic migrations were not installed with the package")


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest revision; a no-op when it is there already."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    log.info("database upgraded", url=engine.url.render_as_string(hide_password=True))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 (no table yet means no revision)
            return None


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


class Store:
    """All database access. Sessions are short and per operation (SQLModel's documented use)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

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
            session.exec(
                update(Feed)
                .where(Feed.id.in_(ids))  # type: ignore[attr-defined]
                .values(lease_owner=owner, lease_until=now + lease)
            )
            rows = session.exec(select(Feed).where(Feed.id.in_(ids))).all()  # type: ignore[attr-defined]
            session.commit()
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
                )
                for row in sorted(rows, key=lambda r: ids.index(r.id))
            ]

    def release_leases(self, owner: str) -> None:
        """Give back feeds this process claimed but did not finish (shutdown)."""
        with self.session() as session:
            session.exec(
                update(Feed).where(Feed.lease_owner == owner).values(lease_owner=None, lease_until=None)
            )
            session.commit()

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

    def next_due_at(self) -> datetime | None:
        with self.session() as session:
            return session.exec(select(func.min(Feed.next_poll_at)).where(Feed.enabled.is_(True))).one()  # type: ignore[attr-defined]

    def known_guids(self, feed_id: str, limit: int = 2000) -> set[str]:
        """The guids of the feed's latest articles: what the parse workers may skip. Bounded
        so a feed with years of history does not ship its whole archive to a worker at every
        poll; an older entry that reappears costs a classification and is then recognised
        by the writer (feed+guid is unique)."""
        with self.session() as session:
            query = select(Article.guid).where(Article.feed_id == feed_id).order_by(Article.id.desc()).limit(limit)  # type: ignore[union-attr]
            return set(session.exec(query))

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
                )
                for row in rows
            ]

    def article_count(self) -> int:
        with self.session() as session:
            return session.exec(select(func.count()).select_from(Article)).one()


    # -- polls -------------------------------------------------------------------------

    def record_poll(self, result: PollResult) -> StoredPoll:
        """Commit one feed's poll, its new articles and the feed's new state together."""
        with self.session() as session:
            stored = self._record(session, [result])
            session.commit()
        self._log_redirects([result])
        return stored[0]

    def record_polls(self, results: Sequence[PollResult]) -> list[StoredPoll | Exception]:
        """Commit several feeds' polls in one transaction (a group commit: the statements and
        the commit cost the same for one feed or fifty). Each feed stays all-or-nothing: a
        crash rolls back whole feeds, and if recording fails, each feed is recorded again in a
        transaction of its own so that only the failing feed gets the exception."""
        try:
            with self.session() as session:
                stored: list[StoredPoll | Exception] = list(self._record(session, results))
                session.commit()
        except Exception:
            if len(results) == 1:
                raise
            log.warning("group commit failed; recording its feeds one by one", feeds=len(results), exc_info=True)
            return [self._record_alone(result) for result in results]
        self._log_redirects(results)
        return stored

    def _record_alone(self, result: PollResult) -> StoredPoll | Exception:
        try:
            return self.record_poll(result)
        except Exception as exc:  # handed to the caller of this feed only
            return exc

    @staticmethod
    def _record(session: Session, results: Sequence[PollResult]) -> list[StoredPoll]:
        feed_ids = {result.feed.id for result in results}
        missing = feed_ids - set(session.exec(select(Feed.id).where(Feed.id.in_(feed_ids))))  # type: ignore[attr-defined]
        if missing:
            raise LookupError(f"feeds not in the database: {', '.join(sorted(missing))}")
        stored = [StoredPoll() for _ in results]
        batches: dict[tuple[str, DedupConfig], list[tuple[int, Incoming]]] = {}
        for position, result in enumerate(results):
            batch = batches.setdefault((result.rules_fingerprint, result.dedup_config), [])
            batch.extend((position, Incoming(result.feed.id, c, result.fetched_at)) for c in result.candidates)
        for (rules_fingerprint, dedup_config), batch in batches.items():
            checker = SqlDedup(session, dedup_config)
            outcomes = checker.insert_all([incoming for _, incoming in batch], rules_fingerprint)
            for (position, _), outcome in zip(batch, outcomes, strict=True):
                stored[position].add(outcome)
        _update_feeds(session, results, stored)
        for result, poll in zip(results, stored, strict=True):
            if poll.new:
                log.debug("articles stored", feed_id=result.feed.id, new=poll.new, flagged=poll.flagged)
        return stored

    @staticmethod
    def _log_redirects(results: Sequence[PollResult]) -> None:
        for result in results:
            if result.outcome.permanent_redirect:
                log.info(
                    "feed moved permanently",
                    feed_id=result.feed.id,
                    old_url=result.feed.url,
                    new_url=result.outcome.permanent_redirect,
                )

    def reclassify(self, rules: RuleSet, *, all_articles: bool = False, batch: int = 500) -> int:
        """Apply the current rules to stored articles decided under other rules."""
        changed = 0
        last_id = 0
        while True:
            with self.session() as session:
                query = select(Article).where(Article.id > last_id).order_by(Article.id).limit(batch)  # type: ignore[operator]
                if not all_articles:
                    query = query.where(Article.rules_fingerprint != rules.fingerprint)
                rows = session.exec(query).all()
                if not rows:
                    return changed
                for row in rows:
                    decision = rules.classify(row.title, row.summary)
                    if _set_decision(row, decision, rules.fingerprint):
                        changed += 1
                    session.add(row)
                    if decision.flagged:
                        if row.story_id is None:
                            row.story_id = _story_of_storyless(session, row)
                        _mark_story_flagged(session, row.story_id, row, utcnow())
                    last_id = row.id or last_id
                session.commit()


def _decision_columns(decision: Decision) -> dict[str, object]:
    return {
        "flagged": decision.flagged,
        "watch": decision.watch,
        "round": decision.round,
        "score": decision.score,
        "decision": decision_json(decision.to_json_dict()),
    }


def _set_decision(row: Article, decision: Decision, rules_fingerprint: str) -> bool:
    before = (row.flagged, row.watch, row.round)
    for key, value in _decision_columns(decision).items():
        setattr(row, key, value)
    row.rules_fingerprint = rules_fingerprint
    return before != (row.flagged, row.watch, row.round)


def _story_of_storyless(session: Session, article: Article) -> int:
    """Articles no watch could flag were stored without a story; one that new rules flag
    joins its original's story, or starts one (which its original joins too)."""
    original = session.get(Article, article.duplicate_of) if article.duplicate_of else None
    if original is not None and original.story_id is not None:
        return original.story_id
    headline = original or article
    story = Story(key=uuid.uuid4().hex, first_seen_at=headline.first_seen_at, headline_article_id=headline.id)
    session.add(story)
    session.flush()
    assert story.id is not None
    if original is not None:
        original.story_id = story.id
        session.add(original)
    return story.id


def _mark_story_flagged(session: Session, story_id: int, decision: Decision | Article, now: datetime) -> None:
    """A story becomes due for digests the moment its first member is flagged."""
    story = session.get(Story, story_id)
    if story is None:
        return
    if story.flagged_at is None:
        story.flagged_at = now
        story.watch = decision.watch
        story.round = decision.round
    story.score = max(story.score, decision.score)
    session.add(story)


def _feed_state(result: PollResult) -> dict[str, object]:
    """The feed columns a poll sets (article_count and consecutive_failures are counted in SQL)."""
    outcome = result.outcome
    values: dict[str, object] = {
        "last_polled_at": result.fetched_at,
        "last_status": outcome.status,
        "last_http_status": outcome.http_status,
        "lease_owner": None,
        "lease_until": None,
        "next_poll_at": result.next_poll_at,
    }
    if result.error is not None:
        values["last_error"] = result.error
        return values
    values.update(last_success_at=result.fetched_at, last_error=None, consecutive_failures=0)
    if outcome.status in ("ok", "unchanged"):
        # Kept on "unchanged" too: a server that rotates validators on identical bodies
        # would otherwise never earn a 304.
        values.update(etag=outcome.etag, last_modified=outcome.last_modified, last_body_hash=outcome.body_hash)
    if outcome.permanent_redirect:
        values["url"] = outcome.permanent_redirect
    return values


def _update_feeds(session: Session, results: Sequence[PollResult], stored: Sequence[StoredPoll]) -> None:
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


@dataclass(frozen=True)
class InsertOutcome:
    stored: bool  # False: the entry was already stored (same feed+guid or same canonical URL)
    duplicate_of: int | None = None
    flagged: bool = False


@dataclass
class StoredPoll:
    new: int = 0
    already_stored: int = 0
    near_duplicates: int = 0
    flagged: int = 0

    def add(self, outcome: InsertOutcome) -> None:
        if not outcome.stored:
            self.already_stored += 1
            return
        self.new += 1
        self.near_duplicates += outcome.duplicate_of is not None
        self.flagged += outcome.flagged


@dataclass(frozen=True)
class Incoming:
    """A new entry of a feed's poll, on its way into the database."""

    feed_id: str
    candidate: Candidate
    seen_at: datetime


@dataclass
class _Known:
    """A stored article as the dedup checks need it."""

    id: int
    story_id: int | None
    duplicate_of: int | None
    features: ArticleFeatures | None

    @property
    def original(self) -> int:
        return self.duplicate_of or self.id


@dataclass
class _Plan:
    """What will be written for one new article of a batch."""

    incoming: Incoming
    original: _Known | int | None  # stored original, index of an earlier batch article, or none
    story_id: int | None = None
    new_story: bool = False
    duplicate_of: int | None = None
    article_id: int | None = None
    story_of: _Plan | None = None  # an earlier plan of the batch whose story this one joins
    referenced: bool = False  # a later plan of the batch copies this one

    @property
    def feed_id(self) -> str:
        return self.incoming.feed_id

    @property
    def candidate(self) -> Candidate:
        return self.incoming.candidate

    @property
    def seen_at(self) -> datetime:
        return self.incoming.seen_at

    @property
    def needs_story(self) -> bool:
        """Stories group what a digest shows, so only articles a watch flags or could flag
        (those with near-duplicate features) get one; the rest of the news stays storyless
        and costs one row, not three. `reclassify` creates the story if rules change."""
        return self.candidate.decision.flagged or bool(self.candidate.features.band_hashes)

    @property
    def key(self) -> tuple[str, str]:
        return self.feed_id, self.candidate.entry.guid

    def outcome(self) -> InsertOutcome:
        return InsertOutcome(stored=True, duplicate_of=self.duplicate_of, flagged=self.candidate.decision.flagged)


_IN_CHUNK = 900  # values per IN list (with up to 50 feed ids beside it: under 999)

_STORY_COLUMNS = ("key", "first_seen_at", "watch", "round", "flagged_at", "score")
_ARTICLE_COLUMNS = (
    "feed_id", "guid", "link", "canonical_url", "fingerprint", "title",
    "summary", "author", "language", "published_at", "published_is_fallback",
    "first_seen_at", "rules_fingerprint", "features", "duplicate_of", "story_id",
    "flagged", "watch", "round", "score", "decision",
)


class SqlDedup:
    """Exact, near-duplicate and story checks for a batch of new articles (one or several
    feeds' polls), inside the batch's transaction. Each look-up is one indexed query for the
    whole batch (guids, canonical URLs, fingerprints, LSH band hashes), so its cost does not
    grow with the archive, and a second daemon sharing the database sees the same index.
    Articles of the same batch are checked against each other too (two feeds, or one feed,
    may carry two copies of one dispatch)."""

    def __init__(self, session: Session, config: DedupConfig):
        self.session = session
        self.config = config

    def insert_all(self, items: Sequence[Incoming], rules_fingerprint: str) -> list[InsertOutcome]:
        """Decide every new entry in memory, then write the batch with a few executemany
        statements."""
        if not items:
            return []
        features = [item.candidate.features for item in items]
        seen_keys = self._stored_keys(items)
        seen_urls = self._stored_urls([f.canonical_url for f in features if f.canonical_url])
        by_fingerprint: dict[str, _Known | int] = dict(self._by_fingerprint([f.fingerprint for f in features]))
        by_band: dict[int, list[_Known | int]] = dict(self._by_band(features))  # type: ignore[arg-type]
        plans: list[_Plan | None] = []
        for index, item in enumerate(items):
            feats = item.candidate.features
            key = (item.feed_id, item.candidate.entry.guid)
            if key in seen_keys or (feats.canonical_url and feats.canonical_url in seen_urls):
                plans.append(None)
                continue
            seen_keys.add(key)
            if feats.canonical_url:
                seen_urls.add(feats.canonical_url)
            original = by_fingerprint.get(feats.fingerprint)
            if original is None:
                original = self._near_copy(feats, by_band, features)
            plans.append(_Plan(item, original))
            by_fingerprint.setdefault(feats.fingerprint, index)
            for value in feats.band_hashes:
                by_band.setdefault(value, []).append(index)
        self._write(plans, rules_fingerprint)
        return [plan.outcome() if plan else InsertOutcome(stored=False) for plan in plans]

    def _write(self, plans: list[_Plan | None], rules_fingerprint: str) -> None:
        """Bulk INSERTs (executemany) of the batch's new stories, then its articles, then its
        band hashes. Article ids are read back (by feed+guid) only where something refers to
        them: a new story's headline, band rows, copies of an article of the same batch. The
        ORM's unit of work, or INSERT … RETURNING in parameter order (which SQLAlchemy runs
        row by row on SQLite), cost about 3 ms per article here."""
        active = [plan for plan in plans if plan is not None]
        self._assign_stories(plans, active)
        for plan in active:
            if isinstance(plan.original, int):
                plans[plan.original].referenced = True  # type: ignore[union-attr]
        # Articles whose original is stored (or that have none) first; copies of an article
        # of this same batch need its id, so they follow in a second statement.
        for copies_of_batch in (False, True):
            chosen = [plan for plan in active if isinstance(plan.original, int) == copies_of_batch]
            for plan in chosen:
                if isinstance(plan.original, int):
                    source = plans[plan.original]
                    assert source is not None and source.article_id is not None
                    plan.duplicate_of = source.duplicate_of or source.article_id
                elif isinstance(plan.original, _Known):
                    plan.duplicate_of = plan.original.original
            if chosen:
                rows = [self._article_row(plan, rules_fingerprint) for plan in chosen]
                _insert_rows(self.session.connection(), Article.__table__, _ARTICLE_COLUMNS, rows)  # type: ignore[attr-defined]
                self._read_article_ids(
                    [plan for plan in chosen if plan.new_story or plan.referenced or plan.candidate.features.band_hashes]
                )
        headlines = [{"id": plan.story_id, "headline_article_id": plan.article_id} for plan in active if plan.new_story]
        if headlines:
            self.session.execute(update(Story), headlines)
        for plan in active:
            decision = plan.candidate.decision
            if decision.flagged and plan.duplicate_of is None and not plan.new_story and plan.story_id is not None:
                _mark_story_flagged(self.session, plan.story_id, decision, plan.seen_at)
        band_rows = [
            (plan.article_id, band, value)
            for plan in active
            for band, value in enumerate(plan.candidate.features.band_hashes)
        ]
        if band_rows:
            _insert_rows(self.session.connection(), ArticleBand.__table__, ("article_id", "band", "hash"), band_rows)  # type: ignore[attr-defined]

    def _assign_stories(self, plans: list[_Plan | None], active: list[_Plan]) -> None:
        """A copy joins its original's story; an independent write-up of a flagged event joins
        that event's story (stored, or started earlier in this batch); anything else a watch
        could care about starts a story. Plans are visited in batch order, so whatever a plan
        joins is decided before it."""
        fresh: list[_Plan] = []
        for plan in active:
            if isinstance(plan.original, int):
                plan.story_of = plans[plan.original]
                continue
            if isinstance(plan.original, _Known):
                plan.story_id = plan.original.story_id
            elif plan.needs_story:
                plan.story_id = self._matching_story(plan.candidate.features)
                if plan.story_id is None:
                    plan.story_of = self._matching_fresh_story(plan, fresh)
            if plan.story_id is None and plan.story_of is None and plan.needs_story:
                fresh.append(plan)
        if fresh:
            rows = [self._story_row(plan) for plan in fresh]
            _insert_rows(self.session.connection(), Story.__table__, _STORY_COLUMNS, rows)  # type: ignore[attr-defined]
            keys = [row[0] for row in rows]
            ids = dict(self._select_in(lambda chunk: select(Story.key, Story.id).where(Story.key.in_(chunk)), keys))  # type: ignore[attr-defined]
            for plan, key in zip(fresh, keys, strict=True):
                plan.story_id, plan.new_story = ids[key], True
        for plan in active:
            if plan.story_of is not None:
                plan.story_id = plan.story_of.story_id

    def _matching_fresh_story(self, plan: _Plan, fresh: list[_Plan]) -> _Plan | None:
        features = plan.candidate.features
        if features.watch is None:
            return None
        return next((f for f in fresh if dedup.same_story(features, f.candidate.features, self.config)), None)

    def _read_article_ids(self, plans: list[_Plan]) -> None:
        if not plans:
            return
        guids = sorted({plan.candidate.entry.guid for plan in plans})
        feed_ids = sorted({plan.feed_id for plan in plans})
        rows = self._select_in(
            lambda chunk: select(Article.feed_id, Article.guid, Article.id).where(
                Article.feed_id.in_(feed_ids), Article.guid.in_(chunk)  # type: ignore[attr-defined,union-attr]
            ),
            guids,
        )
        ids = {(feed_id, guid): article_id for feed_id, guid, article_id in rows}
        for plan in plans:
            plan.article_id = ids[plan.key]

    def _select_in(self, query_for: Callable[[list], Select], values: Sequence) -> list:
        """The rows of one query per chunk of an IN list: a group of 50 large feeds can hold
        tens of thousands of guids, and a statement may carry at most 32,766 parameters on
        SQLite (999 on builds before 3.32) and 65,535 with psycopg."""
        rows: list = []
        for start in range(0, len(values), _IN_CHUNK):
            rows.extend(self.session.exec(query_for(list(values[start : start + _IN_CHUNK]))).all())
        return rows

    @staticmethod
    def _story_row(plan: _Plan) -> tuple:
        """The values of _STORY_COLUMNS, in that order."""
        decision = plan.candidate.decision
        flagged_at = plan.seen_at if decision.flagged else None
        score = decision.score if decision.flagged else 0.0
        return (uuid.uuid4().hex, plan.seen_at, decision.watch, decision.round, flagged_at, score)

    @staticmethod
    def _article_row(plan: _Plan, rules_fingerprint: str) -> tuple:
        """The values of _ARTICLE_COLUMNS, in that order."""
        entry, features, decision = plan.candidate.entry, plan.candidate.features, plan.candidate.decision
        return (
            plan.feed_id, entry.guid, entry.link, features.canonical_url, features.fingerprint, entry.title,
            entry.summary, entry.author, entry.language, entry.published, entry.published_is_fallback,
            plan.seen_at, rules_fingerprint, plan.candidate.features_blob, plan.duplicate_of, plan.story_id,
            decision.flagged, decision.watch, decision.round, decision.score, plan.candidate.decision_json,
        )

    def _stored_keys(self, items: Sequence[Incoming]) -> set[tuple[str, str]]:
        feed_ids = sorted({item.feed_id for item in items})
        guids = sorted({item.candidate.entry.guid for item in items})
        rows = self._select_in(
            lambda chunk: select(Article.feed_id, Article.guid).where(
                Article.feed_id.in_(feed_ids), Article.guid.in_(chunk)  # type: ignore[attr-defined,union-attr]
            ),
            guids,
        )
        return {(feed_id, guid) for feed_id, guid in rows}

    def _stored_urls(self, urls: list[str]) -> set[str]:
        rows = self._select_in(
            lambda chunk: select(Article.canonical_url).where(Article.canonical_url.in_(chunk)),  # type: ignore[union-attr,arg-type]
            sorted(set(urls)),
        )
        return set(rows)

    def _by_fingerprint(self, fingerprints: list[str]) -> dict[str, _Known]:
        rows = self._select_in(
            lambda chunk: select(Article.id, Article.story_id, Article.duplicate_of, Article.fingerprint)
            .where(Article.fingerprint.in_(chunk))  # type: ignore[attr-defined]
            .order_by(Article.id),
            sorted(set(fingerprints)),
        )
        found: dict[str, _Known] = {}
        for row in rows:  # a fingerprint's rows come from one chunk, oldest first
            found.setdefault(row.fingerprint, _Known(row.id, row.story_id, row.duplicate_of, None))
        return found

    def _by_band(self, features: list[ArticleFeatures]) -> dict[int, list[_Known]]:
        """Stored articles sharing at least one LSH band value with any article of the batch.
        Band values are band-specific (the band number is mixed in), so one IN list on the
        indexed hash column finds them."""
        values = sorted({value for f in features for value in f.band_hashes})
        if not values:
            return {}
        hits = self._select_in(
            lambda chunk: select(ArticleBand.article_id, ArticleBand.hash).where(ArticleBand.hash.in_(chunk)),  # type: ignore[attr-defined]
            values,
        )
        if not hits:
            return {}
        ids = sorted({hit.article_id for hit in hits})
        rows = self._select_in(
            lambda chunk: select(Article.id, Article.story_id, Article.duplicate_of, Article.features).where(Article.id.in_(chunk)),  # type: ignore[union-attr]
            ids,
        )
        known = {
            row.id: _Known(row.id, row.story_id, row.duplicate_of, dedup.features_from_bytes(row.features) if row.features else None)
            for row in rows
        }
        by_band: dict[int, list[_Known]] = {}
        for hit in hits:
            by_band.setdefault(hit.hash, []).append(known[hit.article_id])
        return by_band

    def _near_copy(
        self, features: ArticleFeatures, by_band: dict[int, list[_Known | int]], batch: Sequence[ArticleFeatures]
    ) -> _Known | int | None:
        """The earliest article this one nearly copies: a stored one (`_Known`, by id) before
        an earlier one of this batch (its index)."""
        stored: dict[int, _Known] = {}
        earlier: set[int] = set()
        for value in features.band_hashes:
            for hit in by_band.get(value, ()):
                if isinstance(hit, int):
                    earlier.add(hit)
                else:
                    stored[hit.id] = hit
        for article_id in sorted(stored):
            known = stored[article_id]
            if known.features is not None and dedup.is_near_duplicate(features, known.features, self.config):
                return known
        for index in sorted(earlier):
            if dedup.is_near_duplicate(features, batch[index], self.config):
                return index
        return None

    def _matching_story(self, features: ArticleFeatures) -> int | None:
        """An independent write-up of an event joins the story of an earlier flagged article."""
        if features.watch is None:
            return None
        window = self.config.story_window
        query = (
            select(Article.story_id, Article.features)
            .where(Article.watch == features.watch, Article.flagged.is_(True))  # type: ignore[attr-defined]
            .where(Article.published_at >= features.published - window)
            .where(Article.published_at <= features.published + window)
            .order_by(Article.id)
            .limit(500)
        )
        for story_id, blob in self.session.exec(query):
            if blob is not None and story_id is not None:
                if dedup.same_story(features, dedup.features_from_bytes(blob), self.config):
                    return story_id
        return None


def _insert_rows(connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """executemany straight to the driver, with each column's own bind processing (UTC
    datetimes, booleans, blobs) applied here: SQLAlchemy's generic per-row parameter handling
    costs several times what SQLite spends inserting a row, on the 20,000 rows of a cold
    pass and the 32 band rows per candidate. The statement is still compiled by SQLAlchemy
    for the connection's dialect and paramstyle."""
    dialect = connection.dialect
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    processors = [
        (index, processor)
        for index, name in enumerate(columns)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if processors:
        rows = [_processed(row, processors) for row in rows]
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup or ()]
        params: list = [tuple(row[i] for i in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    connection.exec_driver_sql(str(compiled), params)


def _processed(row: tuple, processors: list[tuple[int, Callable[[object], object]]]) -> tuple:
    values = list(row)
    for index, processor in processors:
        values[index] = processor(values[index])
    return tuple(values)


class FeedConfigLike:  # pragma: no cover - typing aid only
    """The attributes sync_feeds reads from monitor.config.FeedConfig."""

    id: str
    url: str
    name: str
    language: str
    enabled: bool
    interval: timedelta | None


def decision_json(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


__all__ = [
    "DueFeed",
    "FeedHealth",
    "IntegrityError",
    "Store",
    "current_revision",
    "decision_json",
    "make_engine",
    "upgrade",
    "utcnow",
]
