"""A feed with one bad byte, end to end through a real HTTP server and real databases: the
Arabic stays readable (one U+FFFD), the article is flagged as it should be and marked suspect,
the feed keeps a warning; once the publisher fixes the feed, the next poll repairs the article
in place (no second copy), decision and story included."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from sqlmodel import select
from structlog.testing import capture_logs

from monitor.config import Config
from monitor.daemon import open_store
from monitor.models import Article, ArticleBand, Feed, Story
from monitor.poll import Poller
from monitor.store import Store
from tests.conftest import make_config
from tests.feedserver import FeedServer, feed_server  # noqa: F401

TITLE = "انطلاق الجولة الرابعة من الحوار الاستراتيجي بين الكويت والولايات المتحدة"
BODY = (
    "واشنطن - (كونا) -- انطلقت اليوم أعمال الجولة بين دولة الكويت والولايات المتحدة الأمريكية برئاسة "
    "وزير الخارجية الكويتي ووزير الخارجية الأمريكي، وبحث الجانبان التعاون في مجالات الدفاع والأمن."
)
OTHER_TITLE = "وزارة التربية تعلن مواعيد اختبارات نهاية الفصل الدراسي الأول"
OTHER_BODY = "أعلنت وزارة التربية جدول اختبارات نهاية الفصل الدراسي الأول للمرحلتين المتوسطة والثانوية."
PUBLISHED = datetime(2026, 11, 20, 8, tzinfo=timezone.utc)


def rss() -> bytes:
    items = [("https://k.example/1", TITLE, BODY), ("https://k.example/2", OTHER_TITLE, OTHER_BODY)]
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>{guid}</link><guid>{guid}</guid>"
        f"<pubDate>{format_datetime(PUBLISHED + timedelta(minutes=n))}</pubDate>"
        f"<description>{escape(body)}</description></item>"
        for n, (guid, title, body) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>كونا</title>'
        f"<link>https://k.example/</link><description>d</description>{entries}</channel></rss>"
    ).encode()


def with_bad_byte(body: bytes, before: str) -> bytes:
    """One invalid byte (a lone 0xFF) in the first item's title, before `before`."""
    at = body.index(before.encode())
    return body[:at] + b"\xff" + body[at:]


def config_for(tmp_path: Path, server: FeedServer, db_url: str) -> Config:
    feeds = f'[polling]\nparse_workers = 1\ntimeout = "3s"\n[[feeds]]\nid = "kuna"\nurl = "{server.url("/kuna.xml")}"\n'
    feeds += 'full_text = "never"\n'  # the entries link to k.example, which has no pages here
    return make_config(tmp_path, feeds, db_url=db_url)


def poll(config: Config, store: Store) -> None:
    async def run() -> None:
        async with Poller(config, store) as poller:
            (report,) = await poller.poll_due(only=["kuna"])
            assert report.error is None

    asyncio.run(run())


def articles(store: Store) -> dict[str, Article]:
    with store.session() as session:
        return {a.guid: a for a in session.exec(select(Article))}


def last_warning(store: Store) -> str | None:
    with store.session() as session:
        return session.exec(select(Feed.last_warning).where(Feed.id == "kuna")).one()


def test_one_bad_byte_is_readable_flagged_warned_and_repaired(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    clean = rss()
    feed_server.route("/kuna.xml", with_bad_byte(clean, "الحوار"))
    config = config_for(tmp_path, feed_server, db_url)
    store = open_store(config)
    with capture_logs() as logs:
        poll(config, store)

    stored = articles(store)
    first, other = stored["https://k.example/1"], stored["https://k.example/2"]
    assert first.title == TITLE.replace("الحوار", "\ufffdالحوار")
    assert first.flagged and first.watch == "kw-us" and first.round == 4
    assert first.text_suspect and not other.text_suspect
    assert other.title == OTHER_TITLE
    warning = last_warning(store)
    assert warning is not None and warning.startswith("1 invalid UTF-8 byte (first at line 1, byte ")
    assert any(
        log["log_level"] == "warning" and log.get("feed_id") == "kuna" and "U+FFFD" in log.get("warning", "")
        for log in logs
    )
    assert store.known_guids("kuna") == {"https://k.example/2"}  # the suspect one is classified again

    feed_server.route("/kuna.xml", clean)  # the publisher fixes the feed
    poll(config, store)

    stored = articles(store)
    assert len(stored) == 2
    repaired = stored["https://k.example/1"]
    assert repaired.id == first.id
    assert repaired.title == TITLE and "\ufffd" not in repaired.summary
    assert repaired.flagged and not repaired.text_suspect
    assert last_warning(store) is None
    assert store.known_guids("kuna") == set(stored)
    store.engine.dispose()


def test_a_repair_that_flags_the_article_gives_it_a_flagged_story(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    """The bad byte splits the dialogue term, so the garbled article is not flagged; the clean
    copy is, and the repaired article joins a story due for the digests."""
    clean = rss()
    feed_server.route("/kuna.xml", with_bad_byte(clean, "ار الاستراتيجي"))
    config = config_for(tmp_path, feed_server, db_url)
    store = open_store(config)
    poll(config, store)
    garbled = articles(store)["https://k.example/1"]
    assert garbled.title.count("\ufffd") == 1 and "الحو\ufffdار" in garbled.title
    assert garbled.text_suspect and not garbled.flagged

    feed_server.route("/kuna.xml", clean)
    poll(config, store)

    repaired = articles(store)["https://k.example/1"]
    assert repaired.title == TITLE and repaired.flagged and not repaired.text_suspect
    assert repaired.story_id is not None
    with store.session() as session:
        story = session.get(Story, repaired.story_id)
        assert story is not None and story.flagged_at is not None and story.watch == "kw-us"
        bands = session.exec(select(ArticleBand).where(ArticleBand.article_id == repaired.id)).all()
    assert bands  # flagged articles get LSH bands, from the clean text
    store.engine.dispose()


def test_a_still_broken_feed_changes_nothing_stored(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.route("/kuna.xml", with_bad_byte(rss(), "الحوار"))
    config = config_for(tmp_path, feed_server, db_url)
    store = open_store(config)
    poll(config, store)
    before = articles(store)
    feed_server.route("/kuna.xml", with_bad_byte(rss(), "الحوار") + b"\n")  # new bytes, same damage
    poll(config, store)
    after = articles(store)
    assert {g: (a.id, a.title, a.text_suspect) for g, a in after.items()} == {
        g: (a.id, a.title, a.text_suspect) for g, a in before.items()
    }
    assert last_warning(store) is not None
    store.engine.dispose()
