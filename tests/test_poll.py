"""The whole pipeline, fetch → parse → classify → dedup → store, against a real HTTP server on
loopback and real databases: every entry stored exactly once, broken feeds contained."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import weakref
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from sqlmodel import delete, func, select

from monitor.cli import main
from monitor.config import Config
from monitor.daemon import open_store
from monitor.models import Article, Feed, Story
from monitor.pipeline import settle_garbage_collector
from monitor.poll import Poller
from monitor.store import Store
from tests.conftest import REPO, make_config, write_config
from tests.feedserver import FeedServer, feed_server  # noqa: F401

RELEVANT_TITLE = "انطلاق الجولة الرابعة من الحوار الاستراتيجي بين الكويت والولايات المتحدة"
RELEVANT_BODY = (
    "واشنطن - (كونا) -- انطلقت اليوم أعمال الجولة الرابعة من الحوار الاستراتيجي بين دولة الكويت "
    "والولايات المتحدة الأمريكية برئاسة وزير الخارجية الكويتي ووزير الخارجية الأمريكي، وبحث الجانبان "
    "التعاون في مجالات الدفاع والأمن والتعليم والتجارة والاستثمار، وأكد الجانبان متانة العلاقات بين البلدين."
)


def item(guid: str, title: str, body: str, *, minutes: int = 0, link: str | None = None) -> dict:
    return {"guid": guid, "title": title, "body": body, "link": link or guid,
            "published": datetime(2026, 11, 20, 8, tzinfo=timezone.utc) + timedelta(minutes=minutes)}


def rss(items: list[dict], title: str = "أخبار") -> bytes:
    entries = "".join(
        f"<item><title>{escape(it['title'])}</title><link>{escape(it['link'])}</link>"
        f"<guid>{escape(it['guid'])}</guid><pubDate>{format_datetime(it['published'])}</pubDate>"
        f"<description>{escape(it['body'])}</description></item>"
        for it in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>https://news.example/</link><description>d</description>{entries}</channel></rss>").encode()


def filler(feed: int, index: int) -> dict:
    return item(f"https://news{feed}.example/a/{index}", f"خبر محلي رقم {index} من المصدر {feed}",
                f"نص الخبر {index} عن أحوال الطقس والأسواق والرياضة في المصدر {feed} " * 3, minutes=index)


def feeds_toml(server: FeedServer, paths: list[str], extra: str = "") -> str:
    """Feeds whose entries link to hosts that do not exist here: no article pages fetched
    (tests/test_sources.py covers full text)."""
    return "[polling]\nparse_workers = 1\ntimeout = \"3s\"\n" + extra + "".join(
        f'[[feeds]]\nid = "f{i}"\nname = "مصدر {i}"\nurl = "{server.url(path)}"\nfull_text = "never"\n'
        for i, path in enumerate(paths)
    )


def poll(config: Config, store: Store, only: list[str] | None = None) -> list:
    async def run() -> list:
        async with Poller(config, store) as poller:
            return await poller.poll_due(only=only or [feed.id for feed in config.feeds])
    return asyncio.run(run())


def count(store: Store, *where: object) -> int:
    with store.session() as session:
        return session.exec(select(func.count()).select_from(Article).where(*where)).one()


def test_fifty_feeds_stored_exactly_once_and_second_pass_is_all_304(
    tmp_path: Path, db_url: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    paths = []
    for feed in range(50):
        path = f"/feed{feed}.xml"
        feed_server.route(path, rss([filler(feed, i) for i in range(8)]), etag=f'"v{feed}"')
        paths.append(path)
    config_path = write_config(tmp_path, feeds_toml(feed_server, paths), db_url=db_url)

    assert main(["--config", str(config_path), "poll"]) == 0
    out = capsys.readouterr().out
    assert "50 feeds polled, 0 failed, 400 new articles" in out
    assert out.count(" ok ") == 50

    assert main(["--config", str(config_path), "poll"]) == 0
    out = capsys.readouterr().out
    assert "50 feeds polled, 0 failed, 0 new articles" in out
    assert out.count("not_modified") == 50
    assert all(feed_server.requests_for(p)[-1].headers.get("if-none-match") for p in paths)

    config = make_config(tmp_path, feeds_toml(feed_server, paths), db_url=db_url)
    store = open_store(config)
    assert count(store) == 400
    health = {row.id: row for row in store.feed_health()}
    assert all(row.article_count == 8 and row.has_etag and row.consecutive_failures == 0 for row in health.values())
    store.engine.dispose()


def test_broken_feeds_fail_alone_with_a_stored_error_and_backoff(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.route("/good.xml", rss([filler(1, i) for i in range(3)]))
    feed_server.route("/down.xml", b"oops", status=500, content_type="text/plain")
    feed_server.route("/page.html", b"<html><body><h1>Not a feed</h1></body></html>", content_type="text/html")
    feed_server.route("/slow.xml", rss([filler(2, 1)]), delay=5)
    feed_server.route("/busy.xml", b"", status=429, retry_after="120")
    config = make_config(tmp_path, feeds_toml(feed_server, ["/good.xml", "/down.xml", "/page.html", "/slow.xml", "/busy.xml"]), db_url=db_url)
    store = open_store(config)
    started = datetime.now(timezone.utc)
    reports = {r.feed_id: r for r in poll(config, store)}
    assert reports["f0"].status == "ok" and reports["f0"].new_articles == 3
    assert {fid for fid, r in reports.items() if r.status == "error"} == {"f1", "f2", "f3", "f4"}
    health = {row.id: row for row in store.feed_health()}
    assert "500" in health["f1"].last_error
    assert health["f2"].last_error and "feed" in health["f2"].last_error.lower()
    assert "timeout" in health["f3"].last_error.lower() or "timed out" in health["f3"].last_error.lower()
    assert health["f4"].next_poll_at >= started + timedelta(seconds=119)  # Retry-After honoured
    for fid in ("f1", "f2", "f3", "f4"):
        assert health[fid].consecutive_failures == 1
        assert health[fid].next_poll_at > started  # backed off, still scheduled: never parked
    assert count(store) == 3
    store.engine.dispose()


def test_decisions_and_dedup_are_stored_with_the_articles(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    original = item("https://www.kuna.net.kw/a/1?utm_source=rss", RELEVANT_TITLE, RELEVANT_BODY)
    # A syndicated copy: another outlet, a new headline, the dispatch with a changed dateline.
    copy = item("https://alanba.example/n/9", "الكويت وواشنطن تطلقان الجولة الرابعة للحوار الاستراتيجي",
                RELEVANT_BODY.replace("واشنطن - (كونا) --", "واشنطن - الأنباء:"), minutes=30)
    # The same URL in a third feed (tracking parameters aside) is the same article.
    same_url = item("https://kuna.net.kw/a/1", RELEVANT_TITLE, RELEVANT_BODY, minutes=5)
    unrelated = filler(3, 1)
    feed_server.route("/kuna.xml", rss([original, unrelated]))
    feed_server.route("/anba.xml", rss([copy]))
    feed_server.route("/third.xml", rss([same_url]))
    config = make_config(tmp_path, feeds_toml(feed_server, ["/kuna.xml", "/anba.xml", "/third.xml"]), db_url=db_url)
    store = open_store(config)
    poll(config, store, only=["f0"])
    poll(config, store, only=["f1", "f2"])

    with store.session() as session:
        rows = {row.feed_id + ":" + row.guid: row for row in session.exec(select(Article))}
        assert len(rows) == 3  # the third feed's entry was not stored again
        first = rows["f0:" + original["guid"]]
        second = rows["f1:" + copy["guid"]]
        assert first.flagged and first.watch == "kw-us" and first.round == 4
        assert '"matches"' in first.decision and first.rules_fingerprint == config.rules.fingerprint
        assert not rows["f0:" + unrelated["guid"]].flagged
        assert second.duplicate_of == first.id and second.story_id == first.story_id
        story = session.get(Story, first.story_id)
        assert story.flagged_at is not None and story.watch == "kw-us"
        assert session.get(Feed, "f2").article_count == 0
    store.engine.dispose()


def test_permanent_redirect_updates_the_stored_url(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/new.xml", rss([filler(1, 1)]))
    feed_server.redirect("/old.xml", "/new.xml", status=301)
    config = make_config(tmp_path, feeds_toml(feed_server, ["/old.xml"]), db_url=db_url)
    store = open_store(config)
    assert poll(config, store)[0].new_articles == 1
    assert store.feed_health()[0].url == feed_server.url("/new.xml")
    store.engine.dispose()


def test_process_pool_gives_the_same_result(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/a.xml", rss([item("https://k.example/1", RELEVANT_TITLE, RELEVANT_BODY), filler(1, 1)]))
    body = feeds_toml(feed_server, ["/a.xml"]).replace("parse_workers = 1", "parse_workers = 2")
    config = make_config(tmp_path, body)
    store = open_store(config)
    [report] = poll(config, store)
    assert (report.new_articles, report.flagged) == (2, 1)
    store.engine.dispose()


def test_a_dead_parse_worker_is_replaced_and_its_feeds_still_stored(
    tmp_path: Path, feed_server: FeedServer  # noqa: F811
) -> None:
    """A parse worker killed (out of memory, or a crash in a C library on a hostile feed)
    breaks the whole process pool; the poller starts a new one and parses again."""
    feed_server.route("/a.xml", rss([filler(1, 1)]))
    feed_server.route("/b.xml", rss([filler(2, 1), filler(2, 2)]))
    feed_server.route("/c.xml", rss([item("https://k.example/1", RELEVANT_TITLE, RELEVANT_BODY)]))
    body = feeds_toml(feed_server, ["/a.xml", "/b.xml", "/c.xml"]).replace("parse_workers = 1", "parse_workers = 2")
    config = make_config(tmp_path, body)
    store = open_store(config)

    async def run() -> tuple[list, list]:
        async with Poller(config, store) as poller:
            first = await poller.poll_due(only=["f0"])
            broken = poller._pool
            for process in list(broken._processes.values()):  # type: ignore[attr-defined]
                os.kill(process.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not broken._broken and time.monotonic() < deadline:  # type: ignore[attr-defined]
                await asyncio.sleep(0.05)
            assert broken._broken  # type: ignore[attr-defined]
            second = await poller.poll_due(only=["f1", "f2"])
            assert poller._pool is not broken
            return first, second

    first, second = asyncio.run(run())
    assert [r.new_articles for r in first] == [1]
    assert sorted((r.feed_id, r.status, r.new_articles, r.flagged) for r in second) == [("f1", "ok", 2, 0), ("f2", "ok", 1, 1)]
    assert count(store) == 4
    store.engine.dispose()


class _FeedRemovedMidPass(Store):
    """A real Store; the feed "f1" row disappears from the database right after the claim
    (as if an operator deleted it), so recording its poll really fails."""

    def claim_due_feeds(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        claimed = super().claim_due_feeds(*args, **kwargs)
        with self.session() as session:
            session.exec(delete(Feed).where(Feed.id == "f1"))
            session.commit()
        return claimed


def test_a_feed_whose_poll_crashes_fails_alone(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    for name in ("a", "b", "c"):
        feed_server.route(f"/{name}.xml", rss([filler(ord(name), 1)]))
    config = make_config(tmp_path, feeds_toml(feed_server, ["/a.xml", "/b.xml", "/c.xml"]), db_url=db_url)
    store = open_store(config)
    reports = {r.feed_id: r for r in poll(config, _FeedRemovedMidPass(store.engine))}
    assert reports["f1"].status == "error" and "LookupError" in reports["f1"].error
    assert (reports["f0"].status, reports["f0"].new_articles) == ("ok", 1)
    assert (reports["f2"].status, reports["f2"].new_articles) == ("ok", 1)
    assert count(store) == 2
    store.engine.dispose()


def test_sigkill_mid_poll_then_restart_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, feed_server: FeedServer  # noqa: F811
) -> None:
    expected = 0
    paths = []
    for feed in range(30):
        path = f"/k{feed}.xml"
        # Half the feeds answer slowly, so the kill lands while polls are in flight.
        feed_server.route(path, rss([filler(feed, i) for i in range(5)]), delay=1.5 if feed % 2 else 0, drip=0.05 if feed % 3 == 0 else 0)
        paths.append(path)
        expected += 5
    config_path = write_config(tmp_path, feeds_toml(feed_server, paths).replace('timeout = "3s"', 'timeout = "10s"'))
    process = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config_path), "run"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(feed_server.hits(p) for p in paths) < 20:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(10)

    config = make_config(tmp_path, feeds_toml(feed_server, paths))
    store = open_store(config)
    stored_before = count(store)
    assert stored_before < expected, "the kill came too late to interrupt the pass"
    # The restart: the killed process's leases expire; poll the rest (the CLI claims by name).
    assert main(["--config", str(config_path), "poll"]) == 0
    assert count(store) == expected
    with store.session() as session:
        guids = session.exec(select(Article.feed_id, Article.guid)).all()
    assert len(guids) == len(set(guids)) == expected
    store.engine.dispose()


def test_sigterm_stops_the_daemon_cleanly_and_notifies_systemd(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    import socket

    feed_server.route("/a.xml", rss([filler(1, i) for i in range(3)]), delay=0.5)
    config_path = write_config(tmp_path, feeds_toml(feed_server, ["/a.xml"]))
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify_path))
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
        process = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config_path), "run"],
                                   cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert sock.recv(4096).startswith(b"READY=1")
        while feed_server.hits("/a.xml") == 0:
            time.sleep(0.05)
        assert sock.recv(4096) == b"WATCHDOG=1"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert time.monotonic() - started < 10
        messages = []
        sock.settimeout(1)
        try:
            while True:
                messages.append(sock.recv(4096))
        except TimeoutError:
            pass
        assert any(m.startswith(b"STOPPING=1") for m in messages)
    stderr = process.stderr.read().decode()
    assert "daemon stopped" in stderr


def test_reclassify_applies_the_current_rules_to_stored_articles(
    tmp_path: Path, db_url: str, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    feed_server.route("/a.xml", rss([item("https://k.example/1", RELEVANT_TITLE, RELEVANT_BODY), filler(1, 1)]))
    config_path = write_config(tmp_path, feeds_toml(feed_server, ["/a.xml"]), db_url=db_url)
    assert main(["--config", str(config_path), "poll"]) == 0
    config = make_config(tmp_path, feeds_toml(feed_server, ["/a.xml"]), db_url=db_url)
    store = open_store(config)
    # Pretend the articles were decided under older rules that missed the relevant one.
    with store.session() as session:
        for row in session.exec(select(Article)):
            row.flagged, row.watch, row.round, row.rules_fingerprint = False, None, None, "old-rules"
            session.add(row)
        session.commit()
    capsys.readouterr()
    assert main(["--config", str(config_path), "reclassify"]) == 0
    assert capsys.readouterr().out.startswith("1 articles changed decision")
    assert count(store, Article.flagged.is_(True)) == 1
    assert count(store, Article.rules_fingerprint == config.rules.fingerprint) == 2
    with store.session() as session:
        story = session.exec(select(Story).where(Story.flagged_at.is_not(None))).one()
        assert story.watch == "kw-us"
    # Nothing left to do: a second run changes nothing.
    assert main(["--config", str(config_path), "reclassify"]) == 0
    assert capsys.readouterr().out.startswith("0 articles changed decision")
    store.engine.dispose()


def test_reclassify_gives_a_story_to_an_article_stored_without_one(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    """Articles no watch could flag are stored without a story; when new rules flag one,
    reclassify starts its story (which its stored copy joins) so digests can carry it."""
    dispatch = item("https://k.example/1", RELEVANT_TITLE, RELEVANT_BODY)
    copy = item("https://k.example/2", RELEVANT_TITLE, RELEVANT_BODY, minutes=3)
    feed_server.route("/a.xml", rss([dispatch, copy]))
    body = feeds_toml(feed_server, ["/a.xml"])
    without_watches = write_config(tmp_path / "before", body, db_url=db_url, with_rules=False)
    assert main(["--config", str(without_watches), "poll"]) == 0
    config_path = write_config(tmp_path / "after", body, db_url=db_url)
    store = open_store(make_config(tmp_path / "after", body, db_url=db_url))
    with store.session() as session:
        rows = session.exec(select(Article).order_by(Article.id)).all()
        assert [row.story_id for row in rows] == [None, None] and rows[1].duplicate_of == rows[0].id
        assert session.exec(select(func.count()).select_from(Story)).one() == 0
    assert main(["--config", str(config_path), "reclassify"]) == 0
    with store.session() as session:
        first, second = session.exec(select(Article).order_by(Article.id)).all()
        assert first.flagged and first.story_id is not None and second.story_id == first.story_id
        story = session.get(Story, first.story_id)
        assert story.flagged_at is not None and story.watch == "kw-us" and story.headline_article_id == first.id
    store.engine.dispose()


def test_sighup_reloads_the_config_and_rejects_a_bad_one(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/a.xml", rss([filler(1, 1)]))
    feed_server.route("/b.xml", rss([filler(2, 1)]))
    config_path = write_config(tmp_path, feeds_toml(feed_server, ["/a.xml"]))
    process = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config_path), "run"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: feed_server.hits("/a.xml") >= 1)
        good = config_path.read_text(encoding="utf-8")
        config_path.write_text(good.replace("[polling]", "[polling]\ninterval = \"never\""), encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert process.poll() is None  # a bad config is rejected; the daemon keeps running
        config_path.write_text(good + f'[[feeds]]\nid = "late"\nurl = "{feed_server.url("/b.xml")}"\n', encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: feed_server.hits("/b.xml") >= 1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    stderr = process.stderr.read()
    assert "config reload rejected" in stderr and "polling.interval" in stderr
    assert "config reloaded" in stderr


def _wait_for(condition, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_same_story_from_two_feeds_in_one_pass_and_after_a_restart(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    """Two feeds carrying one dispatch, fetched concurrently in one pass, store it once plus
    one linked copy; a third copy arriving after a restart (new engine, nothing in memory)
    is still recognised through the band table."""
    dispatch = item("https://www.kuna.net.kw/a/7", RELEVANT_TITLE, RELEVANT_BODY)
    copy = item("https://alrai.example/n/1", "الحوار الاستراتيجي الكويتي الأمريكي ينطلق في جولته الرابعة",
                RELEVANT_BODY.replace("(كونا)", "(الراي)"), minutes=20)
    late = item("https://aljarida.example/x/2", "جولة رابعة للحوار الاستراتيجي بين الكويت وواشنطن",
                RELEVANT_BODY.replace("واشنطن - (كونا) --", "واشنطن - الجريدة:"), minutes=90)
    feed_server.route("/a.xml", rss([dispatch]), delay=0.2)
    feed_server.route("/b.xml", rss([copy]), delay=0.2)
    feed_server.route("/c.xml", rss([late]))
    body = feeds_toml(feed_server, ["/a.xml", "/b.xml", "/c.xml"])
    config = make_config(tmp_path, body, db_url=db_url)
    store = open_store(config)
    reports = poll(config, store, only=["f0", "f1"])
    assert sum(r.new_articles for r in reports) == 2
    assert sum(r.near_duplicates for r in reports) == 1
    store.engine.dispose()

    restarted = open_store(make_config(tmp_path, body, db_url=db_url))
    [report] = poll(config, restarted, only=["f2"])
    assert report.near_duplicates == 1
    with restarted.session() as session:
        rows = session.exec(select(Article).order_by(Article.id)).all()
        originals = [row for row in rows if row.duplicate_of is None]
        assert len(originals) == 1
        assert all(row.duplicate_of == originals[0].id for row in rows if row is not originals[0])
        assert len({row.story_id for row in rows}) == 1
        flagged_stories = session.exec(select(Story).where(Story.flagged_at.is_not(None))).all()
        assert len(flagged_stories) == 1
    restarted.engine.dispose()


def test_a_new_poller_lets_go_of_what_the_previous_one_froze() -> None:
    """Each poller freezes what is alive at its start (the collector then skips it); after a
    config reload, the previous config's cyclic garbage must still be collectable."""
    class Node:
        peer: object

    first, second = Node(), Node()
    first.peer, second.peer = second, first
    gone = weakref.ref(first)
    settle_garbage_collector(old_config := object())  # the first poller: the cycle is alive and frozen
    del first, second
    settle_garbage_collector(old_config)  # a second pass on the same config: settled already
    assert gone() is not None  # (frozen still: no full collection ran)
    settle_garbage_collector(object())  # the next poller, after SIGHUP: a new config
    assert gone() is None


def test_stored_guids_are_read_only_for_a_document_that_is_parsed(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    """Most polls of a running daemon are 304s: they need no look-up of the feed's stored
    guids; a changed feed reads them once, and only its new entries are stored."""
    items = [filler(0, i) for i in range(3)]
    feed_server.route("/rss", rss(items), etag='"v1"')
    config = make_config(tmp_path, feeds_toml(feed_server, ["/rss"]), db_url=db_url)
    store = open_store(config)
    reads: list[str] = []
    read = store.known_guids

    def counting(feed_id: str) -> set[str]:
        reads.append(feed_id)
        return read(feed_id)

    store.known_guids = counting  # type: ignore[method-assign]
    assert [r.new_articles for r in poll(config, store)] == [3]
    reads.clear()
    assert [(r.status, r.new_articles) for r in poll(config, store)] == [("not_modified", 0)]
    assert reads == []
    feed_server.route("/rss", rss([*items, filler(0, 3)]), etag='"v2"')
    assert [(r.status, r.entries, r.new_articles) for r in poll(config, store)] == [("ok", 4, 1)]
    assert reads == ["f0"]
    assert count(store) == 4
    store.engine.dispose()


def test_a_slow_writer_holds_back_fetching_instead_of_queueing_every_feed(
    tmp_path: Path, db_url: str, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """With the writer stuck, a pass fetches no more feeds than the unwritten bound (here one
    group of two), then goes on once the writer does: nothing is lost, memory stays bounded."""
    import threading

    from monitor import poll as poll_module
    from monitor.store.group_commit import GroupWriter

    monkeypatch.setattr(GroupWriter, "MAX_FEEDS", 2)
    monkeypatch.setattr(poll_module, "UNWRITTEN_GROUPS", 1)
    paths = [f"/f{i}.xml" for i in range(6)]
    for i, path in enumerate(paths):
        feed_server.route(path, rss([filler(i, 0)]))
    config = make_config(tmp_path, feeds_toml(feed_server, paths), db_url=db_url)
    store = open_store(config)
    writer_may_go = threading.Event()
    record_polls = store.record_polls

    def stuck_writer(results: list) -> list:
        writer_may_go.wait(30)
        return record_polls(results)

    store.record_polls = stuck_writer  # type: ignore[method-assign]
    reports: list = []
    passing = threading.Thread(target=lambda: reports.extend(poll(config, store)))
    passing.start()
    deadline = time.monotonic() + 10
    while len(feed_server.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # time enough for more fetches, were they allowed
    assert len(feed_server.requests) == 2
    writer_may_go.set()
    passing.join(30)
    assert sorted(r.new_articles for r in reports) == [1] * 6
    assert count(store) == 6
    store.engine.dispose()


def test_a_feed_that_waited_for_its_host_is_next_due_an_interval_after_its_poll_ended(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    """Two slow feeds on one host with one connection per host: the second waits ~2 s for
    the first, then takes ~2 s itself, longer than its 2 s interval. Counted from when the
    poll began, it was due again the moment it ended (polled twice in a row); counted from
    its end, every feed rests a whole interval."""
    for path in ("/slow-a.xml", "/slow-b.xml"):
        feed_server.route(path, rss([filler(1, 1)]), delay=2)
    extra = '[polling]\nper_host = 1\ninterval = "2s"\n'
    config = make_config(tmp_path, feeds_toml(feed_server, ["/slow-a.xml", "/slow-b.xml"]).replace("[polling]\n", extra, 1),
                         db_url=db_url)
    store = open_store(config)
    poll(config, store)
    with store.session() as session:
        gaps = {feed.id: feed.next_poll_at - feed.last_polled_at for feed in session.exec(select(Feed))}
    # Each poll took at least the server's 2 s, then the interval (2 s, jittered by 5 %).
    assert all(gap >= timedelta(seconds=3.8) for gap in gaps.values()), gaps
    store.engine.dispose()


def test_a_pass_over_named_feeds_claims_them_all_whatever_the_claim_limit(
    tmp_path: Path, feed_server: FeedServer  # noqa: F811
) -> None:
    """`monitor poll` names every enabled feed: a pass over more of them than one claim takes
    by default (1,000) must poll them all, not the first thousand."""
    from functools import partial

    paths = []
    for feed in range(3):
        feed_server.route(f"/f{feed}.xml", rss([filler(feed, 0)]))
        paths.append(f"/f{feed}.xml")
    config = make_config(tmp_path, feeds_toml(feed_server, paths))
    store = open_store(config)
    store.claim_due_feeds = partial(store.claim_due_feeds, limit=2)  # type: ignore[method-assign]
    reports = poll(config, store)
    assert sorted(r.feed_id for r in reports) == ["f0", "f1", "f2"]
    assert count(store) == 3
    store.engine.dispose()


def test_the_parse_workers_code_does_not_load_the_database_libraries() -> None:
    """The forkserver preloads monitor.pipeline for every parse worker: SQLAlchemy, SQLModel
    and Alembic there cost ~30 MB per worker and touch no database; datasketch (and with it
    scipy, ~60 MB and ~1.6 s of CPU) used to be imported by each worker's first signature."""
    code = ("import sys, monitor.pipeline, monitor.sources.extract; from monitor import dedup; "
            "dedup.compute_features('عنوان', 'نص الخبر كاملا هنا', None, __import__('datetime').datetime(2026, 1, 1)); "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in {'sqlalchemy', 'sqlmodel', 'alembic', 'psycopg', 'datasketch', 'scipy'}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout.strip()
    assert loaded == "[]"
