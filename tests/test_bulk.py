"""The writer's statements over many rows (monitor.store.bulk), on SQLite and PostgreSQL: a
look-up longer than SQLite's chunk finds every stored value and nothing else, in chunks on
SQLite and as one statement with one array parameter on PostgreSQL; (feed, guid) pairs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event, text
from sqlmodel import Session, select

from monitor.models import PageAttempt, Story
from monitor.store import make_engine, upgrade
from monitor.store.bulk import insert_rows, select_in, select_pairs

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


# Every column of story with a Python-side default: insert_rows applies none.
STORY_COLUMNS = ("key", "first_seen_at", "watch", "round", "flagged_at", "score", "first_published_at", "last_published_at", "event")


def _migrated(db_url: str) -> Engine:
    engine = make_engine(db_url)
    upgrade(engine)
    return engine


def _engine_with_stories(db_url: str, count: int) -> Engine:
    engine = _migrated(db_url)
    rows = [(f"k{i}", NOW + timedelta(seconds=i), "kw-uk" if i % 3 else None, None, None, 0.0, None, None, None) for i in range(count)]
    with engine.begin() as connection:
        insert_rows(connection, Story.__table__, STORY_COLUMNS, rows)  # type: ignore[attr-defined]
    return engine


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ANN202
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_a_lookup_longer_than_a_chunk_finds_exactly_the_stored_values(db_url: str) -> None:
    engine = _engine_with_stories(db_url, 1500)
    wanted = sorted([f"k{i}" for i in range(0, 3000, 2)])  # half stored (even numbers below 1,500), half not
    with Session(engine) as session, _statements(engine) as sent:
        found = select_in(session, lambda among: select(Story.key).where(among(Story.key)), wanted)  # type: ignore[arg-type]
    assert sorted(found) == sorted(f"k{i}" for i in range(0, 1500, 2))
    if engine.dialect.name == "postgresql":
        assert len(sent) == 1
        statement, parameters = sent[0]
        assert "ANY" in statement.upper() and len(parameters) == 1  # type: ignore[arg-type]
    else:
        assert len(sent) == 2  # 1,500 values in chunks of 900
        assert all(len(parameters) <= 900 for _, parameters in sent)  # type: ignore[arg-type]


def test_a_second_list_narrows_every_chunk(db_url: str) -> None:
    engine = _engine_with_stories(db_url, 1200)
    keys = [f"k{i}" for i in range(1200)]
    with Session(engine) as session:
        found = select_in(
            session,
            lambda among: select(Story.key).where(among(Story.key), among(Story.watch, ["kw-uk"])),  # type: ignore[arg-type]
            keys,
        )
    assert sorted(found) == sorted(f"k{i}" for i in range(1200) if i % 3)


def test_an_empty_lookup_sends_nothing(db_url: str) -> None:
    engine = _engine_with_stories(db_url, 3)
    with Session(engine) as session, _statements(engine) as sent:
        assert select_in(session, lambda among: select(Story.key).where(among(Story.key)), []) == []  # type: ignore[arg-type]
    assert sent == []


def test_inserted_rows_keep_their_instant_in_utc(db_url: str) -> None:
    engine = _engine_with_stories(db_url, 2)
    with Session(engine) as session:
        stored = session.exec(select(Story.key, Story.first_seen_at).order_by(Story.key)).all()
    assert [(key, at) for key, at in stored] == [("k0", NOW), ("k1", NOW + timedelta(seconds=1))]


def _engine_with_attempts(db_url: str, pairs: list[tuple[str, str]]) -> Engine:
    engine = _migrated(db_url)
    with engine.begin() as connection:
        for feed_id in sorted({feed_id for feed_id, _ in pairs}):
            connection.execute(text(
                "INSERT INTO feed (id, url, configured_url, name, enabled, interval_seconds, consecutive_failures,"
                " next_poll_at, article_count) VALUES (:id, 'u', 'u', :id, true, 900, 0, :t, 0)"), {"id": feed_id, "t": NOW})
        insert_rows(connection, PageAttempt.__table__, ("feed_id", "guid", "attempts", "last_attempt_at"),  # type: ignore[attr-defined]
                    [(feed_id, guid, 1, NOW) for feed_id, guid in pairs])
    return engine


def test_pairs_find_the_stored_pairs_and_never_a_guid_under_another_feed(db_url: str) -> None:
    stored = [("f1", "g1"), ("f2", "g2")] + [("f3", f"g{i}") for i in range(1000)]
    engine = _engine_with_attempts(db_url, stored)
    wanted = [("f1", "g1"), ("f1", "g2"), ("f2", "g3"), ("f3", "g999"), ("f3", "g1000")]
    with Session(engine) as session:
        rows = select_pairs(session, select(PageAttempt.feed_id, PageAttempt.guid), PageAttempt.feed_id, PageAttempt.guid, wanted)  # type: ignore[arg-type]
    found = {(feed_id, guid) for feed_id, guid in rows}
    assert {("f1", "g1"), ("f3", "g999")} <= found <= set(stored)  # (f1, g2) is not stored: f2's g2 is another article
    if engine.dialect.name == "postgresql":
        assert found == {("f1", "g1"), ("f3", "g999")}  # one probe per pair, not per combination


def test_inserted_text_comes_back_as_it_was_written(db_url: str) -> None:
    """COPY's text format on PostgreSQL escapes what it must: tabs, line ends, backslashes,
    the two characters \\N (not NULL), right-to-left text and characters beyond the BMP."""
    tricky = ["a\tb", "line\nbreak\r\n", "back\\slash", "\\N", "الكويت – المملكة المتحدة", "𝔘𝔎 🇰🇼", ""]
    engine = _migrated(db_url)
    rows = [(f"k{i}", NOW, value, None, None, 0.5, None, None, None) for i, value in enumerate(tricky)]
    rows.append(("k-null", NOW, None, 3, NOW, 1.25, NOW, NOW, "session"))
    with engine.begin() as connection:
        insert_rows(connection, Story.__table__, STORY_COLUMNS, rows)  # type: ignore[attr-defined]
    with Session(engine) as session:
        stored = {story.key: story for story in session.exec(select(Story))}
    assert [stored[f"k{i}"].watch for i in range(len(tricky))] == tricky
    null = stored["k-null"]
    assert (null.watch, null.round, null.flagged_at, null.score, null.event) == (None, 3, NOW, 1.25, "session")
