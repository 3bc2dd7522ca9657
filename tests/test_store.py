"""Storage on real SQLite files and the real PostgreSQL: migrations, feed sync, claims."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic import command
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from monitor.config import FeedConfig
from monitor.models import utcnow
from monitor.store import Store, alembic_config, current_revision, make_engine, upgrade
from monitor.store.search import is_search_index


def _feeds(*ids: str, interval: str | None = None) -> list[FeedConfig]:
    return [
        FeedConfig(id=i, url=f"https://example.org/{i}.xml", name=i.upper(), interval=interval) for i in ids
    ]


def test_migrations_create_the_schema_the_models_describe(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) is not None
    tables = set(inspect(engine).get_table_names())
    assert {"feed", "article", "story", "article_band", "alembic_version"} <= tables
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": _not_search_index})
        diff = compare_metadata(context, SQLModel.metadata)
    # Only differences a backend cannot express are tolerated (none expected).
    assert diff == [], diff
    engine.dispose()


def _not_search_index(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """The search index (FTS5 and its shadow tables, or PostgreSQL's tsvector table) is
    engine-specific and not in the models; tests/test_search.py checks it separately."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return not is_search_index(table)


def test_large_columns_compress_with_lz4_on_postgresql_and_migrations_go_down_and_up(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    head = current_revision(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            offered = connection.execute(
                text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            ).scalar()
            methods = dict(connection.execute(text(
                "SELECT attname, attcompression FROM pg_attribute"
                " WHERE attrelid = 'article'::regclass AND attname IN ('title', 'summary', 'features')"
            )).all())
        assert offered  # this machine's PostgreSQL is built with lz4; elsewhere the migration is a no-op
        assert methods == {"title": "l", "summary": "l", "features": "l"}
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0002")
    assert current_revision(engine) == "0002"
    upgrade(engine)
    assert current_revision(engine) == head
    engine.dispose()


def test_an_archive_with_articles_and_band_rows_upgrades_from_0004_to_head(db_url: str) -> None:
    """Every migration must run on a database in use: SQLite enforces foreign keys here, so a
    migration that rebuilds the article table fails on the first stored band row."""
    engine = make_engine(db_url)
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0004")
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO feed (id, url, configured_url, name, enabled, interval_seconds, consecutive_failures,"
            " next_poll_at, article_count) VALUES ('kuna', 'u', 'u', 'k', true, 900, 0, :t, 1)"), {"t": now})
        connection.execute(text("INSERT INTO story (id, key, first_seen_at, score) VALUES (1, 's', :t, 0)"), {"t": now})
        connection.execute(text(
            "INSERT INTO article (id, feed_id, guid, fingerprint, title, summary, published_at, published_is_fallback,"
            " first_seen_at, flagged, score, decision, rules_fingerprint, story_id) VALUES"
            " (1, 'kuna', 'g', 'f', 't', 's', :t, false, :t, true, 1, '{}', 'r', 1)"), {"t": now})
        connection.execute(text("INSERT INTO article_band (article_id, band, hash) VALUES (1, 0, 7), (1, 1, 8)"))
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, text_suspect FROM article")).all() == [(1, False)]
        assert connection.execute(text("SELECT count(*) FROM article_band")).scalar() == 2
        assert connection.execute(text("SELECT last_warning FROM feed")).scalar() is None
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x' / 'm.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_sync_feeds_adds_updates_and_disables(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine)
    now = utcnow()
    store.sync_feeds(_feeds("a", "b"), timedelta(minutes=15), now)
    health = {row.id: row for row in store.feed_health()}
    assert set(health) == {"a", "b"} and all(row.enabled for row in health.values())
    assert health["a"].next_poll_at <= now + timedelta(seconds=1)

    store.sync_feeds(_feeds("a", "c", interval="5m"), timedelta(minutes=15), now)
    health = {row.id: row for row in store.feed_health()}
    assert not health["b"].enabled  # removed from config: kept (its articles stay) but not polled
    assert health["c"].enabled
    engine.dispose()


def test_claims_lease_due_feeds_once(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine)
    now = utcnow()
    store.sync_feeds(_feeds("a", "b", "c"), timedelta(minutes=15), now)
    first = store.claim_due_feeds(now, "worker-1", timedelta(minutes=5))
    assert [feed.id for feed in first] == sorted(feed.id for feed in first)
    assert {feed.id for feed in first} == {"a", "b", "c"}
    # Leased feeds are not handed to a second poller...
    assert store.claim_due_feeds(now, "worker-2", timedelta(minutes=5)) == []
    # ...until the lease is released or expires.
    store.release_leases("worker-1")
    assert len(store.claim_due_feeds(now, "worker-2", timedelta(minutes=5))) == 3
    assert store.claim_due_feeds(now + timedelta(minutes=6), "worker-3", timedelta(minutes=5), only=["b"])[0].id == "b"
    engine.dispose()
