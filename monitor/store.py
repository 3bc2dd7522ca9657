"""The database: engine set-up, migrations, and every read and write the daemon makes.

The database is the source of truth. Each write here is idempotent (a unique key decides
whether a row exists) and each feed's poll is committed in one transaction, so a crash leaves
the database as it was before or after that feed, never in between.
"""

from __future__ import annotations

import json
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
from sqlalchemy import Engine, event, func, or_, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, create_engine, select

from monitor import dedup
from monitor.models import Article, ArticleBand, Feed, Story, utcnow

if TYPE_CHECKING:
    from monitor.dedup import ArticleFeatures, DedupConfig
    from monitor.poll import Candidate, PollResult
    from monitor.rules import Decision, RuleSet

log = structlog.get_logger(__name__)


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
                pid = (row.lease_owner or "").rpartition(":")[2]
                if pid.isdigit() and not is_alive(int(pid)):
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

    def known_guids(self, feed_id: str) -> set[str]:
        with self.session() as session:
            return set(session.exec(select(Article.guid).where(Article.feed_id == feed_id)))

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
        bound = log.bind(feed_id=result.feed.id)
        with self.session() as session:
            feed = session.get(Feed, result.feed.id)
            if feed is None:
                raise LookupError(f"feed {result.feed.id!r} is not in the database")
            stored = StoredPoll()
            checker = SqlDedup(session, result.dedup_config)
            for outcome in checker.insert_all(feed.id, result.candidates, result.fetched_at, result.rules_fingerprint):
                stored.add(outcome)
                if outcome.article_id is not None:
                    bound.debug(
                        "article stored",
                        article_id=outcome.article_id,
                        flagged=outcome.flagged,
                        duplicate_of=outcome.duplicate_of,
                    )
            _apply_feed_state(feed, result, stored.new)
            session.add(feed)
            session.commit()
        if result.outcome.permanent_redirect:
            bound.info("feed moved permanently", old_url=result.feed.url, new_url=result.outcome.permanent_redirect)
        return stored

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
                    if decision.flagged and row.story_id is not None:
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


def _apply_feed_state(feed: Feed, result: PollResult, new_articles: int) -> None:
    outcome = result.outcome
    feed.last_polled_at = result.fetched_at
    feed.last_status = outcome.status
    feed.last_http_status = outcome.http_status
    feed.lease_owner = None
    feed.lease_until = None
    feed.next_poll_at = result.next_poll_at
    feed.article_count += new_articles
    if result.error is None:
        feed.last_success_at = result.fetched_at
        feed.last_error = None
        feed.consecutive_failures = 0
        if outcome.status in ("ok", "unchanged"):
            # Kept on "unchanged" too: a server that rotates validators on identical bodies
            # would otherwise never earn a 304.
            feed.etag = outcome.etag
            feed.last_modified = outcome.last_modified
            feed.last_body_hash = outcome.body_hash
        if outcome.permanent_redirect:
            feed.url = outcome.permanent_redirect
    else:
        feed.last_error = result.error
        feed.consecutive_failures += 1


@dataclass(frozen=True)
class InsertOutcome:
    article_id: int | None  # None: the entry was already stored (same feed+guid or same URL)
    duplicate_of: int | None = None
    story_id: int | None = None
    flagged: bool = False


@dataclass
class StoredPoll:
    new: int = 0
    already_stored: int = 0
    near_duplicates: int = 0
    flagged: int = 0

    def add(self, outcome: InsertOutcome) -> None:
        if outcome.article_id is None:
            self.already_stored += 1
            return
        self.new += 1
        self.near_duplicates += outcome.duplicate_of is not None
        self.flagged += outcome.flagged


@dataclass
class _Known:
    """A stored (or just inserted) article as the dedup checks need it."""

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

    candidate: Candidate
    original: _Known | int | None  # stored original, index of an earlier batch article, or none
    story_id: int | None = None
    new_story: bool = False
    duplicate_of: int | None = None
    article_id: int | None = None

    def outcome(self) -> InsertOutcome:
        return InsertOutcome(
            article_id=self.article_id,
            duplicate_of=self.duplicate_of,
            story_id=self.story_id,
            flagged=self.candidate.decision.flagged,
        )


class SqlDedup:
    """Exact, near-duplicate and story checks for one feed's new articles, inside the poll's
    transaction. Each look-up is one indexed query for the whole batch (guids, canonical URLs,
    fingerprints, LSH band hashes), so its cost does not grow with the archive, and a second
    daemon sharing the database sees the same index. Articles of the same batch are checked
    against each other too (a feed may carry two copies of one dispatch)."""

    def __init__(self, session: Session, config: DedupConfig):
        self.session = session
        self.config = config

    def insert_all(self, feed_id: str, candidates: Sequence[Candidate], now: datetime, rules_fingerprint: str) -> list[InsertOutcome]:
        """Decide every candidate in memory, then write stories and articles with one flush
        each (the ORM batches the INSERTs), and the band hashes with one executemany."""
        if not candidates:
            return []
        features = [candidate.features for candidate in candidates]
        seen_guids = self._stored_guids(feed_id, [c.entry.guid for c in candidates])
        seen_urls = self._stored_urls([f.canonical_url for f in features if f.canonical_url])
        by_fingerprint: dict[str, _Known | int] = dict(self._by_fingerprint([f.fingerprint for f in features]))
        by_band: dict[int, list[_Known | int]] = dict(self._by_band(features))  # type: ignore[arg-type]
        plans: list[_Plan | None] = []
        for index, candidate in enumerate(candidates):
            entry, feats = candidate.entry, candidate.features
            if entry.guid in seen_guids or (feats.canonical_url and feats.canonical_url in seen_urls):
                plans.append(None)
                continue
            seen_guids.add(entry.guid)
            if feats.canonical_url:
                seen_urls.add(feats.canonical_url)
            original = by_fingerprint.get(feats.fingerprint)
            if original is None:
                original = self._near_copy(feats, by_band, candidates)
            plans.append(_Plan(candidate, original))
            by_fingerprint.setdefault(feats.fingerprint, index)
            for value in feats.band_hashes:
                by_band.setdefault(value, []).append(index)
        self._write(feed_id, plans, now, rules_fingerprint)
        return [plan.outcome() if plan else InsertOutcome(article_id=None) for plan in plans]

    def _write(self, feed_id: str, plans: list[_Plan | None], now: datetime, rules_fingerprint: str) -> None:
        """Bulk INSERTs (executemany) of a feed's new stories, then its articles, then its band
        hashes; ids are read back by their unique keys (story key, feed+guid). The ORM's unit
        of work, or INSERT … RETURNING in parameter order (which SQLAlchemy runs row by row on
        SQLite), cost about 3 ms per article here."""
        active = [plan for plan in plans if plan is not None]
        for plan in active:
            if isinstance(plan.original, _Known):
                plan.story_id = plan.original.story_id
            elif plan.original is None:
                plan.story_id = self._matching_story(plan.candidate.features)
        fresh = [plan for plan in active if plan.story_id is None and plan.original is None]
        if fresh:
            rows = [self._story_row(plan, now) for plan in fresh]
            self._bulk_insert(Story, rows)
            ids = dict(self.session.exec(select(Story.key, Story.id).where(Story.key.in_([r["key"] for r in rows]))).all())  # type: ignore[attr-defined]
            for plan, row in zip(fresh, rows, strict=True):
                plan.story_id, plan.new_story = ids[row["key"]], True
        # Articles whose original is stored (or that have none) first; copies of an article
        # of this same batch need its id, so they follow in a second statement.
        for copies_of_batch in (False, True):
            chosen = [plan for plan in active if isinstance(plan.original, int) == copies_of_batch]
            for plan in chosen:
                if isinstance(plan.original, int):
                    source = plans[plan.original]
                    assert source is not None and source.article_id is not None
                    plan.duplicate_of = source.duplicate_of or source.article_id
                    plan.story_id = source.story_id
                elif isinstance(plan.original, _Known):
                    plan.duplicate_of = plan.original.original
            if chosen:
                rows = [self._article_row(feed_id, plan, now, rules_fingerprint) for plan in chosen]
                self._bulk_insert(Article, rows)
                guids = [plan.candidate.entry.guid for plan in chosen]
                ids = dict(
                    self.session.exec(
                        select(Article.guid, Article.id).where(Article.feed_id == feed_id, Article.guid.in_(guids))  # type: ignore[union-attr]
                    ).all()
                )
                for plan in chosen:
                    plan.article_id = ids[plan.candidate.entry.guid]
        headlines = [{"id": plan.story_id, "headline_article_id": plan.article_id} for plan in active if plan.new_story]
        if headlines:
            self.session.execute(update(Story), headlines)
        for plan in active:
            decision = plan.candidate.decision
            if decision.flagged and plan.duplicate_of is None and not plan.new_story:
                _mark_story_flagged(self.session, plan.story_id, decision, now)  # type: ignore[arg-type]
        band_rows = [
            {"article_id": plan.article_id, "band": band, "hash": value}
            for plan in active
            for band, value in enumerate(plan.candidate.features.band_hashes)
        ]
        if band_rows:
            self._bulk_insert(ArticleBand, band_rows)

    def _bulk_insert(self, model: type[SQLModel], rows: list[dict[str, object]]) -> None:
        """A Core executemany on the session's connection: the ORM's bulk path spends more
        time collecting per-row state than the database spends inserting (32 band rows per
        article)."""
        self.session.connection().execute(model.__table__.insert(), rows)  # type: ignore[attr-defined]

    @staticmethod
    def _story_row(plan: _Plan, now: datetime) -> dict[str, object]:
        decision = plan.candidate.decision
        return {
            "key": uuid.uuid4().hex,
            "first_seen_at": now,
            "watch": decision.watch,
            "round": decision.round,
            "flagged_at": now if decision.flagged else None,
            "score": decision.score if decision.flagged else 0.0,
        }

    @staticmethod
    def _article_row(feed_id: str, plan: _Plan, now: datetime, rules_fingerprint: str) -> dict[str, object]:
        entry, features, decision = plan.candidate.entry, plan.candidate.features, plan.candidate.decision
        return {
            "feed_id": feed_id,
            "guid": entry.guid,
            "link": entry.link,
            "canonical_url": features.canonical_url,
            "fingerprint": features.fingerprint,
            "title": entry.title,
            "summary": entry.summary,
            "author": entry.author,
            "language": entry.language,
            "published_at": entry.published,
            "published_is_fallback": entry.published_is_fallback,
            "first_seen_at": now,
            "rules_fingerprint": rules_fingerprint,
            "features": dedup.features_to_bytes(features),
            "duplicate_of": plan.duplicate_of,
            "story_id": plan.story_id,
            **_decision_columns(decision),
        }

    def _stored_guids(self, feed_id: str, guids: list[str]) -> set[str]:
        query = select(Article.guid).where(Article.feed_id == feed_id, Article.guid.in_(guids))  # type: ignore[union-attr]
        return set(self.session.exec(query))

    def _stored_urls(self, urls: list[str]) -> set[str]:
        if not urls:
            return set()
        return set(self.session.exec(select(Article.canonical_url).where(Article.canonical_url.in_(urls))))  # type: ignore[union-attr,arg-type]

    def _by_fingerprint(self, fingerprints: list[str]) -> dict[str, _Known]:
        query = (
            select(Article.id, Article.story_id, Article.duplicate_of, Article.fingerprint)
            .where(Article.fingerprint.in_(fingerprints))  # type: ignore[attr-defined]
            .order_by(Article.id)
        )
        found: dict[str, _Known] = {}
        for row in self.session.exec(query):
            found.setdefault(row.fingerprint, _Known(row.id, row.story_id, row.duplicate_of, None))
        return found

    def _by_band(self, features: list[ArticleFeatures]) -> dict[int, list[_Known]]:
        """Stored articles sharing at least one LSH band value with any article of the batch.
        Band values are band-specific (the band number is mixed in), so one IN list on the
        indexed hash column finds them."""
        values = sorted({value for f in features for value in f.band_hashes})
        if not values:
            return {}
        hits = self.session.exec(
            select(ArticleBand.article_id, ArticleBand.hash).where(ArticleBand.hash.in_(values))  # type: ignore[attr-defined]
        ).all()
        if not hits:
            return {}
        ids = sorted({hit.article_id for hit in hits})
        rows = self.session.exec(
            select(Article.id, Article.story_id, Article.duplicate_of, Article.features).where(Article.id.in_(ids))  # type: ignore[union-attr]
        ).all()
        known = {
            row.id: _Known(row.id, row.story_id, row.duplicate_of, dedup.features_from_bytes(row.features) if row.features else None)
            for row in rows
        }
        by_band: dict[int, list[_Known]] = {}
        for hit in hits:
            by_band.setdefault(hit.hash, []).append(known[hit.article_id])
        return by_band

    def _near_copy(
        self, features: ArticleFeatures, by_band: dict[int, list[_Known | int]], batch: Sequence[Candidate]
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
            if dedup.is_near_duplicate(features, batch[index].features, self.config):
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
