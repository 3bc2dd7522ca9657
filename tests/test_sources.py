"""Sources beyond RSS, end to end against real loopback servers and real databases: sitemaps,
listing pages and title-only feeds whose article pages are fetched (politely, once) and whose
extracted text is what gets classified and stored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from sqlmodel import select

from monitor.config import Config
from monitor.daemon import open_store
from monitor.models import Article, Feed, PageAttempt
from monitor.poll import FeedReport, Poller
from monitor.store import Store
from tests.conftest import make_config
from tests.feedserver import FeedServer, feed_server  # noqa: F401

HTML = "text/html; charset=utf-8"
RELEVANT_TITLE = "الكويت والولايات المتحدة تعقدان الجولة السادسة من الحوار الاستراتيجي"
RELEVANT_TEXT = (
    "واشنطن - (كونا) -- عقدت دولة الكويت والولايات المتحدة الأمريكية اليوم الجولة السادسة من الحوار "
    "الاستراتيجي بين البلدين برئاسة وزير الخارجية الكويتي ووزير الخارجية الأمريكي، وبحث الجانبان التعاون "
    "في مجالات الدفاع والأمن والتعليم والتجارة والاستثمار. وأكد الجانبان متانة العلاقات التاريخية بين "
    "البلدين الصديقين وحرصهما على تطويرها في المجالات كافة بما يخدم مصالحهما المشتركة. "
)
# A headline that says nothing of the dialogue: only the page's text makes the article relevant.
VAGUE_TITLE = "وزير الخارجية يلتقي نظيره الأمريكي في واشنطن"
OTHER_TEXT = (
    "شهدت أسواق الخضار والفواكه اليوم إقبالا كبيرا من المستهلكين مع انخفاض درجات الحرارة وتحسن الأحوال "
    "الجوية في البلاد، وقال عدد من الباعة إن الأسعار بقيت مستقرة مقارنة بالأسبوع الماضي. "
    "وأضاف الباعة أن الطلب على الخضار الورقية ارتفع في الأيام الأخيرة، فيما توقعوا أن تستمر الأسعار "
    "على حالها حتى نهاية الشهر الجاري مع وصول شحنات جديدة من المزارع المحلية. "
)
MOST_READ = "الأكثر قراءة: الحوار الاستراتيجي بين الكويت والولايات المتحدة يبحث التعاون الدفاعي"


def page(title: str, text: str, *, layout: str = "article-body", published: str | None = "2026-11-24T09:00:00+03:00") -> bytes:
    """An article page with the boilerplate real dailies have: navigation, a "most read" box
    naming the dialogue (which must not leak into the text), comments and a footer."""
    date = f'<time datetime="{published}">{published}</time>' if published else ""
    nav = "".join(f'<li><a href="/section/{i}">قسم {i}</a></li>' for i in range(12))
    body = "".join(f"<p>{escape(text)}</p>" for _ in range(2))
    return (
        f'<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{escape(title)} | الجريدة</title></head>'
        f'<body><nav><ul>{nav}</ul></nav><main><article><h1>{escape(title)}</h1>{date}'
        f'<div class="{layout}">{body}</div></article>'
        f'<aside class="most-read"><h3>الأكثر قراءة</h3><ul><li><a href="/x/1">{escape(MOST_READ)}</a></li></ul></aside>'
        f'<section class="comments"><p>تعليق: خبر جميل</p></section></main>'
        f"<footer>جميع الحقوق محفوظة للجريدة ٢٠٢٦</footer></body></html>"
    ).encode()


def jsonld_page(title: str, text: str) -> bytes:
    """A page whose visible HTML holds no article text: it is rendered from script data."""
    data = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
            "datePublished": "2026-11-24T09:00:00+03:00", "articleBody": text}
    return (
        '<!doctype html><html lang="ar"><head><meta charset="utf-8">'
        f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script></head>'
        '<body><div id="app">جار التحميل…</div><footer>الحقوق محفوظة</footer></body></html>'
    ).encode()


def news_sitemap(server: FeedServer, paths: list[tuple[str, str]]) -> bytes:
    urls = "".join(
        f"<url><loc>{server.url(path)}</loc><news:news><news:publication><news:name>ج</news:name>"
        f"<news:language>ar</news:language></news:publication>"
        f"<news:publication_date>{(datetime.now(UTC) - timedelta(hours=i + 1)).isoformat()}</news:publication_date>"
        f"<news:title>{escape(title)}</news:title></news:news></url>"
        for i, (path, title) in enumerate(paths)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    ).encode()


def listing(links: list[tuple[str, str]]) -> bytes:
    items = "".join(f'<li class="item"><a href="{path}">{escape(title)}</a></li>' for path, title in links)
    return (
        '<!doctype html><html lang="ar"><head><meta charset="utf-8"></head><body>'
        '<nav><a href="/">الرئيسية</a><a href="javascript:void(0)">بحث</a></nav>'
        f'<ul class="news-list">{items}</ul>'
        f'<aside class="most-read"><a href="/x/1">{escape(MOST_READ)}</a></aside></body></html>'
    ).encode()


def title_rss(server: FeedServer, items: list[tuple[str, str]], teaser: str = "") -> bytes:
    entries = "".join(
        f"<item><title>{escape(title)}</title><link>{server.url(path)}</link><guid>{server.url(path)}</guid>"
        + (f"<description>{escape(teaser)}</description>" if teaser else "")
        + "</item>"
        for path, title in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


def source_config(tmp_path: Path, db_url: str, feed: str, extra: str = "") -> Config:
    return make_config(
        tmp_path, '[polling]\nparse_workers = 1\ntimeout = "3s"\nper_host = 4\n' + extra + feed, db_url=db_url
    )


def poll(config: Config, store: Store, robots_wait: float | None = None) -> list[FeedReport]:
    async def run() -> list[FeedReport]:
        async with Poller(config, store) as poller:
            if robots_wait is not None:
                poller._robots.wait = robots_wait
            return await poller.poll_due(only=[feed.id for feed in config.feeds])

    return asyncio.run(run())


def articles(store: Store) -> list[Article]:
    with store.session() as session:
        return list(session.exec(select(Article).order_by(Article.id)))


def page_hits(server: FeedServer, prefix: str = "/a/") -> int:
    return sum(1 for request in server.requests if request.path.startswith(prefix))


def test_news_sitemap_end_to_end_with_full_text(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/sitemap-news.xml", news_sitemap(feed_server, [("/a/1", VAGUE_TITLE), ("/a/2", "أسواق الخضار")]),
                      content_type="application/xml", etag='"s1"')
    feed_server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    feed_server.route("/a/2", page("أسواق الخضار", OTHER_TEXT), content_type=HTML)
    config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "kuna"\ntype = "sitemap"\nurl = "{feed_server.url("/sitemap-news.xml")}"\nfull_text = "always"\n')
    store = open_store(config)
    [report] = poll(config, store)
    assert report.error is None and report.new_articles == 2 and report.pages_fetched == 2
    first, second = articles(store)
    assert {first.source_type, second.source_type} == {"sitemap"}
    relevant = next(a for a in (first, second) if a.link == feed_server.url("/a/1"))
    assert relevant.full_text and relevant.flagged and relevant.watch == "kw-us" and relevant.round == 6
    assert "الجولة السادسة" in relevant.summary and "الأكثر قراءة" not in relevant.summary
    assert relevant.title == VAGUE_TITLE
    # A warm pass: the sitemap answers 304 and no article page is fetched again.
    [warm] = poll(config, store)
    assert warm.status == "not_modified" and warm.pages_fetched == 0
    assert feed_server.hits("/a/1") == feed_server.hits("/a/2") == 1


def test_listing_page_links_become_entries_and_most_read_box_does_not(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/section/local", listing([("/a/1", VAGUE_TITLE), ("/a/2", "أسواق الخضار"), ("/a/1", VAGUE_TITLE)]),
                      content_type=HTML)
    feed_server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    feed_server.route("/a/2", page("أسواق الخضار", OTHER_TEXT), content_type=HTML)
    feed = (f'[[feeds]]\nid = "alrai"\ntype = "html"\nurl = "{feed_server.url("/section/local")}"\n'
            'links = ".news-list .item a"\nfull_text = "always"\n')
    config = source_config(tmp_path, db_url, feed)
    store = open_store(config)
    [report] = poll(config, store)
    assert report.error is None, report.error
    stored = articles(store)
    assert sorted(a.link for a in stored) == [feed_server.url("/a/1"), feed_server.url("/a/2")]
    assert feed_server.hits("/x/1") == 0  # the "most read" link is not an entry
    assert all(a.source_type == "html" and a.full_text for a in stored)
    assert [a.flagged for a in stored if a.link.endswith("/a/1")] == [True]


def test_candidates_always_never_fetch_counts_on_a_title_only_feed(tmp_path: Path, db_url: str) -> None:
    """candidates fetches only the entries a watch could concern (and judges them on the
    page's text); always fetches every new entry; never fetches none."""
    fetched = {}
    for mode in ("never", "candidates", "always"):
        with FeedServer() as server:
            items = [("/a/1", VAGUE_TITLE), ("/a/2", "أسواق الخضار تشهد إقبالا كبيرا"), ("/a/3", "مباراة كرة القدم تنتهي بالتعادل")]
            server.route("/rss", title_rss(server, items))
            server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
            server.route("/a/2", page(items[1][1], OTHER_TEXT), content_type=HTML)
            server.route("/a/3", page(items[2][1], OTHER_TEXT), content_type=HTML)
            config = source_config(tmp_path / mode, db_url if mode == "candidates" else None,
                                   f'[[feeds]]\nid = "g"\nurl = "{server.url("/rss")}"\nfull_text = "{mode}"\n')
            store = open_store(config)
            poll(config, store)
            fetched[mode] = page_hits(server)
            flagged = [a.link for a in articles(store) if a.flagged]
            assert flagged == ([] if mode == "never" else [server.url("/a/1")])
    assert fetched == {"never": 0, "candidates": 1, "always": 3}


def test_robots_disallow_is_respected(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/robots.txt", b"User-agent: *\nDisallow: /private/\nAllow: /private/open\n", content_type="text/plain")
    items = [("/private/1", RELEVANT_TITLE), ("/private/open", RELEVANT_TITLE + " ٢"), ("/a/1", VAGUE_TITLE)]
    feed_server.route("/rss", title_rss(feed_server, items))
    for path, _ in items:
        feed_server.route(path, page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\n')
    store = open_store(config)
    [report] = poll(config, store)
    assert feed_server.hits("/private/1") == 0
    assert feed_server.hits("/private/open") == 1 and feed_server.hits("/a/1") == 1
    assert feed_server.hits("/robots.txt") == 1  # cached for the host
    by_link = {a.link: a for a in articles(store)}
    refused = by_link[feed_server.url("/private/1")]
    assert not refused.full_text and "disallowed by" in (refused.page_error or "")
    assert refused.flagged  # stored with what the feed gave: its title names the dialogue
    assert report.pages_fetched == 2


def test_jsonld_only_pages_and_text_selector(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/rss", title_rss(feed_server, [("/a/1", VAGUE_TITLE), ("/b/1", "عنوان")]))
    feed_server.route("/a/1", jsonld_page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    feed_server.route("/b/1", page("عنوان", OTHER_TEXT, layout="story-text"), content_type=HTML)
    feed = (f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\ntext = "div.story-text"\n')
    config = source_config(tmp_path, db_url, feed)
    store = open_store(config)
    poll(config, store)
    by_link = {a.link: a for a in articles(store)}
    jsonld = by_link[feed_server.url("/a/1")]
    assert jsonld.full_text and jsonld.flagged and "الجولة السادسة" in jsonld.summary
    selected = by_link[feed_server.url("/b/1")]
    assert selected.full_text and "أسواق الخضار" in selected.summary and "الأكثر قراءة" not in selected.summary


def test_page_cap_defers_the_rest_to_the_next_poll_and_pages_are_fetched_once_across_restarts(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    items = [(f"/a/{i}", f"خبر رقم {i} عن العلاقات مع الولايات المتحدة") for i in range(5)]
    feed_server.route("/rss", title_rss(feed_server, items), etag='"v1"')
    for path, title in items:
        feed_server.route(path, page(title, OTHER_TEXT), content_type=HTML)
    config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\nmax_pages = 2\n')
    store = open_store(config)
    reports = [poll(config, store)[0] for _ in range(4)]  # each poll is a fresh Poller: a restart
    assert [r.pages_fetched for r in reports] == [2, 2, 1, 0]
    assert [r.new_articles for r in reports] == [2, 2, 1, 0]
    assert all(feed_server.hits(path) == 1 for path, _ in items)
    # While entries waited, the feed was read in full; once settled, conditionally again.
    assert reports[3].status == "not_modified"


def test_bad_article_pages_are_contained(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    """A 404, a login wall, a page over max_bytes and a redirect loop: each entry is stored
    with its feed's text and a specific page error; a 503 page waits for a later poll,
    MAX_PAGE_ATTEMPTS times, then is stored the same way."""
    items = [("/gone", RELEVANT_TITLE), ("/login", RELEVANT_TITLE + " ٢"), ("/huge", RELEVANT_TITLE + " ٣"),
             ("/loop", RELEVANT_TITLE + " ٤"), ("/busy", RELEVANT_TITLE + " ٥")]
    feed_server.route("/rss", title_rss(feed_server, items))
    feed_server.route("/gone", b"not here", status=404, content_type="text/plain")
    feed_server.route("/login", b'<html><body><form><input type="password"></form>Please sign in</body></html>', content_type=HTML)
    feed_server.route("/huge", b"<html><body>" + b"<p>x</p>" * 40_000 + b"</body></html>", content_type=HTML)
    feed_server.redirect("/loop", "/loop2", status=302)
    feed_server.redirect("/loop2", "/loop", status=302)
    feed_server.route("/busy", b"try later", status=503, content_type="text/plain")
    config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\n',
                           extra="max_bytes = 100000\n")
    store = open_store(config)
    [first] = poll(config, store)
    assert first.error is None and first.new_articles == 4
    errors = {a.link.rsplit("/", 1)[1]: a.page_error for a in articles(store)}
    assert "404" in errors["gone"]
    assert "login wall" in errors["login"]
    assert "max_bytes" in errors["huge"]
    assert "redirects" in errors["loop"]
    assert all(a.flagged and not a.full_text for a in articles(store))
    with store.session() as session:
        [attempt] = session.exec(select(PageAttempt)).all()
    assert attempt.guid.endswith("/busy") and attempt.attempts == 1 and "503" in (attempt.last_error or "")
    poll(config, store)
    [third] = poll(config, store)
    assert third.new_articles == 1 and feed_server.hits("/busy") == 3
    busy = [a for a in articles(store) if a.link.endswith("/busy")]
    assert busy and "503" in (busy[0].page_error or "")
    with store.session() as session:
        assert session.exec(select(PageAttempt)).all() == []


def test_bad_sources_are_clear_errors_and_do_not_stop_the_others(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/sitemap.xml", b"this is not xml at all {", content_type="application/xml")
    feed_server.route("/section", listing([("/a/1", VAGUE_TITLE)]), content_type=HTML)
    feed_server.route("/rss", title_rss(feed_server, [("/a/1", RELEVANT_TITLE)]), content_type="application/rss+xml")
    feed_server.route("/a/1", page(RELEVANT_TITLE, RELEVANT_TEXT), content_type=HTML)
    feeds = (
        f'[[feeds]]\nid = "sm"\ntype = "sitemap"\nurl = "{feed_server.url("/sitemap.xml")}"\n'
        f'[[feeds]]\nid = "ls"\ntype = "html"\nurl = "{feed_server.url("/section")}"\nlinks = ".nothing-here a"\n'
        f'[[feeds]]\nid = "ok"\nurl = "{feed_server.url("/rss")}"\n'
    )
    config = source_config(tmp_path, db_url, feeds)
    store = open_store(config)
    reports = {r.feed_id: r for r in poll(config, store)}
    assert "not a sitemap" in (reports["sm"].error or "")
    assert "matched nothing" in (reports["ls"].error or "")
    assert reports["ok"].error is None and reports["ok"].new_articles == 1
    with store.session() as session:
        errors = {f.id: f.last_error for f in session.exec(select(Feed))}
    assert "matched nothing" in (errors["ls"] or "") and errors["ok"] is None


def test_robots_txt_that_never_answers_is_treated_as_allowed_after_a_bounded_wait(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.route("/robots.txt", b"User-agent: *\nDisallow: /\n", content_type="text/plain", delay=30)
    feed_server.route("/rss", title_rss(feed_server, [("/a/1", VAGUE_TITLE)]))
    feed_server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\n')
    store = open_store(config)
    [report] = poll(config, store, robots_wait=0.5)
    assert report.pages_fetched == 1 and feed_server.hits("/a/1") == 1
    [article] = articles(store)
    assert article.full_text and article.flagged


@pytest.mark.parametrize("bad", ['links = ".news-list a["', 'include = "(unclosed"'])
def test_config_errors_name_the_key(tmp_path: Path, bad: str) -> None:
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        make_config(tmp_path, f'[[feeds]]\nid = "x"\ntype = "html"\nurl = "https://x.example/"\n{bad}\n')
    key = bad.split(" ")[0]
    assert f"feeds[0].{key}" in str(raised.value)


def test_sources_check_prints_what_would_be_stored_and_stores_nothing(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from monitor.cli import main
    from tests.conftest import write_config

    feed_server.route("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    feed_server.route("/section", listing([("/a/1", VAGUE_TITLE), ("/private/2", "خبر محجوب")]), content_type=HTML)
    feed_server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    feed_server.route("/private/2", page("خبر محجوب", OTHER_TEXT), content_type=HTML)
    feed = (f'[[feeds]]\nid = "alrai"\ntype = "html"\nurl = "{feed_server.url("/section")}"\n'
            'links = ".news-list .item a"\nfull_text = "always"\nenabled = false\n')
    path = write_config(tmp_path, '[polling]\ntimeout = "3s"\n' + feed)
    assert main(["--config", str(path), "sources", "check", "alrai"]) == 0
    out = capsys.readouterr().out
    assert "entries: 2 read, 2 would be stored, 1 article pages fetched" in out
    assert VAGUE_TITLE in out and feed_server.url("/a/1") in out
    assert "full text from the page" in out and "الجولة السادسة" in out and "flagged kw-us, round 6" in out
    assert "disallowed by" in out and feed_server.hits("/private/2") == 0
    assert main(["--config", str(path), "sources", "check", "alrai", "--json"]) == 0
    head, *rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert head["source"] == "alrai" and head["error"] is None and head["entries"] == 2
    assert {row["url"]: row["full_text"] for row in rows} == {feed_server.url("/a/1"): True, feed_server.url("/private/2"): False}
    assert not (tmp_path / "state" / "monitor.db").exists()  # nothing stored, no database made
    assert main(["--config", str(path), "sources", "check", "nope"]) == 2


def test_sources_check_of_a_broken_source_exits_1_with_the_reason(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    from monitor.cli import main
    from tests.conftest import write_config

    feed_server.route("/section", b"<html><body><p>nothing</p></body></html>", content_type=HTML)
    feed = f'[[feeds]]\nid = "x"\ntype = "html"\nurl = "{feed_server.url("/section")}"\nlinks = "ul.news a"\n'
    path = write_config(tmp_path, feed)
    assert main(["--config", str(path), "sources", "check", "x"]) == 1
    assert "error: the links selector 'ul.news a' matched nothing" in capsys.readouterr().out


def test_a_text_selector_that_matches_nothing_is_a_warning_on_the_source(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.route("/rss", title_rss(feed_server, [("/a/1", VAGUE_TITLE)]))
    feed_server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    feed = f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\ntext = "div.old-layout"\n'
    config = source_config(tmp_path, db_url, feed)
    store = open_store(config)
    poll(config, store)
    [article] = articles(store)
    assert article.full_text and article.flagged  # found by the general extractor all the same
    with store.session() as session:
        [warning] = session.exec(select(Feed.last_warning)).all()
    assert "div.old-layout" in (warning or "")


def test_sitemap_index_listing_one_article_twice_fetches_its_page_once_and_stores_its_text(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    index = (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f'<sitemap><loc>{feed_server.url("/archive.xml")}</loc><lastmod>2026-11-20</lastmod></sitemap>'
        f'<sitemap><loc>{feed_server.url("/news.xml")}</loc><lastmod>{datetime.now(UTC).date()}</lastmod></sitemap>'
        "</sitemapindex>"
    ).encode()
    archive = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f'<url><loc>{feed_server.url("/a/1-market-stalls-busy-all-day")}</loc><lastmod>{datetime.now(UTC).isoformat()}</lastmod></url>'
        f'<url><loc>{feed_server.url("/a/2")}</loc><lastmod>{datetime.now(UTC).isoformat()}</lastmod></url></urlset>'
    ).encode()
    feed_server.route("/sitemap.xml", index, content_type="application/xml", etag='"i1"')
    feed_server.route("/archive.xml", archive, content_type="application/xml", etag='"a1"')
    news = [("/a/1-market-stalls-busy-all-day", VAGUE_TITLE), ("/a/2", "أسواق الخضار تشهد إقبالا كبيرا مع انخفاض الحرارة")]
    feed_server.route("/news.xml", news_sitemap(feed_server, news), content_type="application/xml", etag='"n1"')
    feed_server.route("/a/2", page(news[1][1], OTHER_TEXT), content_type=HTML)
    feed_server.route("/a/1-market-stalls-busy-all-day", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    # /a/1: the archive's copy, titled from its slug, does not look like a candidate; the news
    # sitemap's does: the page is fetched once and its text is what gets stored. /a/2: the
    # archive's copy has no title at all; the news sitemap's says it concerns no watch: no page.
    config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "s"\ntype = "sitemap"\nurl = "{feed_server.url("/sitemap.xml")}"\n')
    store = open_store(config)
    [report] = poll(config, store)
    assert report.error is None and report.pages_fetched == 1 and feed_server.hits("/a/1-market-stalls-busy-all-day") == 1
    assert feed_server.hits("/a/2") == 0
    by_link = {a.link: a for a in articles(store)}
    market, article = by_link[feed_server.url("/a/2")], by_link[feed_server.url("/a/1-market-stalls-busy-all-day")]
    assert market.title == news[1][1] and not market.full_text
    assert article.full_text and article.flagged and article.title == VAGUE_TITLE
    # The index is read in full at every poll (it may list changed sitemaps while unchanged itself).
    poll(config, store)
    assert "if-none-match" not in feed_server.requests_for("/sitemap.xml")[-1].headers
    assert feed_server.hits("/a/1-market-stalls-busy-all-day") == 1


def test_the_digest_shows_the_text_read_from_the_article_page(tmp_path: Path, db_url: str, feed_server: FeedServer) -> None:  # noqa: F811
    from monitor import notify

    feed_server.route("/rss", title_rss(feed_server, [("/a/1", VAGUE_TITLE)]))
    feed_server.route("/a/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
    feed = f'[[feeds]]\nid = "g"\nname = "غوغل"\nurl = "{feed_server.url("/rss")}"\n'
    digest = (
        '[[channels]]\nid = "desk"\ntype = "email"\nhost = "127.0.0.1"\nport = 9\nsecurity = "none"\n'
        'from = "m@example.org"\nto = ["d@example.org"]\n'
        '[[digests]]\nid = "daily"\nat = "07:30"\nwatches = ["kw-us"]\nchannels = ["desk"]\n'
    )
    config = source_config(tmp_path, db_url, feed + digest)
    store = open_store(config)
    poll(config, store)
    content = notify.preview_digest(store, config, config.digests[0])
    [item] = [item for section in content.sections for item in section.items]
    assert item.headline == VAGUE_TITLE and item.round == 6
    assert "الجولة السادسة من الحوار" in item.excerpt  # the page's words, not the feed's (a title only)


def test_redirects_to_another_host_are_followed_hop_by_hop_under_its_robots_txt(
    tmp_path: Path, db_url: str, feed_server: FeedServer  # noqa: F811
) -> None:
    """Aggregator links (feed proxies) redirect to the publisher: followed, one hop at a
    time, each host's robots.txt asked before its page is requested."""
    with FeedServer() as publisher:
        other = publisher.base_url.replace("127.0.0.1", "localhost")  # another host name
        publisher.route("/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain")
        publisher.route("/news/1", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
        publisher.route("/private/2", page(VAGUE_TITLE, RELEVANT_TEXT), content_type=HTML)
        feed_server.route("/rss", title_rss(feed_server, [("/go/1", VAGUE_TITLE), ("/go/2", RELEVANT_TITLE)]))
        feed_server.redirect("/go/1", f"{other}/news/1", status=302)
        feed_server.redirect("/go/2", f"{other}/private/2", status=301)
        config = source_config(tmp_path, db_url, f'[[feeds]]\nid = "g"\nurl = "{feed_server.url("/rss")}"\nfull_text = "always"\n')
        store = open_store(config)
        [report] = poll(config, store)
        assert publisher.hits("/news/1") == 1 and publisher.hits("/private/2") == 0
        by_link = {a.link: a for a in articles(store)}
        followed = by_link[feed_server.url("/go/1")]
        assert followed.full_text and followed.flagged and followed.round == 6
        refused = by_link[feed_server.url("/go/2")]
        assert not refused.full_text and "disallowed by" in (refused.page_error or "")
        assert report.pages_fetched == 2  # both redirecting links were requested; the disallowed page not
