"""Database tables. The schema is created only by the Alembic migrations in `alembic/`;
these models describe it for queries and must stay in step with the latest revision."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both engines (SQLite drops the zone, PostgreSQL keeps it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(nullable: bool = True, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Feed(SQLModel, table=True):
    """A configured feed with its HTTP cache state and health; the schedule lives here."""

    id: str = Field(primary_key=True, max_length=64)
    url: str = Field(sa_column=Column(Text, nullable=False))
    configured_url: str = Field(sa_column=Column(Text, nullable=False))
    name: str = ""
    language: str | None = None
    enabled: bool = True
    interval_seconds: int = 900
    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = Field(default=None, sa_column=Column(Text))
    last_body_hash: str | None = None
    last_status: str | None = None
    last_http_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    # The parse warnings of the last fetched body (bad bytes, charset, dates), for operators.
    last_warning: str | None = Field(default=None, sa_column=Column(Text))
    last_polled_at: datetime | None = Field(default=None, sa_column=_ts())
    last_success_at: datetime | None = Field(default=None, sa_column=_ts())
    consecutive_failures: int = 0
    next_poll_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_column=_ts())
    article_count: int = 0


class Story(SQLModel, table=True):
    """One real-world event: a headline article and every article reporting it."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    watch: str | None = Field(default=None, index=True)
    round: int | None = None
    headline_article_id: int | None = None
    first_seen_at: datetime = Field(sa_column=_ts(nullable=False))
    flagged_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    score: float = 0.0
    # The span of its independent write-ups' publication dates; `round` is its one stated
    # round. Membership is checked against these (dedup.story_admits).
    first_published_at: datetime | None = Field(default=None, sa_column=_ts())
    last_published_at: datetime | None = Field(default=None, sa_column=_ts())
    # Its one kind of happening (a preview, the session, a working group...: dedup.events).
    event: str | None = Field(default=None, max_length=24)


class Article(SQLModel, table=True):
    """An entry seen in a feed, with its relevance decision and its dedup links."""

    __table_args__ = (
        UniqueConstraint("feed_id", "guid", name="uq_article_feed_guid"),
        Index("ix_article_published", "published_at"),
        Index("ix_article_search_pending", "id", sqlite_where=text("search_pending"), postgresql_where=text("search_pending")),
        # A watch's flagged articles by date, for the story search (migration 0015).
        Index("ix_article_watch_published", "watch", "published_at",
              sqlite_where=text("watch IS NOT NULL"), postgresql_where=text("watch IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    feed_id: str = Field(foreign_key="feed.id", index=True, max_length=64)
    guid: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = Field(default=None, sa_column=Column(Text))
    canonical_url: str | None = Field(default=None, sa_column=Column(Text, unique=True))
    fingerprint: str = Field(index=True, max_length=64)
    title: str = Field(sa_column=Column(Text, nullable=False))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    author: str | None = None
    language: str | None = None
    published_at: datetime = Field(sa_column=_ts(nullable=False))
    published_is_fallback: bool = False
    first_seen_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    flagged: bool = Field(default=False, index=True)
    watch: str | None = None
    score: float = 0.0
    round: int | None = None
    decision: str = Field(sa_column=Column(Text, nullable=False))
    rules_fingerprint: str = Field(max_length=64)
    features: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    duplicate_of: int | None = Field(default=None, foreign_key="article.id")
    story_id: int | None = Field(default=None, foreign_key="story.id", index=True)
    # The text may be garbled by a bad charset; repaired when the feed sends it clean
    # (monitor.store.repair). Only a server default: the bulk insert never names it.
    text_suspect: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # Where the entry came from ("rss", "sitemap", "html") and whether `summary` holds the text
    # extracted from the article's own page; `page_error` says why that page gave no text.
    source_type: str = Field(default="rss", sa_column=Column(String(16), nullable=False, server_default="rss"))
    full_text: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    page_error: str | None = Field(default=None, sa_column=Column(Text))
    # Stored but not in the search index yet (monitor.store.search.catch_up indexes it).
    search_pending: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))


class PageAttempt(SQLModel, table=True):
    """An article page that failed for a reason that may pass (timeout, 5xx, 429): its entry
    waits, unstored, for the next poll to try again, and is stored with what its feed gave
    once the attempts run out. The row goes with the article's insert."""

    __tablename__ = "page_attempt"

    feed_id: str = Field(foreign_key="feed.id", primary_key=True, max_length=64)
    guid: str = Field(sa_column=Column(Text, primary_key=True))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_attempt_at: datetime = Field(sa_column=_ts(nullable=False))


class ArticleBand(SQLModel, table=True):
    """LSH band hashes: the near-duplicate candidate look-up is an indexed SQL query, so it
    costs the same with 10k or 1M stored articles and is shared by several daemons. Each
    value mixes in its band number, so the index is on the value alone."""

    __tablename__ = "article_band"
    __table_args__ = (Index("ix_article_band_hash", "hash"),)

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    band: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    hash: int = Field(sa_column=Column(BigInteger, nullable=False))


class DigestRun(SQLModel, table=True):
    """One built digest: which scheduled slot it served. Unique per slot, so a restart that
    re-runs a missed slot finds it already built and does not build it twice."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("digest_id", "slot", name="uq_digest_run_slot"),)

    id: str = Field(primary_key=True, max_length=64)
    digest_id: str = Field(index=True, max_length=64)
    slot: datetime = Field(sa_column=_ts(nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    story_count: int = 0


class DigestSchedule(SQLModel, table=True):
    """When a digest definition was first scheduled: a slot that passed before then was
    never missed (the monitor was not running yet), so the first start does not send it."""

    __tablename__ = "digest_schedule"

    digest_id: str = Field(primary_key=True, max_length=64)
    first_scheduled_at: datetime = Field(sa_column=_ts(nullable=False))


class DigestItem(SQLModel, table=True):
    """A story carried by a digest. Unique per (digest definition, story): every flagged story
    appears in exactly one digest of each definition that watches it."""

    __tablename__ = "digest_item"
    __table_args__ = (UniqueConstraint("digest_id", "story_id", name="uq_digest_item_story"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="digest_run.id", index=True, max_length=64)
    digest_id: str = Field(max_length=64)
    story_id: int = Field(foreign_key="story.id", index=True)


class AlertSent(SQLModel, table=True):
    """An alert rule fired for a story; unique so that a story alerts once per rule."""

    __tablename__ = "alert_sent"
    __table_args__ = (UniqueConstraint("alert_id", "story_id", name="uq_alert_story"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(max_length=64)
    story_id: int = Field(foreign_key="story.id", index=True)
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class Delivery(SQLModel, table=True):
    """The outbox: one row per message per channel, written in the same transaction as the
    digest or alert it carries. Its id is the email Message-ID and the webhook-id, so a
    receiver can drop the one repeat a crash between sending and recording can cause."""

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # "digest" | "alert"
    source_id: str = Field(max_length=64)  # digest or alert definition id
    run_id: str | None = Field(default=None, max_length=64)
    story_id: int | None = Field(default=None, foreign_key="story.id")
    channel_id: str = Field(max_length=64)
    status: str = Field(default="pending", index=True, max_length=16)  # pending | sent | failed
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    next_attempt_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    give_up_at: datetime = Field(sa_column=_ts(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts())
    # Set while a process is sending it ("host:pid"); next_attempt_at is then the lease's end.
    lease_owner: str | None = Field(default=None, max_length=128)


class DaemonProcess(SQLModel, table=True):
    """A running `monitor run` and its heartbeat, so `monitor status` can tell whether a daemon
    is running against this database, since when and where (its row goes at a clean stop; a
    killed one stops beating and is shown as gone)."""

    __tablename__ = "daemon"

    owner: str = Field(primary_key=True, max_length=128)  # "host:pid", as on the leases it takes
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    heartbeat_at: datetime = Field(sa_column=_ts(nullable=False))
    version: str = Field(default="", max_length=32)
    metrics_listen: str | None = Field(default=None, max_length=255)


class ArticleLabel(SQLModel, table=True):
    """The analyst's verdict on one stored article (`monitor label`), the ground truth that
    `monitor rules test` scores the rules against. One per article: labelling again replaces
    it. `watch` and `round` are given only with "relevant" (`round` only when the analyst
    says which round it is, so round accuracy counts only the rounds someone checked)."""

    __tablename__ = "article_label"

    article_id: int = Field(foreign_key="article.id", primary_key=True)
    verdict: str = Field(max_length=16)  # "relevant" | "irrelevant"
    watch: str | None = Field(default=None, max_length=64)
    round: int | None = None
    labelled_at: datetime = Field(sa_column=_ts(nullable=False))
    note: str | None = Field(default=None, sa_column=Column(Text))
