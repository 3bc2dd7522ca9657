"""The writer's look-ups stay index look-ups as the archive grows (#13, bench/archive_bench.py):
each test captures the statement the store really sends and asks the engine for its plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, text

from monitor.dedup import DedupConfig, compute_features
from monitor.store import make_engine, upgrade
from monitor.store.writer import SqlDedup
from sqlmodel import Session

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _archive(engine, flagged: int) -> None:  # noqa: ANN001
    """`flagged` articles of watch kw-uk, one every six hours back from NOW, and one of kw-us."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO feed (id, url, configured_url, name, enabled, interval_seconds, consecutive_failures,"
            " next_poll_at, article_count) VALUES ('f', 'u', 'u', 'f', true, 900, 0, :t, 0)"), {"t": NOW})
        rows = [
            {"id": i, "guid": str(i), "fp": f"fp{i}", "t": NOW - timedelta(hours=6 * i), "watch": "kw-uk" if i else "kw-us"}
            for i in range(flagged + 1)
        ]
        connection.execute(text(
            "INSERT INTO article (id, feed_id, guid, fingerprint, title, summary, published_at, published_is_fallback,"
            " first_seen_at, flagged, watch, score, decision, rules_fingerprint)"
            " VALUES (:id, 'f', :guid, :fp, 't', 's', :t, false, :t, true, :watch, 9.0, '{}', 'r')"), rows)
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE article"))  # autovacuum's doing on a real archive


def _plan_of_story_search(engine, watch: str) -> str:  # noqa: ANN001
    """The plan of the query SqlDedup._matching_story sends for an article of `watch`."""
    features = compute_features("الحوار الاستراتيجي", "نص الخبر عن الحوار", "https://x.example/1", NOW, watch=watch)
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if "FROM article" in statement and "published_at" in statement:
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            SqlDedup(session, DedupConfig())._matching_story(features)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(sent) == 1, sent
    statement, parameters = sent[0]
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


def test_the_story_search_reads_one_watch_and_window_not_every_flagged_article(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        _archive(engine, flagged=3000)
        plan = _plan_of_story_search(engine, "kw-us")
    finally:
        engine.dispose()
    # Through ix_article_flagged alone, each flagged article of a poll walked all 3,000
    # (20,000 in a 1M archive): the plan must go through the watch-and-date index.
    assert "ix_article_watch_published" in plan, plan


def test_status_counts_the_last_day_through_the_first_seen_index(db_url: str) -> None:
    from monitor.status import read_articles
    from monitor.store import Store

    engine = make_engine(db_url)
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if "GROUP BY" in statement and "FROM article" in statement:
            sent.append((statement, parameters))

    try:
        upgrade(engine)
        _archive(engine, flagged=3000)
        event.listen(engine, "before_cursor_execute", capture)
        counts = read_articles(Store(engine), ["kw-us", "kw-uk"], NOW - timedelta(hours=25), NOW)
        event.remove(engine, "before_cursor_execute", capture)
        statement, parameters = sent[0]
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        with engine.connect() as connection:
            plan = "\n".join(" ".join(map(str, row)) for row in connection.exec_driver_sql(explain + statement, parameters))
    finally:
        engine.dispose()
    assert counts.stored == 5 and counts.flagged_by_watch == {"kw-us": 1, "kw-uk": 4}
    # `first_seen_at >= since` alone: SQLite scanned the whole table in ix_article_flagged order.
    assert "ix_article_first_seen_at" in plan, plan
