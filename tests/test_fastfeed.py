"""The ElementTree fast path against feedparser, the parser of record: on every fixture, on
hand-written RSS 2.0 edge cases and on random items, parse_feed must give the same entries,
text, links, dates, guids, authors, languages, feed title, warnings and error with the fast
path as with feedparser forced; and the dicts the fast path hands to the post-processing must
equal feedparser's for every key monitor.sources.parse reads."""

from __future__ import annotations

import importlib.util
import io
import random
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import feedparser
import pytest
from feedparser.datetimes import _parse_date as feedparser_parse_date
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import monitor.sources.parse
from monitor.sources import fastfeed
from monitor.sources.fastfeed import parse_fast
from monitor.sources.parse import ParsedFeed, _response_headers, parse_feed

REPO = Path(__file__).resolve().parent.parent
FEEDS = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
BASE_URL = "https://feeds.example.com/section/rss.xml"
RSS_HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}

# Every key monitor.sources.parse reads from feedparser's result (from_feedparser, _entry and helpers).
ENTRY_KEYS = (
    "link", "title", "title_detail", "content", "summary", "summary_detail", "published_parsed",
    "updated_parsed", "created_parsed", "id", "author", "author_detail", "language", "dc_language",
)  # fmt: skip
FEED_KEYS = ("title", "title_detail", "language")
ABSENT = "<absent>"

NAMESPACES = (
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/" xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
    'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"'
)


def rss(items: str, channel: str = "<title>موقع إخباري</title><link>https://news.example/</link>") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {NAMESPACES}><channel>{channel}{items}'
        "</channel></rss>"
    ).encode()


def feedparser_result(body: bytes, headers: Mapping[str, str]) -> Any:
    """feedparser exactly as parse_feed calls it."""
    return feedparser.parse(
        io.BytesIO(body), response_headers=_response_headers(headers), sanitize_html=False, resolve_relative_uris=False
    )


def view(result: Any) -> dict[str, Any]:
    """What monitor.sources.parse can see of a feedparser(-like) result: presence and value of every
    key it reads, the version, and the warning feedparser raised."""
    exc = result.get("bozo_exception")
    return {
        "bozo": bool(result.get("bozo")),
        "bozo_exception": (type(exc).__name__, str(exc)) if exc is not None else None,
        "version": result.get("version"),
        "feed": {key: dict.get(result["feed"], key, ABSENT) for key in FEED_KEYS},
        "entries": [{key: dict.get(entry, key, ABSENT) for key in ENTRY_KEYS} for entry in result["entries"]],
    }


def both(body: bytes, headers: Mapping[str, str] = RSS_HEADERS, **options: Any) -> tuple[ParsedFeed, ParsedFeed]:
    options.setdefault("base_url", BASE_URL)
    fast = parse_feed(body, headers, fetched_at=NOW, **options)
    slow = parse_feed(body, headers, fetched_at=NOW, fast=False, **options)
    return fast, slow


def assert_same(body: bytes, headers: Mapping[str, str] = RSS_HEADERS, *, eligible: bool | None = True) -> ParsedFeed:
    """Both paths agree on the raw dicts (when the fast path applies) and on the ParsedFeed;
    `eligible` says whether the fast path must apply (None: either is fine)."""
    raw = parse_fast(body, _response_headers(headers))
    if eligible is not None:
        assert (raw is not None) is eligible
    if raw is not None:
        assert view(raw) == view(feedparser_result(body, headers))
    for options in ({}, {"default_language": "AR"}):
        fast, slow = both(body, headers, **options)
        assert fast == slow
    return fast


# -- fixtures -----------------------------------------------------------------------------------

ELIGIBLE_FIXTURES = {
    "rss20_alanba.xml",
    "rss_empty_channel.xml",
    "rss_javascript_links.xml",
    "rss_no_dates.xml",
    "rss_relative_links.xml",
    "rss_script_titles.xml",
}
ALL_FIXTURES = sorted(p.name for p in FEEDS.iterdir())
HEADER_VARIANTS = {
    "rss+xml utf-8": RSS_HEADERS,
    "rss+xml": {"content-type": "application/rss+xml"},
    "text/xml utf-8": {"content-type": "text/xml; charset=UTF-8"},
    "text/html utf-8": {"content-type": "text/html; charset=utf-8"},  # feedparser warns: not XML
    "no headers": {},
    "content-language": {"content-type": "application/rss+xml; charset=utf-8", "content-language": "ar_KW"},
}


def test_eligible_fixtures_are_the_expected_ones() -> None:
    eligible = {name for name in ALL_FIXTURES if parse_fast((FEEDS / name).read_bytes(), RSS_HEADERS) is not None}
    assert eligible == ELIGIBLE_FIXTURES


@pytest.mark.parametrize("headers", HEADER_VARIANTS.values(), ids=HEADER_VARIANTS.keys())
@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixtures_parse_alike(name: str, headers: dict[str, str]) -> None:
    body = (FEEDS / name).read_bytes()
    assert_same(body, headers, eligible=name in ELIGIBLE_FIXTURES)


def test_fixture_values_survive_the_fast_path() -> None:
    """Not only equal to feedparser's: the values the parse tests expect."""
    feed = assert_same((FEEDS / "rss20_alanba.xml").read_bytes())
    assert feed.title == "الأنباء - محليات" and feed.warnings == ()
    first = feed.entries[0]
    assert first.guid == "alanba-1301245" and first.author == "أسامة دياب" and first.language == "ar"
    assert first.published == datetime(2026, 11, 23, 6, 15, tzinfo=UTC)
    assert "جانب من الاجتماع" in first.summary  # content:encoded, the longer text, won
    served_as_html = assert_same((FEEDS / "rss20_alanba.xml").read_bytes(), HEADER_VARIANTS["text/html utf-8"])
    assert served_as_html.warnings[0].startswith("feed is not well-formed, parsed leniently: NonXMLContentType")


# -- hand-written edge cases ----------------------------------------------------------------------

LINK = "<link>https://news.example/a/1</link>"
EDGE_ITEMS = {
    "cdata title": f"<title><![CDATA[عنوان <b>عريض</b> & مهم]]></title>{LINK}",
    "cdata title with script": f"<title><![CDATA[<script>alert(1)</script>الكويت]]></title>{LINK}",
    "escaped html title": f"<title>&lt;b&gt;الكويت&lt;/b&gt; وواشنطن</title>{LINK}",
    "escaped entity in title": f"<title>AT&amp;amp;T &amp;nbsp; &amp;#1603;</title>{LINK}",
    "plain title with lt": f"<title>5 &lt; 6 &amp; 7 &gt; 3</title>{LINK}",
    "unknown tag in title": f"<title>&lt;foo&gt;x&lt;/foo&gt; y</title>{LINK}",
    "style in title": f"<title>&lt;style&gt;p{{color:red}}&lt;/style&gt;نص</title>{LINK}",
    "numeric refs": f"<title>&#1603;&#1608;&#x64a;&#x62A; &#38; &#60;</title>{LINK}",
    "escaped description": f"{LINK}<description>&lt;p&gt;فقرة&lt;/p&gt;&lt;p&gt;ثانية &amp;amp; أخيرة&lt;/p&gt;</description>",
    "double escaped description": f"{LINK}<description>&amp;lt;p&amp;gt;مزدوج&amp;lt;/p&amp;gt;</description>",
    "cdata description with entities": f"{LINK}<description><![CDATA[<p>أ&nbsp;ب &amp; &laquo;ج&raquo;</p>]]></description>",
    "script and style in description": (
        f"{LINK}<description><![CDATA[<style>.x{{}}</style><div>نص</div><script>var s='لا';</script>]]></description>"
    ),
    "whitespace everywhere": (
        "\n  <title>\n\t  عنوان   بمسافات \n </title>\n <link>\n  https://news.example/a/2  \n</link>\n"
        "  <guid>\n g-2 \n</guid>\n  <pubDate>\n Mon, 23 Nov 2026 09:15:00 +0300 \n</pubDate>\n"
        "  <description>\n\n  نص \t\n</description>\n"
    ),
    "nbsp around values": f"<title>\u00a0عنوان\u00a0</title>{LINK}<description>\u2003نص\u3000</description>",
    "empty elements": "<title/><link/><description></description><guid/><pubDate/><dc:creator/>",
    "only empty title": "<title></title><description>نص بلا عنوان</description>",
    "guid permalink, no link": "<title>t</title><guid>https://news.example/g/1</guid>",
    "guid isPermaLink true, no link": '<title>t</title><guid isPermaLink="true">https://news.example/g/2</guid>',
    "guid isPermaLink false, no link": '<title>t</title><guid isPermaLink="false">g-3</guid>',
    "guid isPermaLink True (not 'true')": '<title>t</title><guid isPermaLink="True">https://news.example/g/4</guid>',
    "relative permalink guid": "<title>t</title><guid>/g/5</guid>",
    "guid before link": f"<title>t</title><guid>https://news.example/g/6</guid>{LINK}",
    "link before guid": f"<title>t</title>{LINK}<guid>https://news.example/g/7</guid>",
    "empty link and permalink guid": "<title>t</title><link/><guid>https://news.example/g/8</guid>",
    "relative link": "<title>t</title><link>/article/44001</link>",
    "relative link without slash": "<title>t</title><link>article/44002?lang=ar</link>",
    "protocol-relative link": "<title>t</title><link>//cdn.example/3</link>",
    "javascript link": "<title>t</title><link>javascript:alert(document.cookie)</link><guid>js-1</guid>",
    "disguised javascript link": "<title>t</title><link>  JaVaScRiPt:void(0)  </link>",
    "data link": "<title>t</title><link>data:text/html;base64,PHNjcmlwdD4=</link>",
    "query string link": "<title>t</title><link>https://news.example/a?x=1&amp;y=2&amp;amp;z=3</link>",
    "mangled query link": "<title>t</title><link>https://news.example/a?x=1&amp;lang;=ar</link>",
    "extra slashes link": "<title>t</title><link>https:////news.example/a</link>",
    "arabic link": "<title>t</title><link>https://ar.example/الكويت/خبر</link>",
    "rfc822 +0300": f"{LINK}<pubDate>Mon, 23 Nov 2026 09:15:00 +0300</pubDate>",
    "rfc822 GMT": f"{LINK}<pubDate>Sun, 22 Nov 2026 18:40:00 GMT</pubDate>",
    "rfc822 EST": f"{LINK}<pubDate>Sun, 22 Nov 2026 18:40:00 EST</pubDate>",
    "rfc822 +0330 no seconds": f"{LINK}<pubDate>Sun, 22 Nov 2026 18:40 +0330</pubDate>",
    "rfc822 two-digit year": f"{LINK}<pubDate>Sun, 22 Nov 26 18:40:00 Z</pubDate>",
    "iso date": f"{LINK}<pubDate>2026-11-21T09:05:00+01:00</pubDate>",
    "invalid date": f"{LINK}<pubDate>قبل ساعة</pubDate>",
    "impossible date": f"{LINK}<pubDate>Mon, 32 Nov 2026 09:15:00 +0300</pubDate>",
    "far future date": f"{LINK}<pubDate>Sat, 01 Jan 2033 00:00:00 GMT</pubDate>",
    "epoch date": f"{LINK}<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate>",
    "missing date": f"{LINK}<title>بلا تاريخ</title>",
    "dc:date only": f"{LINK}<dc:date>2026-11-21T12:30:00Z</dc:date>",
    "pubDate and dc:date": f"{LINK}<dc:date>2026-11-21T12:30:00Z</dc:date><pubDate>Invalid</pubDate>",
    "dc:creator": f"{LINK}<dc:creator>أسامة دياب</dc:creator>",
    "author with e-mail": f"{LINK}<author>news@example.com (مراسل)</author>",
    "dc:creator with e-mail": f"{LINK}<dc:creator>مراسل &lt;news@example.com&gt;</dc:creator>",
    "content longer than description": (
        f"{LINK}<description>قصير</description><content:encoded><![CDATA[<p>نص أطول بكثير</p>]]></content:encoded>"
    ),
    "content shorter than description": (
        f"{LINK}<content:encoded>قصير</content:encoded><description>نص الوصف أطول بكثير</description>"
    ),
    "content only": f"{LINK}<content:encoded><![CDATA[<p>المحتوى وحده</p>]]></content:encoded>",
    "empty content, description": f"{LINK}<content:encoded/><description>الوصف</description>",
    "no guid, no link": "<title>بلا رابط</title><description>نص</description>",
    "nothing at all": "",
    "mixed rtl and ltr": f"{LINK}<title>\u202bالكويت\u202c and the US: \u200fالحوار\u200e (Round 7)</title>",
    "latin-1 mojibake": f"{LINK}<title>CafÃ© Ã\u00a0 la carte</title><description>Â\u0080 and \u0093quoted\u0094</description>",
    "ignored children": (
        f'{LINK}<category domain="x">سياسة</category><category>محليات</category><comments>https://c.example/1</comments>'
        '<enclosure url="https://img.example/1.jpg" length="1" type="image/jpeg"/>'
        "<wfw:commentRss>https://c.example/1/feed</wfw:commentRss><slash:comments>3</slash:comments>"
        '<media:content url="https://img.example/2.jpg" medium="image" width="600"/>'
        '<media:thumbnail url="https://img.example/3.jpg"/><media:thumbnail>https://img.example/4.jpg</media:thumbnail>'
    ),
    "comments and processing instructions in text": f"{LINK}<title>الكو<!-- x -->يت<?pi y?> اليوم</title>",
    "stray text in the item": f"نص شارد<title>t</title>{LINK} more &amp; text<guid>g-9</guid>",
    "text inside ignored elements": f'{LINK}<enclosure url="https://img.example/1.jpg">نص</enclosure>',
    "crlf line endings": "<title>سطر\r\nثان\r</title>\r\n<link>\r\nhttps://news.example/a/3\r\n</link>",
    "emoji and astral characters": f"{LINK}<title>😀 الكويت 𝒳</title><description>&#128512;</description>",
}


@pytest.mark.parametrize("items", EDGE_ITEMS.values(), ids=EDGE_ITEMS.keys())
def test_edge_case_items_parse_alike(items: str) -> None:
    body = rss(f"<item>{items}</item><item><title>ثانٍ</title>{LINK}</item>")
    for headers in HEADER_VARIANTS.values():
        assert_same(body, headers)


def test_edge_cases_keep_their_meaning() -> None:
    """Spot checks that the equal results are also the right ones."""

    def entry(name: str) -> Any:
        return assert_same(rss(f"<item>{EDGE_ITEMS[name]}</item>")).entries[0]

    assert entry("cdata title").title == "عنوان عريض & مهم"
    assert entry("cdata title with script").title == "الكويت"
    assert entry("plain title with lt").title == "5 < 6 & 7 > 3"
    assert entry("guid isPermaLink false, no link").link is None
    assert entry("guid isPermaLink false, no link").guid == "g-3"
    assert entry("guid permalink, no link").link == "https://news.example/g/1"
    assert entry("guid isPermaLink True (not 'true')").link is None
    assert entry("guid before link").link == "https://news.example/a/1"
    assert entry("javascript link").link is None and entry("javascript link").guid == "js-1"
    assert entry("relative link").link == "https://feeds.example.com/article/44001"
    assert entry("far future date").published_is_fallback
    assert entry("rfc822 +0300").published == datetime(2026, 11, 23, 6, 15, tzinfo=UTC)
    assert entry("content longer than description").summary == "نص أطول بكثير"
    assert entry("content shorter than description").summary == "قصير"  # content wins when present
    assert entry("author with e-mail").author == "news@example.com (مراسل)"
    assert entry("no guid, no link").guid.startswith("sha256:")


@pytest.mark.parametrize(
    "channel",
    [
        "<title>أخبار</title><language>ar</language>",
        "<language>AR_kw</language><title>&lt;b&gt;أخبار&lt;/b&gt;</title>",
        "<language></language>",
        "",
        '<atom:link href="https://news.example/rss" rel="self" type="application/rss+xml"/><title>t</title>',
        "<image><url>https://news.example/logo.png</url><title>شعار</title><link>https://news.example/</link>"
        "<width>100</width><height>x</height><description>وصف الشعار</description></image><title>بعد الصورة</title>",
        "نص شارد<title>أخبار</title> &amp; نص",
        "<description>وصف</description><copyright>©</copyright><managingEditor>e@x.example (E)</managingEditor>"
        "<webMaster>w@x.example</webMaster><pubDate>Mon, 23 Nov 2026 09:15:00 +0300</pubDate>"
        "<lastBuildDate>Mon, 23 Nov 2026 10:05:00 +0300</lastBuildDate><category>news</category>"
        "<generator>WordPress</generator><docs>https://www.rssboard.org/rss-specification</docs><ttl>15</ttl>"
        "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>1</sy:updateFrequency>",
    ],
    ids=["title+language", "language first", "empty language", "nothing", "atom:link", "image", "stray text", "many"],
)
def test_channel_elements_parse_alike(channel: str) -> None:
    body = rss(f"<item><title>خبر</title>{LINK}</item>", channel)
    for headers in HEADER_VARIANTS.values():
        assert_same(body, headers)
    # Channel elements after the items change nothing either.
    assert_same(rss(f"<item><title>خبر</title>{LINK}</item>{channel}", ""))


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\xef\xbb\xbf", b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>', b"<?xml version='1.0'?>\n"],
    ids=["no declaration", "BOM", "BOM and declaration", "declaration without encoding"],
)
def test_utf8_signals(prefix: bytes) -> None:
    body = prefix + rss(f"<item><title>خبر</title>{LINK}</item>").split(b"?>", 1)[1]
    for headers in HEADER_VARIANTS.values():
        assert_same(body, headers)
    # text/xml without a charset means US-ASCII to feedparser: with a UTF-8 signal in the body
    # it warns and uses UTF-8; without one it asks chardet, and the fast path stays out of it.
    text_xml = assert_same(body, {"content-type": "text/xml"}, eligible=prefix.startswith(b"\xef\xbb\xbf"))
    assert text_xml.entries[0].title == "خبر"


def test_unusual_namespace_prefixes() -> None:
    """feedparser goes by the namespace URI, as ElementTree does, not by the prefix."""
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:c="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:d="http://purl.org/dc/elements/1.1/" xmlns:a="http://www.w3.org/2005/Atom"><channel><title>t</title>'
        '<a:link href="https://news.example/rss" rel="self"/><item><title>خبر</title><d:creator>كونا</d:creator>'
        f'<c:encoded>المحتوى</c:encoded><d:date>2026-11-21T12:30:00Z</d:date>{LINK}</item>'
        '<item xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>مراسل</dc:creator></item></channel></rss>'
    ).encode()
    feed = assert_same(body)
    assert [e.author for e in feed.entries] == ["كونا", "مراسل"] and feed.entries[0].summary == "المحتوى"


# -- random items -----------------------------------------------------------------------------------

ALPHABET = list("abc XYZ 019 الكويتوالمملكةالمتحدة") + list("<>&;#\"'/=\n\t\r ") + [
    "\u00a0", "\u200f", "\u200e", "\u202b", "\u2003", "Ã", "©", "Â", "\x85", "\x93", "é", "\ufeff", "😀",
]  # fmt: skip
FRAGMENTS = [
    "<p>", "</p>", "<b>", "</b>", "<br/>", "<div>", "</div>", "<script>alert(1)</script>", "<style>p{}</style>",
    "<foo>", "</foo>", "&amp;", "&amp;amp;", "&lt;b&gt;", "&nbsp;", "&laquo;", "&#1603;", "&#x41;", "&bogus;",
    "AT&T", "]]>", "<!-- c -->", "الحوار الاستراتيجي", "news@example.com", "CafÃ©", "Â\x80",
]  # fmt: skip
LINKS = [
    "https://www.alanba.com.kw/1301245", "http://x.example/a?b=1&c=2", "http://x.example/a?b=1&amp;c=2",
    "http://x.example/a?b=1&lang;=2", "/article/1", "article/2?lang=ar", "//cdn.example/3",
    "javascript:alert(1)", "  JaVaScRiPt:void(0)  ", "data:text/html;base64,xx", "mailto:a@b.example",
    "https:////x.example/y", "HTTP://X.EXAMPLE/Z", "https://x.example/a b", "http://[::1", "", " ",
    "https://ar.example/الكويت", "?page=2", "https://x.example/Ã©",
]  # fmt: skip
DATES = [
    "Mon, 23 Nov 2026 09:15:00 +0300", "Sun, 22 Nov 2026 18:40:00 GMT", "22 Nov 2026 18:40 EST",
    "Sat, 01 Jan 2033 00:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "2026-11-21T12:30:00Z",
    "2026-11-21T09:05:00+01:00", "قبل ساعة", "", "  Mon, 23 Nov 2026 09:15:00 +0300\n ",
    "Mon, 32 Nov 2026 09:15:00 +0300", "Tue, 17 Nov 2026 10:00:00 PST", "Tue, 17 Nov 26 10:00 Z",
    "Wed, 18 Nov 2026 07:10:00 +0330", "Mon, 23 Nov 2026 25:00:00 +0300", "2026-11-23",
]  # fmt: skip
AUTHORS = ["أسامة دياب", "news@example.com (مراسل)", "مراسل <news@example.com>", "كونا", "", "a@b.co", "  (x)  "]
LANGUAGES = ["ar", "AR", "ar_KW", " ar ", "", "en-GB"]

texts = st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=12), st.sampled_from(FRAGMENTS)), max_size=6).map(
    "".join
)


@st.composite
def xml_text(draw: st.DrawFn, strategy: st.SearchStrategy[str] = texts) -> str:
    """One text as XML character data: escaped, in CDATA, as character references, escaped twice,
    or in pieces of each, with comments between pieces and whitespace around."""
    pieces = []
    for piece in draw(st.lists(strategy, min_size=1, max_size=3)):
        form = draw(st.sampled_from(["escape", "cdata", "charref", "double"]))
        if form == "cdata":
            pieces.append("<![CDATA[" + piece.replace("]]>", "]]]]><![CDATA[>") + "]]>")
        elif form == "charref":
            pieces.append("".join(c if c.isascii() and c.isalnum() else f"&#{ord(c)};" for c in piece))
        elif form == "double":
            pieces.append(escape(escape(piece)))
        else:
            pieces.append(escape(piece))
    joiner = draw(st.sampled_from(["", "", "<!-- c -->", "<?pi x?>"]))
    pad = st.sampled_from(["", "", " ", "\n  ", "\t\n"])
    return draw(pad) + joiner.join(pieces) + draw(pad)


def element(tag: str, text: str | None, attributes: str = "") -> str:
    return f"<{tag}{attributes}/>" if text is None else f"<{tag}{attributes}>{text}</{tag}>"


maybe_empty = st.sampled_from([False, False, False, True])
links = xml_text(st.sampled_from(LINKS))


@st.composite
def items(draw: st.DrawFn) -> str:
    """An <item> of whitelisted children in random presence and order."""
    candidates = {
        "title": lambda: element("title", draw(xml_text())),
        "link": lambda: element("link", None if draw(maybe_empty) else draw(links)),
        "description": lambda: element("description", draw(xml_text())),
        "content": lambda: element("content:encoded", draw(xml_text())),
        "guid": lambda: element(
            "guid",
            draw(st.one_of(links, xml_text())),
            draw(st.sampled_from(["", ' isPermaLink="true"', ' isPermaLink="false"', ' isPermaLink="True"'])),
        ),
        "pubDate": lambda: element("pubDate", draw(xml_text(st.sampled_from(DATES)))),
        "dc:date": lambda: element("dc:date", draw(xml_text(st.sampled_from(DATES)))),
        "author": lambda: element(
            draw(st.sampled_from(["author", "dc:creator"])), draw(xml_text(st.sampled_from(AUTHORS)))
        ),
        "category": lambda: element("category", draw(xml_text())),
        "enclosure": lambda: '<enclosure url="https://img.example/1.jpg" type="image/jpeg" length="10"/>',
        "media": lambda: f"<media:content url={quoteattr(draw(st.sampled_from(LINKS)))} medium=\"image\"/>",
        "thumbnail": lambda: element("media:thumbnail", draw(links)),
        "comments": lambda: element("comments", draw(links)),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(candidates)), unique=True, max_size=len(candidates)))
    children = [candidates[name]() for name in chosen]
    gap = draw(st.sampled_from(["", "\n    ", " <!-- between --> "]))
    return "<item>" + gap + gap.join(children) + gap + "</item>"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    channel = [element("title", draw(xml_text()))] if draw(st.booleans()) else []
    if draw(st.booleans()):
        channel.append(element("language", escape(draw(st.sampled_from(LANGUAGES)))))
    channel += draw(
        st.lists(
            st.sampled_from([
                "<link>https://news.example/</link>",
                "<description>وصف &amp; نص</description>",
                '<atom:link href="https://news.example/rss" rel="self" type="application/rss+xml"/>',
                "<image><url>https://news.example/l.png</url><title>شعار</title><link>https://news.example/</link></image>",
                "<lastBuildDate>Mon, 23 Nov 2026 10:05:00 +0300</lastBuildDate>",
                "<sy:updatePeriod>hourly</sy:updatePeriod>",
            ]),
            unique=True,
        )
    )  # fmt: skip
    children = channel + draw(st.lists(items(), max_size=4))
    order = draw(st.permutations(range(len(children))))
    declaration = draw(
        st.sampled_from(['<?xml version="1.0" encoding="utf-8"?>', "<?xml version='1.0' encoding='UTF-8'?>", ""])
    )
    body = (
        f'{declaration}<rss version="2.0" {NAMESPACES}><channel>'
        + "".join(children[i] for i in order)
        + "</channel></rss>"
    )
    return body.encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents(), st.sampled_from(sorted(HEADER_VARIANTS)))
def test_random_rss_parses_alike(body: bytes, headers_name: str) -> None:
    assert_same(body, HEADER_VARIANTS[headers_name])


# -- the shapes the benchmarks feed in ------------------------------------------------------------


def load_bench(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_poll_bench_feeds_take_the_fast_path() -> None:
    bench = load_bench("poll_bench")
    corpus = REPO.parent / "shared" / "corpus" / "dev.jsonl"
    if corpus.exists():
        articles = bench.corpus_articles(corpus)
    else:  # the shape is what matters; the corpus only supplies words
        articles = [{"title": "الحوار الاستراتيجي", "body": "نص الخبر عن الكويت & واشنطن <b>", "relevant": True}]
    vocabulary = bench.filler_vocabulary(articles) or ["كلمة"]
    rng = random.Random(7)
    for feed in range(3):
        body = bench.rss(feed, bench.make_items(feed, 40, articles, vocabulary, rng))
        headers = {"content-type": "application/rss+xml"}  # what the bench's nginx sends
        parsed = assert_same(body, headers)
        assert len(parsed.entries) == 40 and parsed.error is None


# -- ineligible input falls back to feedparser ----------------------------------------------------

ALANBA = (FEEDS / "rss20_alanba.xml").read_bytes()
SIMPLE = rss(f"<item><title>خبر</title>{LINK}<guid>g-1</guid></item>")
INELIGIBLE = {
    "windows-1256 declared": (FEEDS / "rss_cp1256_prolog.xml").read_bytes(),
    "windows-1256 undeclared": (FEEDS / "rss_cp1256_undeclared.xml").read_bytes(),
    "utf-8 body declared windows-1256": SIMPLE.replace(b'encoding="utf-8"', b'encoding="windows-1256"'),
    "doctype": SIMPLE.replace(b"<rss", b"<!DOCTYPE rss><rss", 1),
    "entity declaration": (FEEDS / "rss_entity_bomb.xml").read_bytes(),
    "malformed": (FEEDS / "rss_malformed.xml").read_bytes(),
    "html entity outside cdata": rss(f"<item><title>أ&nbsp;ب</title>{LINK}</item>"),
    "atom": (FEEDS / "atom_govuk.xml").read_bytes(),
    "rdf": (FEEDS / "rdf_dw.xml").read_bytes(),
    "rss 0.91": (FEEDS / "rss091_kuna.xml").read_bytes(),
    "unknown item element": rss(f"<item><title>خبر</title>{LINK}<dc:subject>سياسة</dc:subject></item>"),
    "atom:link in item": rss(f'<item><title>خبر</title><atom:link href="https://x.example/1"/></item>'),
    "media:content with a title": rss(
        f'<item><title>خبر</title>{LINK}<media:content url="u"><media:title>آخر</media:title></media:content></item>'
    ),
    "markup inside title": rss(f"<item><title>خبر <b>عاجل</b></title>{LINK}</item>"),
    "xml:lang": rss(f'<item xml:lang="en"><title>news</title>{LINK}</item>'),
    "xml:base": rss(f'<item><title>خبر</title><link xml:base="https://other.example/">a</link></item>'),
    "lang attribute": rss(f'<item><title lang="en">news</title>{LINK}</item>'),
    "title type attribute": rss(f'<item><title type="html">&lt;b&gt;x&lt;/b&gt;</title>{LINK}</item>'),
    "two titles": rss(f"<item><title>أول</title><title>ثان</title>{LINK}</item>"),
    "two descriptions": rss(f"<item>{LINK}<description>أ</description><description>ب</description></item>"),
    "author and dc:creator": rss(f"<item>{LINK}<author>a@b.example (A)</author><dc:creator>ب</dc:creator></item>"),
    "two channel titles": rss(f"<item>{LINK}</item>", "<title>أ</title><title>ب</title>"),
    "item language": rss(f"<item><title>خبر</title>{LINK}<dc:language>en</dc:language></item>"),
    "upper-case element": rss(f"<item><Title>خبر</Title>{LINK}</item>"),
    "rss 2.01": SIMPLE.replace(b'version="2.0"', b'version="2.01"'),
    "rss 1.0 namespace declared": SIMPLE.replace(b"<rss ", b'<rss xmlns:rss1="http://purl.org/rss/1.0/" ', 1),
    "dc prefix bound to content module": SIMPLE.replace(
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"',
        b'xmlns:dc="http://purl.org/rss/1.0/modules/content/" xmlns:d="http://purl.org/dc/elements/1.1/"',
    ).replace(b"<guid>", b"<d:creator>x</d:creator><guid>"),
    "default namespace": SIMPLE.replace(b"<rss ", b'<rss xmlns="http://backend.userland.com/rss2" ', 1),
    "item outside channel": SIMPLE.replace(b"</channel>", b"</channel><item><title>x</title></item>"),
    "channel attribute": SIMPLE.replace(b"<channel>", b'<channel xml:base="https://other.example/">'),
    "utf-16": SIMPLE.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16"),
}
INELIGIBLE_HEADERS = {
    "charset windows-1256": {"content-type": "application/rss+xml; charset=windows-1256"},
    "content-location": {"content-type": "application/rss+xml", "content-location": "https://other.example/"},
}


def test_text_xml_without_charset_keeps_feedparsers_warning() -> None:
    """Common in the wild: text/xml, no charset, a UTF-8 declaration. Eligible, and the
    encoding warning is feedparser's own."""
    feed = assert_same(SIMPLE, {"content-type": "text/xml"})
    assert feed.warnings[0] == (
        "feed is not well-formed, parsed leniently: CharacterEncodingOverride: "
        "document declared as us-ascii, but parsed as utf-8"
    )


@pytest.mark.parametrize("body", INELIGIBLE.values(), ids=INELIGIBLE.keys())
def test_ineligible_documents_fall_back(body: bytes) -> None:
    assert parse_fast(body, _response_headers(RSS_HEADERS)) is None
    fast, slow = both(body)
    assert fast == slow


@pytest.mark.parametrize("headers", INELIGIBLE_HEADERS.values(), ids=INELIGIBLE_HEADERS.keys())
def test_ineligible_headers_fall_back(headers: dict[str, str]) -> None:
    assert parse_fast(ALANBA, _response_headers(headers)) is None
    fast, slow = both(ALANBA, headers)
    assert fast == slow and len(fast.entries) == 4


def test_fallback_still_gives_feedparser_entries() -> None:
    """Ineligible is not rejected: the lenient parser still reads what it can."""
    fast, _ = both(INELIGIBLE["html entity outside cdata"])
    assert [e.title for e in fast.entries] == ["أ ب"]
    assert fast.warnings[0].startswith("feed is not well-formed, parsed leniently")


def test_a_failing_fast_path_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(body: bytes, headers: Mapping[str, str], **_: object) -> None:
        raise RuntimeError("bug in the fast path")

    expected = parse_feed(ALANBA, RSS_HEADERS, base_url=BASE_URL, fetched_at=NOW, fast=False)
    monkeypatch.setattr(monitor.sources.parse, "parse_fast", broken)
    assert parse_feed(ALANBA, RSS_HEADERS, base_url=BASE_URL, fetched_at=NOW) == expected


def test_sanitizer_and_forced_feedparser_skip_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    monkeypatch.setattr(monitor.sources.parse, "parse_fast", lambda body, headers, **_: calls.append(body))
    parse_feed(ALANBA, RSS_HEADERS, base_url=BASE_URL, fetched_at=NOW, sanitize_html=True)
    parse_feed(ALANBA, RSS_HEADERS, base_url=BASE_URL, fetched_at=NOW, fast=False)
    assert calls == []
    parse_feed(ALANBA, RSS_HEADERS, base_url=BASE_URL, fetched_at=NOW)
    assert calls == [ALANBA]


def test_another_feedparser_version_disables_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_fast(ALANBA, RSS_HEADERS) is not None
    monkeypatch.setattr(feedparser, "__version__", "6.1.0")
    assert parse_fast(ALANBA, RSS_HEADERS) is None


def test_huge_entity_free_body_is_not_expanded() -> None:
    """Entity bombs never reach expat (DOCTYPE rule); a body that is merely big parses as
    itself, no larger."""
    big = "ك" * 200_000
    body = rss(f"<item><title>t</title>{LINK}<description>{big}</description></item>")
    feed = assert_same(body)
    assert len(feed.entries[0].summary) == len(big)


# -- dates: the direct reading of RSS 2.0's usual form gives feedparser's own result ------------

_WEEKDAYS = ["", "Mon, ", "Tue, ", "Wed, ", "Thu, ", "Fri, ", "Sat, ", "Sun, "]
_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
_ZONES = ["GMT", "UT", "UTC", "Z", "EST", "+0000", "-0000", "+0300", "-0530", "+1400", "+9959", "gmt", "+03:00"]


@settings(max_examples=3000, deadline=None)
@given(
    weekday=st.sampled_from(_WEEKDAYS),
    day=st.integers(0, 32),
    month=st.sampled_from(_MONTH_NAMES),
    year=st.sampled_from([1, 999, 1970, 2026, 9999]) | st.integers(1000, 9999),
    clock=st.tuples(st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    zone=st.sampled_from(_ZONES),
    padded=st.booleans(),
)
def test_dates_read_directly_equal_feedparsers(
    weekday: str, day: int, month: str, year: int, clock: tuple[int, int, int], zone: str, padded: bool
) -> None:
    hour, minute, second = clock
    value = f"{weekday}{day:02d}" if padded else f"{weekday}{day}"
    value += f" {month} {year:04d} {hour:02d}:{minute:02d}:{second:02d} {zone}"
    assert fastfeed.parse_date(value) == feedparser_parse_date(value), value


@pytest.mark.parametrize("value", [
    "Sun, 01 Nov 2026 09:30:00 +0300", "1 Nov 2026 09:30:00 GMT", "Sun, 01 Nov 2026 09:30:00 +0300 (AST)",
    "sun, 01 nov 2026 09:30:00 +0300", " Sun, 01 Nov 2026 09:30:00 GMT", "2026-11-01T09:30:00+03:00",
    "Sun, 29 Feb 2026 09:30:00 GMT", "Sun, 01 Nov 26 09:30:00 GMT", "", "not a date",
])
def test_other_date_forms_are_feedparsers(value: str) -> None:
    assert fastfeed.parse_date(value) == feedparser_parse_date(value)


# -- the encoding probe -------------------------------------------------------------------------


def feedparsers_utf8_document(body: bytes, headers: Mapping[str, str]) -> tuple[bytes, str] | None:
    """What _utf8_document must give: convert_to_utf8 run on the whole body, as feedparser
    does, when it settles on UTF-8 (or ASCII) for a valid UTF-8 body."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    info: dict[str, Any] = {}
    data = feedparser.encodings.convert_to_utf8(dict(headers), body, info)
    if not fastfeed._is_utf8(info.get("encoding") or "", ascii_ok=True):
        return None
    return data, repr(info.get("bozo_exception"))


_PROLOGS = st.sampled_from([
    b"", b"\xef\xbb\xbf", b"  ", b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="utf-8"?>',
    b"<?xml version='1.0' encoding='UTF-8'?>", b'<?xml version="1.0" encoding = "utf-8"?>',
    b'<?xml version="1.0" encoding="utf8" standalone="yes"?>', b'<?xml version="1.0" encoding="utf-8">',
    b'<?xml-stylesheet href="a.xsl"?>', b'<?pi encoding="utf-8"?>',
])  # fmt: skip
_PIECES = st.sampled_from([
    b"\n", b"<rss>", b"</rss>", "خبر".encode(), b"news", b'<!-- encoding="windows-1256" -->', b"?>",
    b'<?x encoding="latin-1"?>', b"\r\n", "é".encode(),
])  # fmt: skip
_CONTENT_TYPES = st.sampled_from([
    None, "application/rss+xml; charset=utf-8", "application/rss+xml", "application/xml", "text/xml",
    "text/xml; charset=UTF-8", "text/html; charset=utf-8", "text/plain", "application/octet-stream", "",
])  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PROLOGS, max_size=2), st.lists(_PIECES, max_size=8), _CONTENT_TYPES, st.booleans())
def test_the_encoding_probe_decides_as_convert_to_utf8_on_the_whole_body(
    prologs: list[bytes], pieces: list[bytes], content_type: str | None, checked: bool
) -> None:
    # _utf8_document runs feedparser's convert_to_utf8 on a few bytes standing for the
    # document (its prolog, one non-ASCII character), not on the whole body: the bytes,
    # the encoding and the warning must be those of the whole body's conversion.
    body = b"".join(prologs) + b"".join(pieces)
    headers = {"x-served-by": "test"} if content_type is None else {"content-type": content_type}
    expected = feedparsers_utf8_document(body, headers)
    got = fastfeed._utf8_document(body, headers, valid_utf8=checked)
    got_comparable = None if got is None else (got[0], repr(got[1]))
    if got_comparable is not None or expected is None:
        assert got_comparable == expected
    # (the fast path may decline a body feedparser would read as UTF-8: text/* without a
    # charset, where chardet may decide, stays feedparser's)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from([b"&", b"#", b"&#", b"\xc2", b"\x85", b"\xc2\xa0", b"a", "خ".encode()]), max_size=200))
def test_c1_scan_agrees_with_a_regex_search(pieces: list[bytes]) -> None:
    # Long runs of the first byte go past the one-by-one look-ups to the regex fallback.
    data = b"".join(pieces)
    expected = re.search(rb"&#|\xc2[\x80-\x9f]", data) is not None
    assert fastfeed._may_hold_c1(data) == expected
