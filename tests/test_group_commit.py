"""Group commit: several feeds' polls recorded in one transaction, on SQLite and PostgreSQL.

The poller's writer records every poll that finished while the previous transaction was
being written in one transaction; each feed must still be all-or-nothing, a failing feed
must fail alone, and what one feed of a group stored must count for the others (dedup and
stories across feeds of the same group).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import func, select

from monitor.config import Config
from monitor.daemon import open_store
from monitor.sources.fetch import FetchOutcome
from monitor.models import Article, Feed, Story
from monitor.sources.parse import parse_feed
from monitor.pipeline import prepare_entry
from monitor.store.group_commit import GroupWriter
from monitor.store import DueFeed, PollResult, Store, StoredPoll
from tests.conftest import make_config
from tests.test_poll import RELEVANT_BODY, RELEVANT_TITLE, filler, item, rss

NOW = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
# The same event as RELEVANT_*, written independently (not a near-duplicate of it).
OTHER_TITLE = "الكويت والولايات المتحدة تعقدان الجولة الرابعة من حوارهما الاستراتيجي في واشنطن"
OTHER_BODY = (
    "عقد وزيرا خارجية الكويت والولايات المتحدة في العاصمة الأمريكية الجولة الرابعة من الحوار الاستراتيجي "
    "بين البلدين، وناقشت مجموعات العمل ملفات الأمن الإقليمي والدفاع والتبادل التجاري والتعليم، "
    "وصدر في ختام الاجتماعات بيان مشترك يؤكد الشراكة الاستراتيجية بين الكويت وواشنطن."
)


def _config(tmp_path: Path, db_url: str, feeds: int) -> Config:
    body = "".join(f'[[feeds]]\nid = "f{i}"\nurl = "http://127.0.0.1:9/f{i}.xml"\n' for i in range(feeds))
    return make_config(tmp_path, body, db_url=db_url)


def _result(config: Config, feed_id: str, items: list[dict]) -> PollResult:
    """What the poller hands the writer after fetching and processing one feed."""
    feed = DueFeed(feed_id, f"http://127.0.0.1:9/{feed_id}.xml", None, None, None, 900, 0, None)
    parsed = parse_feed(rss(items), {}, base_url=feed.url, fetched_at=NOW)
    outcome = FetchOutcome(
        feed_id=feed_id, requested_url=feed.url, final_url=feed.url, permanent_redirect=None, status="ok",
        http_status=200, body=None, headers={}, etag=f'"{feed_id}"', last_modified=None, body_hash=feed_id,
        retry_after=None, error=None, elapsed=0.01,
    )
    return PollResult(
        feed=feed,
        outcome=outcome,
        candidates=tuple(prepare_entry(entry, config.rules, config.dedup) for entry in parsed.entries),
        error=None,
        fetched_at=NOW,
        next_poll_at=NOW + timedelta(minutes=15),
        rules_fingerprint=config.rules.fingerprint,
        dedup_config=config.dedup,
    )


def _articles(store: Store, feed_id: str) -> int:
    with store.session() as session:
        return session.exec(select(func.count()).select_from(Article).where(Article.feed_id == feed_id)).one()


def test_a_failing_feed_fails_alone_and_the_rest_of_the_group_is_stored(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url, 2)
    store = open_store(config)
    results = [
        _result(config, "f0", [filler(0, 1), filler(0, 2)]),
        _result(config, "gone", [filler(9, 1)]),  # not in the database: recording it raises
        _result(config, "f1", [filler(1, 1)]),
    ]
    first, failed, last = store.record_polls(results)
    assert isinstance(first, StoredPoll) and first.new == 2
    assert isinstance(failed, LookupError) and "gone" in str(failed)
    assert isinstance(last, StoredPoll) and last.new == 1
    assert (_articles(store, "f0"), _articles(store, "gone"), _articles(store, "f1")) == (2, 0, 1)
    with store.session() as session:
        feed = session.get(Feed, "f0")
        assert feed.article_count == 2 and feed.etag == '"f0"' and feed.last_status == "ok"
    store.engine.dispose()


def test_one_group_dedups_and_joins_stories_across_its_feeds(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url, 3)
    store = open_store(config)
    dispatch = item("https://www.kuna.net.kw/a/7", RELEVANT_TITLE, RELEVANT_BODY)
    copy = item("https://alrai.example/n/1", RELEVANT_TITLE, RELEVANT_BODY.replace("(كونا)", "(الراي)"), minutes=5)
    rewrite = item("https://aljarida.example/x/2", OTHER_TITLE, OTHER_BODY, minutes=40)
    stored = store.record_polls([
        _result(config, "f0", [dispatch, filler(0, 1)]),
        _result(config, "f1", [copy]),
        _result(config, "f2", [rewrite]),
    ])
    assert [poll.new for poll in stored] == [2, 1, 1]
    assert [poll.near_duplicates for poll in stored] == [0, 1, 0]
    with store.session() as session:
        rows = {row.feed_id: row for row in session.exec(select(Article).where(Article.flagged.is_(True)))}
        assert rows["f1"].duplicate_of == rows["f0"].id
        assert rows["f0"].story_id == rows["f1"].story_id == rows["f2"].story_id is not None
        assert rows["f2"].duplicate_of is None
        story = session.get(Story, rows["f0"].story_id)
        assert story.headline_article_id == rows["f0"].id and story.flagged_at is not None
        # Other news gets no story: only what a watch flags or could flag does.
        plain = session.exec(select(Article).where(Article.flagged.is_(False))).one()
        assert plain.story_id is None
        assert session.exec(select(func.count()).select_from(Story)).one() == 1
    store.engine.dispose()


def test_a_group_larger_than_one_in_list_is_deduplicated_whole(tmp_path: Path, db_url: str) -> None:
    """Look-ups are chunked (a statement's parameters are limited); a group of 1,400 entries
    spans two chunks, and an entry seen again, or at another feed's URL, is found in any."""
    config = _config(tmp_path, db_url, 3)
    store = open_store(config)
    big = [filler(0, i) for i in range(700)]
    other = [filler(1, i) for i in range(700)]
    first = store.record_polls([_result(config, "f0", big), _result(config, "f1", other)])
    assert [poll.new for poll in first] == [700, 700]
    # Again, plus a third feed linking to an article of the first at the end of the list.
    again = store.record_polls([
        _result(config, "f0", big),
        _result(config, "f1", other),
        _result(config, "f2", [item(big[-1]["guid"] + "?utm_source=x", "عنوان", "نص مختلف تماما")]),
    ])
    assert [(poll.new, poll.already_stored) for poll in again] == [(0, 700), (0, 700), (0, 1)]
    assert _articles(store, "f0") + _articles(store, "f1") + _articles(store, "f2") == 1400
    store.engine.dispose()


def test_a_group_is_all_or_nothing(tmp_path: Path, db_url: str) -> None:
    """A crash in the middle of a group (here: the commit never happens) leaves no feed of
    the group half-written: its articles and its feed state are rolled back together."""
    config = _config(tmp_path, db_url, 2)
    store = open_store(config)
    results = [_result(config, "f0", [filler(0, 1)]), _result(config, "f1", [filler(1, 1)])]
    with store.session() as session:
        store._record(session, results)  # everything written, then the "crash": no commit
        session.rollback()
    assert _articles(store, "f0") == _articles(store, "f1") == 0
    with store.session() as session:
        assert session.get(Feed, "f0").last_status is None
    store.engine.dispose()


class _CountingStore(Store):
    def __init__(self, store: Store):
        super().__init__(store.engine)
        self.groups: list[list[str]] = []

    def record_polls(self, results):  # noqa: ANN001, ANN201
        self.groups.append([result.feed.id for result in results])
        return super().record_polls(results)


def _counting_store_and_results(tmp_path: Path, db_url: str, feeds: int) -> tuple[_CountingStore, list[PollResult]]:
    """A store that notes each group it records, and one finished poll per feed."""
    config = _config(tmp_path, db_url, feeds)
    store = _CountingStore(open_store(config))
    return store, [_result(config, f"f{i}", [filler(i, 1)]) for i in range(feeds)]


@pytest.mark.parametrize("max_feeds, groups", [(50, [["f0"], ["f1", "f2", "f3", "f4"]]), (2, [["f0"], ["f1", "f2"], ["f3", "f4"]])])
def test_polls_finishing_during_a_write_share_the_next_transaction(
    tmp_path: Path, db_url: str, max_feeds: int, groups: list[list[str]]
) -> None:
    store, results = _counting_store_and_results(tmp_path, db_url, 5)

    async def run() -> list[StoredPoll]:
        with ThreadPoolExecutor(max_workers=1) as executor:
            writer = GroupWriter(store, executor, linger=0)
            writer.MAX_FEEDS = max_feeds
            busy = threading.Event()
            executor.submit(busy.wait, 10)  # the writer thread is busy with an earlier job
            tasks = [asyncio.create_task(writer.record(result)) for result in results]
            await asyncio.sleep(0.05)
            busy.set()
            return await asyncio.gather(*tasks)

    stored = asyncio.run(run())
    assert [poll.new for poll in stored] == [1] * 5
    assert store.groups == groups
    store.engine.dispose()


def test_polls_finishing_within_the_linger_share_one_transaction(tmp_path: Path, db_url: str) -> None:
    """An idle writer waits `linger` seconds after the first finished poll, so polls that
    finish close together are committed together; one finishing later gets its own."""
    store, results = _counting_store_and_results(tmp_path, db_url, 4)

    async def run() -> list[StoredPoll]:
        with ThreadPoolExecutor(max_workers=1) as executor:
            writer = GroupWriter(store, executor, linger=0.3)
            early = [asyncio.create_task(writer.record(result)) for result in results[:2]]
            await asyncio.sleep(0.1)
            early.append(asyncio.create_task(writer.record(results[2])))  # still within the linger
            stored = await asyncio.gather(*early)
            stored.append(await writer.record(results[3]))
            return stored

    stored = asyncio.run(run())
    assert [poll.new for poll in stored] == [1] * 4
    assert store.groups == [["f0", "f1", "f2"], ["f3"]]
    store.engine.dispose()


def test_a_cancelled_poll_is_not_written_and_the_others_are(tmp_path: Path, db_url: str) -> None:
    store, results = _counting_store_and_results(tmp_path, db_url, 3)

    async def run() -> list[object]:
        with ThreadPoolExecutor(max_workers=1) as executor:
            writer = GroupWriter(store, executor, linger=0)
            busy = threading.Event()
            executor.submit(busy.wait, 10)
            tasks = [asyncio.create_task(writer.record(result)) for result in results]
            await asyncio.sleep(0.05)
            tasks[2].cancel()  # e.g. SIGTERM reached this poll before the writer did
            busy.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

    first, second, third = asyncio.run(run())
    assert isinstance(first, StoredPoll) and isinstance(second, StoredPoll)
    assert isinstance(third, asyncio.CancelledError)
    assert store.groups == [["f0"], ["f1"]]
    assert _articles(store, "f2") == 0
    store.engine.dispose()


def test_closing_the_writer_during_its_linger_writes_nothing_and_raises_nothing(tmp_path: Path, db_url: str) -> None:
    """Shutdown cancels polls still waiting for the writer; closing it then must leave no
    timer that would fire into the closed store thread."""
    store, results = _counting_store_and_results(tmp_path, db_url, 1)
    errors: list[dict] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        executor = ThreadPoolExecutor(max_workers=1)
        writer = GroupWriter(store, executor, linger=0.1)
        task = asyncio.create_task(writer.record(results[0]))
        await asyncio.sleep(0.02)
        task.cancel()
        writer.close()
        executor.shutdown(wait=True)
        await asyncio.sleep(0.2)  # past the linger

    asyncio.run(run())
    assert errors == [] and store.groups == []
    assert _articles(store, "f0") == 0
    store.engine.dispose()


def test_a_poll_whose_writer_thread_was_shut_down_fails_instead_of_waiting_for_ever(tmp_path: Path, db_url: str) -> None:
    """What a reload once did: the old poller's store thread was shut down under a poll still
    lingering for it, the write could not be submitted, and the poll waited for ever."""
    store, results = _counting_store_and_results(tmp_path, db_url, 1)
    errors: list[dict] = []

    async def run() -> object:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        executor = ThreadPoolExecutor(max_workers=1)
        writer = GroupWriter(store, executor, linger=0.05)
        task = asyncio.create_task(writer.record(results[0]))
        await asyncio.sleep(0.01)
        executor.shutdown(wait=True)
        done, _ = await asyncio.wait([task], timeout=10)
        return task.exception() if done else "still waiting"

    outcome = asyncio.run(run())
    assert isinstance(outcome, RuntimeError) and "shutdown" in str(outcome)
    assert errors == [] and store.groups == []
    store.engine.dispose()
