"""The story rules in the store (SqlDedup), on SQLite and PostgreSQL: an article that states
no round never bridges two rounds, across polls or inside one batch, and news that follows a
delivered story reaches the next digest."""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from sqlmodel import select

from monitor import notify
from monitor.config import Config
from monitor.daemon import open_store
from monitor.sources.fetch import FetchOutcome
from monitor.models import Article, Story
from monitor.sources.parse import ParsedEntry
from monitor.pipeline import prepare_entry
from monitor.relevance import Decision
from monitor.store import DueFeed, PollResult, Store
from tests.conftest import make_config
from tests.test_dedup import FIXTURES
from tests.test_dedup_stories import CHAIN, articles_strategy
from tests.webhookreceiver import WebhookReceiver, webhook_receiver  # noqa: F401

UTC = timezone.utc
FEEDS = ("kuna", "alanba", "alrai")


class FixedRules:
    """Answers with the decision it is given: these tests are about stories, not relevance."""

    fingerprint = "fixed"

    def __init__(self, decision: Decision):
        self.decision = decision

    def classify(self, title: str, body: str) -> Decision:
        return self.decision

    def could_concern(self, decision: Decision) -> bool:
        return True


def _config(tmp_path: Path, db_url: str, extra: str = "") -> Config:
    body = "".join(f'[[feeds]]\nid = "{feed}"\nname = "{feed}"\nurl = "http://127.0.0.1:9/{feed}.xml"\n' for feed in FEEDS)
    return make_config(tmp_path, body + extra, db_url=db_url)


def _candidate(config: Config, title: str, body: str, url: str, published: datetime,
               watch: str | None, round_: int | None) -> Any:
    entry = ParsedEntry(guid=url, link=url, title=title, summary=body, published=published,
                        published_is_fallback=False, author=None, language="ar")
    decision = Decision(flagged=watch is not None, watch=watch, score=9.0 if watch else 0.0, threshold=5.0,
                        round=round_, topics=(), matches=())
    return prepare_entry(entry, FixedRules(decision), config.dedup)  # type: ignore[arg-type]


def _poll(config: Config, feed_id: str, candidates: list, seen_at: datetime) -> PollResult:
    feed = DueFeed(feed_id, f"http://127.0.0.1:9/{feed_id}.xml", None, None, None, 900, 0, None)
    outcome = FetchOutcome(
        feed_id=feed_id, requested_url=feed.url, final_url=feed.url, permanent_redirect=None, status="ok",
        http_status=200, body=None, headers={}, etag=None, last_modified=None, body_hash=None,
        retry_after=None, error=None, elapsed=0.01,
    )
    return PollResult(feed=feed, outcome=outcome, candidates=tuple(candidates), error=None, fetched_at=seen_at,
                      next_poll_at=seen_at + timedelta(minutes=15), rules_fingerprint="fixed",
                      dedup_config=config.dedup)


def _named(config: Config, name: str) -> Any:
    item = CHAIN.get(name) or FIXTURES[name]
    return _candidate(config, item["title"], item["body"], item["url"], datetime.fromisoformat(item["published"]),
                      item["watch"], item["round"])


def _stories(store: Store) -> dict[str, tuple[int | None, int | None]]:
    """Each article's (story id, round), by URL."""
    with store.session() as session:
        return {row.link: (row.story_id, row.round) for row in session.exec(select(Article))}


def _rounds_per_story(store: Store, column: Any = Article.round) -> dict[int, set]:
    with store.session() as session:
        rounds: dict[int, set] = defaultdict(set)
        for story_id, value in session.exec(select(Article.story_id, column)):
            if story_id is not None and value is not None:
                rounds[story_id].add(value)
        return rounds


def test_a_roundless_article_never_bridges_two_rounds_across_polls(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url)
    store = open_store(config)
    now = datetime.now(UTC)
    for minutes, (feed, name) in enumerate([("kuna", "r5_dispatch"), ("alanba", "roundless"), ("alrai", "round6")]):
        store.record_poll(_poll(config, feed, [_named(config, name)], now + timedelta(minutes=minutes)))
    stories = _stories(store)
    r5, bridge, r6 = (stories[CHAIN.get(n, FIXTURES.get(n))["url"]] for n in ("r5_dispatch", "roundless", "round6"))
    assert bridge[0] == r5[0]
    assert r6[0] != r5[0]
    with store.session() as session:
        story = session.get(Story, r5[0])
        assert story.round == 5
        assert story.first_published_at == datetime.fromisoformat(FIXTURES["r5_dispatch"]["published"])
        assert story.last_published_at == datetime.fromisoformat(CHAIN["roundless"]["published"])
        assert session.get(Story, r6[0]).round == 6
    store.engine.dispose()


def test_a_roundless_article_never_bridges_two_rounds_inside_one_batch(tmp_path: Path, db_url: str) -> None:
    """Story decisions inside one batch see what the batch's earlier articles did to a story."""
    config = _config(tmp_path, db_url)
    store = open_store(config)
    now = datetime.now(UTC)
    store.record_poll(_poll(config, "kuna", [_named(config, "roundless")], now))
    store.record_polls([
        _poll(config, "alanba", [_named(config, "r5_dispatch")], now),
        _poll(config, "alrai", [_named(config, "round6")], now),
    ])
    stories = _stories(store)
    bridge, r5, r6 = (stories[CHAIN.get(n, FIXTURES.get(n))["url"]] for n in ("roundless", "r5_dispatch", "round6"))
    assert r5[0] == bridge[0]  # the round-less story takes round 5 ...
    assert r6[0] != bridge[0]  # ... and then refuses round 6, though the batch has not been written yet
    assert all(len(rounds) == 1 for rounds in _rounds_per_story(store).values())
    store.engine.dispose()


def test_news_after_a_delivered_story_reaches_the_next_digest(
    tmp_path: Path, db_url: str, webhook_receiver: WebhookReceiver  # noqa: F811
) -> None:
    """Round-5 article, digest sent, a round-less follow-up, a round-6 announcement: the next
    digest carries the round-6 news, and not the round-5 story again."""
    extra = f"""
[[channels]]
id = "hook"
type = "webhook"
url = "{webhook_receiver.url}"
secret_env = "HOOK_SECRET"
timeout = "2s"

[[digests]]
id = "daily"
at = "07:30"
watches = ["kw-us", "kw-uk"]
channels = ["hook"]
"""
    body = "".join(f'[[feeds]]\nid = "{feed}"\nname = "{feed}"\nurl = "http://127.0.0.1:9/{feed}.xml"\n' for feed in FEEDS)
    config = make_config(tmp_path, body + extra, db_url=db_url, environ={"HOOK_SECRET": webhook_receiver.secret})
    store = open_store(config)
    digest = config.digests[0]
    start = datetime.now(UTC) - timedelta(hours=3)

    store.record_poll(_poll(config, "kuna", [_named(config, "r5_dispatch")], start))
    first = notify.build_digest(store, config, digest, slot=start + timedelta(minutes=30), now=start + timedelta(minutes=30))
    asyncio.run(notify.send_due(store, config))
    assert first.stories == 1
    store.record_poll(_poll(config, "alanba", [_named(config, "roundless")], start + timedelta(hours=1)))
    store.record_poll(_poll(config, "alrai", [_named(config, "round6")], start + timedelta(hours=2)))
    second = notify.build_digest(store, config, digest, slot=start + timedelta(hours=2, minutes=30),
                                 now=start + timedelta(hours=2, minutes=30))
    asyncio.run(notify.send_due(store, config))

    assert second.stories == 1
    first_payload, second_payload = webhook_receiver.payloads()

    def items(payload: dict) -> list[dict]:
        return [item for section in payload["data"]["sections"] for item in section["items"]]

    assert [item["headline"] for item in items(first_payload)] == [FIXTURES["r5_dispatch"]["title"]]
    [news] = items(second_payload)
    assert news["headline"] == CHAIN["round6"]["title"] and news["round"] == 6
    stories = _stories(store)
    assert stories[CHAIN["roundless"]["url"]][0] == stories[FIXTURES["r5_dispatch"]["url"]][0]  # same news, not resent
    store.engine.dispose()


def test_a_delivered_story_does_not_take_a_round_it_never_stated(tmp_path: Path, db_url: str,
                                                                webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    """A round-less story was sent; a write-up naming round 6 is news, so a story of its own."""
    extra = (f'[[channels]]\nid = "hook"\ntype = "webhook"\nurl = "{webhook_receiver.url}"\nsecret_env = "HOOK_SECRET"\n'
             '[[digests]]\nid = "daily"\nat = "07:30"\nwatches = ["kw-us"]\nchannels = ["hook"]\n')
    body = "".join(f'[[feeds]]\nid = "{feed}"\nname = "{feed}"\nurl = "http://127.0.0.1:9/{feed}.xml"\n' for feed in FEEDS)
    config = make_config(tmp_path, body + extra, db_url=db_url, environ={"HOOK_SECRET": webhook_receiver.secret})
    store = open_store(config)
    start = datetime.now(UTC) - timedelta(hours=3)
    store.record_poll(_poll(config, "kuna", [_named(config, "roundless")], start))
    assert notify.build_digest(store, config, config.digests[0], slot=start, now=start + timedelta(minutes=1)).stories == 1
    store.record_poll(_poll(config, "alrai", [_named(config, "round6")], start + timedelta(hours=1)))
    stories = _stories(store)
    assert stories[CHAIN["round6"]["url"]][0] != stories[CHAIN["roundless"]["url"]][0]
    later = notify.preview_digest(store, config, config.digests[0], now=start + timedelta(hours=2))
    assert [item.headline for section in later.sections for item in section.items] == [CHAIN["round6"]["title"]]
    store.engine.dispose()


# -- the story-chain property, on the store ------------------------------------------------------

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(articles_strategy, articles_strategy.map(len))
def test_no_sequence_of_polls_puts_two_rounds_or_watches_in_one_story_in_the_store(articles: list, batch_size: int) -> None:
    """The same random articles as on the cluster path, recorded in polls of random sizes
    (several articles of one poll are decided in one batch) into a fresh SQLite file."""
    from tests.test_dedup_stories import _features  # the same generator

    with tempfile.TemporaryDirectory(prefix="stories-") as tmp:
        config = _config(Path(tmp), f"sqlite:///{Path(tmp) / 'monitor.db'}")
        store = open_store(config)
        now = datetime.now(UTC)
        candidates = []
        for number, spec in enumerate(articles):
            features = _features(*spec)
            text = " ".join(spec[3])
            url = f"https://news.example/{spec[4]}"
            candidates.append(_candidate(config, text[:40], text, url, features.published, spec[0], spec[1]))
            # one feed per article position, so a guid is never seen twice by one feed
        size = max(1, batch_size % 4 + 1)
        for start in range(0, len(candidates), size):
            polls = [
                _poll(config, FEEDS[(start + offset) % len(FEEDS)], [candidate], now + timedelta(seconds=start))
                for offset, candidate in enumerate(candidates[start : start + size])
            ]
            store.record_polls(polls)
        for story_id, rounds in _rounds_per_story(store).items():
            assert len(rounds) <= 1, f"story {story_id} holds rounds {sorted(rounds)}"
        for story_id, watches in _rounds_per_story(store, Article.watch).items():
            assert len(watches) <= 1, f"story {story_id} holds watches {sorted(watches)}"
        with store.session() as session:
            for story in session.exec(select(Story)):
                if story.first_published_at is not None:
                    assert story.last_published_at - story.first_published_at <= config.dedup.story_window
        store.engine.dispose()


def test_migration_0005_gives_existing_stories_their_span_and_round(db_url: str) -> None:
    """Stories stored before 0005 get the span of their write-ups (copies aside) and the
    round their articles state."""
    from alembic import command
    from sqlalchemy import text

    from monitor.store import alembic_config, make_engine

    engine = make_engine(db_url)
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0004")
    stamp = "2023-03-{:02d} {:02d}:00:00".format
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO feed (id, url, configured_url, name, enabled, interval_seconds, consecutive_failures,"
            " next_poll_at, article_count) VALUES ('kuna', 'u', 'u', 'k', true, 900, 0, :t, 0)"), {"t": stamp(1, 0)})
        connection.execute(text(
            "INSERT INTO story (id, key, first_seen_at, score, round) VALUES (1, 'a', :t, 0, NULL), (2, 'b', :t, 0, 4)"),
            {"t": stamp(1, 0)})
        rows = [  # id, story, published (day, hour), duplicate_of, round
            (1, 1, (14, 18), None, None), (2, 1, (15, 9), None, 5), (3, 1, (25, 0), 1, None), (4, 2, (2, 3), None, None),
        ]
        for article_id, story_id, (day, hour), duplicate_of, round_ in rows:
            connection.execute(text(
                "INSERT INTO article (id, feed_id, guid, fingerprint, title, summary, published_at,"
                " published_is_fallback, first_seen_at, flagged, score, decision, rules_fingerprint, story_id,"
                " duplicate_of, round) VALUES (:id, 'kuna', :guid, 'f', 't', 's', :p, false, :p, true, 1, '{}', 'r',"
                " :story, :dup, :round)"),
                {"id": article_id, "guid": str(article_id), "p": stamp(day, hour), "story": story_id,
                 "dup": duplicate_of, "round": round_})
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0005")
    columns = (Story.round, Story.first_published_at, Story.last_published_at)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        found = {row[0]: tuple(row[1:]) for row in connection.execute(select(Story.id, *columns))}
    assert found == {
        1: (5, datetime(2023, 3, 14, 18, tzinfo=UTC), datetime(2023, 3, 15, 9, tzinfo=UTC)),  # the copy of the 25th aside
        2: (4, datetime(2023, 3, 2, 3, tzinfo=UTC), datetime(2023, 3, 2, 3, tzinfo=UTC)),
    }
    engine.dispose()


def test_band_rows_left_by_a_copy_in_an_older_database_lead_to_its_original(tmp_path: Path, db_url: str) -> None:
    """Since #13 copies get no band rows; an older database has some. A hit on a copy's band
    row is dropped (the copy is not read), and a new copy is found as its original's."""
    from monitor.models import ArticleBand
    from tests.test_dedup import syndicated_copy

    config = _config(tmp_path, db_url)
    store = open_store(config)
    now = datetime.now(UTC)

    def candidate(item: dict, url: str) -> Any:
        return _candidate(config, item["title"], item["body"], url, datetime.fromisoformat(item["published"]),
                          item["watch"], item["round"])

    original = candidate(FIXTURES["r5_dispatch"], "https://kuna.example/1")
    first_copy = candidate(syndicated_copy("persian_letters"), "https://alanba.example/1")
    store.record_poll(_poll(config, "kuna", [original], now))
    store.record_poll(_poll(config, "alanba", [first_copy], now + timedelta(minutes=1)))
    with store.session() as session:
        by_link = {a.link: a for a in session.exec(select(Article))}
        original_id, copy_id = by_link["https://kuna.example/1"].id, by_link["https://alanba.example/1"].id
        assert by_link["https://alanba.example/1"].duplicate_of == original_id
        assert not session.exec(select(ArticleBand).where(ArticleBand.article_id == copy_id)).all()
        session.add_all(ArticleBand(article_id=copy_id, band=band, hash=value)  # as an older version stored it
                        for band, value in enumerate(first_copy.features.band_hashes))
        session.commit()
    second_copy = candidate(syndicated_copy("missing_spaces"), "https://alrai.example/1")
    store.record_poll(_poll(config, "alrai", [second_copy], now + timedelta(minutes=2)))
    with store.session() as session:
        stored = session.exec(select(Article).where(Article.link == "https://alrai.example/1")).one()
    assert stored.duplicate_of == original_id
    store.engine.dispose()
