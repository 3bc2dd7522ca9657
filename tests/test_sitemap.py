"""parse_sitemap on sitemap bytes: urlset, index, Google News, gzip, plain text, namespaces,
hostile XML (entity bomb, XXE, gzip bomb), things that are not sitemaps; title_from_url."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime, timedelta

import pytest

from monitor.sources.sitemap import MAX_INFLATED, ParsedSitemap, parse_sitemap, parse_w3c_date
from monitor.sources.urltitle import title_from_url

NOW = datetime(2025, 11, 13, 9, 0, tzinfo=UTC)
BASE = "https://www.example.kw/sitemap-news.xml"
SM = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
IMAGE = 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'


def parse(body: bytes | str, **options: object) -> ParsedSitemap:
    if isinstance(body, str):
        body = body.encode("utf-8")
    options.setdefault("base_url", BASE)
    options.setdefault("default_language", "ar")
    return parse_sitemap(body, fetched_at=NOW, **options)  # type: ignore[arg-type]


def urlset(*urls: str, namespaces: str = f"{SM} {NEWS} {IMAGE}") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {namespaces}>\n' + "\n".join(urls) + "\n</urlset>\n"


def news_url(loc: str, title: str, date: str, language: str = "ar") -> str:
    return (
        f"<url><loc>{loc}</loc><news:news><news:publication><news:name>الوكالة</news:name>"
        f"<news:language>{language}</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date><news:title>{title}</news:title></news:news></url>"
    )


GOOGLE_NEWS = urlset(
    news_url(
        "https://www.example.kw/ar/article/1301190",
        "ولي العهد يستقبل وفداً أمريكياً",
        "2025-11-12T10:15:00+03:00",
    ),
    news_url(
        "https://www.example.kw/ar/article/1301245",
        "انطلاق الحوار الاستراتيجي الكويتي - الأمريكي في واشنطن",
        "2025-11-13T08:30:00+03:00",
    ),
    news_url("https://www.example.kw/en/article/1301250", "Kuwait &amp; US hold strategic dialogue", "2025-11-13T07:00Z", "EN"),
)


# -- formats -----------------------------------------------------------------------------------


def test_google_news_sitemap_gives_titles_dates_languages_newest_first() -> None:
    result = parse(GOOGLE_NEWS)
    assert result.error is None and result.warnings == () and result.sitemaps == ()
    assert [e.link for e in result.entries] == [
        "https://www.example.kw/en/article/1301250",
        "https://www.example.kw/ar/article/1301245",
        "https://www.example.kw/ar/article/1301190",
    ]
    first, second, third = result.entries
    assert first.title == "Kuwait & US hold strategic dialogue" and first.language == "en"
    assert first.published == datetime(2025, 11, 13, 7, 0, tzinfo=UTC) and not first.published_is_fallback
    assert second.title == "انطلاق الحوار الاستراتيجي الكويتي - الأمريكي في واشنطن"
    assert second.published == datetime(2025, 11, 13, 5, 30, tzinfo=UTC)
    assert second.guid == second.link and second.summary == "" and second.language == "ar"
    assert third.title == "ولي العهد يستقبل وفداً أمريكياً"


def test_urlset_titles_come_from_the_slug_and_dates_from_lastmod() -> None:
    result = parse(
        urlset(
            "<url><loc>https://www.example.kw/2025/11/12/الكويت-وواشنطن-تعقدان-الحوار-الاستراتيجي.html</loc>"
            "<lastmod>2025-11-12T06:00:00+00:00</lastmod>"
            "<image:image><image:loc>https://cdn.example.kw/photo.jpg</image:loc></image:image></url>",
            "<url><loc>https://www.example.kw/news/details/1301245</loc><lastmod>2025-11-12</lastmod>"
            "<changefreq>never</changefreq><priority>0.5</priority></url>",
        ),
        default_language="AR_kw",
    )
    assert result.error is None and result.warnings == ()
    slug, numeric = result.entries
    assert slug.link == "https://www.example.kw/2025/11/12/الكويت-وواشنطن-تعقدان-الحوار-الاستراتيجي.html"
    assert slug.title == "الكويت وواشنطن تعقدان الحوار الاستراتيجي"
    assert slug.published == datetime(2025, 11, 12, 6, 0, tzinfo=UTC)
    assert slug.language == "ar-kw"
    assert numeric.title == "" and numeric.published == datetime(2025, 11, 12, tzinfo=UTC)


def test_sitemap_index_lists_children_newest_first_undated_last() -> None:
    result = parse(
        f"""<?xml version="1.0"?><sitemapindex {SM}>
        <sitemap><loc>https://www.example.kw/sitemap-2025-10.xml</loc><lastmod>2025-10-31T23:00:00Z</lastmod></sitemap>
        <sitemap><loc>/sitemap-static.xml</loc></sitemap>
        <sitemap><loc>https://www.example.kw/sitemap-2025-11.xml.gz</loc><lastmod>2025-11-13T08:00:00Z</lastmod></sitemap>
        <sitemap><loc>https://www.example.kw/sitemap-2025-10.xml</loc></sitemap>
        </sitemapindex>"""
    )
    assert result.error is None and result.entries == ()
    assert result.sitemaps == (
        "https://www.example.kw/sitemap-2025-11.xml.gz",
        "https://www.example.kw/sitemap-2025-10.xml",
        "https://www.example.kw/sitemap-static.xml",
    )


def test_gzip_body_without_content_encoding_is_inflated() -> None:
    result = parse(gzip.compress(GOOGLE_NEWS.encode("utf-8")))
    assert result.error is None and len(result.entries) == 3
    assert result.entries[1].title == "انطلاق الحوار الاستراتيجي الكويتي - الأمريكي في واشنطن"


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_INFLATED + 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    result = parse(bomb)
    assert result.entries == () and result.error is not None
    assert "50 MB" in result.error


def test_corrupt_gzip_is_an_error() -> None:
    result = parse(gzip.compress(GOOGLE_NEWS.encode())[:40] + b"\x00garbage")
    assert result.error is not None and result.error.startswith("not a sitemap: corrupt gzip body")


@pytest.mark.parametrize(
    "namespaces",
    [
        "",  # none at all
        'xmlns="https://www.sitemaps.org/schemas/sitemap/0.9/"',  # a wrong one
        'xmlns="http://www.google.com/schemas/sitemap/0.84"',  # an old one
    ],
)
def test_namespaces_are_matched_on_local_names(namespaces: str) -> None:
    # news: is used without being declared, as some generators do.
    body = urlset(
        "<url><loc>https://www.example.kw/a/1</loc><news:news><news:title>خبر أول</news:title>"
        "<news:publication_date>2025-11-12</news:publication_date></news:news></url>",
        namespaces=namespaces,
    )
    result = parse(body)
    assert result.error is None
    assert [(e.link, e.title) for e in result.entries] == [("https://www.example.kw/a/1", "خبر أول")]
    assert result.entries[0].published == datetime(2025, 11, 12, tzinfo=UTC)


def test_plain_text_sitemap_one_url_per_line() -> None:
    body = (
        "\ufeffhttps://www.example.kw/2025/11/kuwait-us-strategic-dialogue-1301245.html\r\n"
        "\n"
        "  https://www.example.kw/2025/11/13/ولي-العهد-يستقبل-وفدا  \n"
        "not a url\n"
        "https://www.example.kw/2025/11/kuwait-us-strategic-dialogue-1301245.html\n"
    )
    result = parse(body)
    assert result.error is None
    assert [e.title for e in result.entries] == ["Kuwait us strategic dialogue", "ولي العهد يستقبل وفدا"]
    assert all(e.published == NOW and e.published_is_fallback for e in result.entries)
    assert result.warnings == ("1 lines of the text sitemap are not http(s) URLs; skipped",)


# -- links, dates, filters -----------------------------------------------------------------------


def test_relative_locs_resolve_and_unsafe_ones_are_counted() -> None:
    result = parse(
        urlset(
            "<url><loc>/ar/article/1</loc></url>",
            "<url><loc>javascript:alert(1)</loc></url>",
            "<url><loc>mailto:desk@example.kw</loc></url>",
            "<url><loc></loc></url>",
            "<url><lastmod>2025-11-12</lastmod></url>",
            "<url><loc>/ar/article/1</loc></url>",
        )
    )
    assert [e.link for e in result.entries] == ["https://www.example.kw/ar/article/1"]
    assert "4 URLs with no usable http(s) <loc> skipped" in result.warnings


def test_implausible_and_missing_dates_fall_back_to_fetch_time() -> None:
    result = parse(
        urlset(
            "<url><loc>https://www.example.kw/a/1</loc><lastmod>1970-01-01T00:00:00Z</lastmod></url>",
            "<url><loc>https://www.example.kw/a/2</loc><lastmod>2031-01-01</lastmod></url>",
            "<url><loc>https://www.example.kw/a/3</loc><lastmod>yesterday</lastmod></url>",
            "<url><loc>https://www.example.kw/a/4</loc></url>",
            "<url><loc>https://www.example.kw/a/5</loc><news:news><news:publication_date>garbage</news:publication_date>"
            "</news:news><lastmod>Wed, 12 Nov 2025 08:00:00 +0300</lastmod></url>",
        )
    )
    dated = [e for e in result.entries if not e.published_is_fallback]
    assert [(e.link, e.published) for e in dated] == [("https://www.example.kw/a/5", datetime(2025, 11, 12, 5, tzinfo=UTC))]
    assert all(e.published == NOW for e in result.entries if e.published_is_fallback)
    # Undated entries keep the sitemap's order, after the dated ones.
    assert [e.link[-1] for e in result.entries] == ["5", "1", "2", "3", "4"]
    assert result.warnings == (
        "1 of 5 URLs have no usable date; first-seen time used",
        "3 of 5 URLs have an implausible date (far future or before 1995); first-seen time used",
    )


def test_include_keeps_only_matching_urls() -> None:
    result = parse(GOOGLE_NEWS, include=re.compile(r"/ar/article/"))
    assert [e.link for e in result.entries] == [
        "https://www.example.kw/ar/article/1301245",
        "https://www.example.kw/ar/article/1301190",
    ]
    assert result.warnings == ()


def test_max_age_drops_old_news_but_keeps_undated() -> None:
    body = urlset(
        "<url><loc>https://www.example.kw/a/old</loc><lastmod>2025-11-01</lastmod></url>",
        "<url><loc>https://www.example.kw/a/new</loc><lastmod>2025-11-12T20:00:00Z</lastmod></url>",
        "<url><loc>https://www.example.kw/a/undated</loc></url>",
    )
    result = parse(body, max_age=timedelta(days=2))
    assert [e.link for e in result.entries] == ["https://www.example.kw/a/new", "https://www.example.kw/a/undated"]
    index = parse(
        f"""<sitemapindex {SM}><sitemap><loc>https://www.example.kw/s-2019.xml</loc><lastmod>2019-12-31</lastmod></sitemap>
        <sitemap><loc>https://www.example.kw/s-now.xml</loc><lastmod>2025-11-13</lastmod></sitemap></sitemapindex>""",
        max_age=timedelta(days=7),
    )
    assert index.sitemaps == ("https://www.example.kw/s-now.xml",)


def test_max_urls_bounds_the_work_with_a_warning() -> None:
    body = urlset(*(f"<url><loc>https://www.example.kw/a/{n}</loc></url>" for n in range(50)))
    result = parse(body, max_urls=10)
    assert [e.link for e in result.entries] == [f"https://www.example.kw/a/{n}" for n in range(10)]
    assert "sitemap has more than 10 URLs: only the first 10 read" in result.warnings


def test_an_entry_with_an_empty_news_title_does_not_lose_the_rest() -> None:
    # ultimate-sitemap-parser 1.8.1 stops at the empty <news:title> and returns only /1.
    result = parse(
        urlset(
            "<url><loc>https://www.example.kw/1</loc></url>",
            "<url><loc>https://www.example.kw/2</loc><news:news><news:title></news:title></news:news></url>",
            "<url><loc>https://www.example.kw/3</loc></url>",
        )
    )
    assert [e.link for e in result.entries] == [f"https://www.example.kw/{n}" for n in (1, 2, 3)]


def test_w3c_dates() -> None:
    assert parse_w3c_date("2025-11-12") == datetime(2025, 11, 12, tzinfo=UTC)
    assert parse_w3c_date("2025-11") == datetime(2025, 11, 1, tzinfo=UTC)
    assert parse_w3c_date("2025-11-12T08:30+03:00") == datetime(2025, 11, 12, 5, 30, tzinfo=UTC)
    assert parse_w3c_date("2025-11-12T08:30:00.123Z") == datetime(2025, 11, 12, 8, 30, 0, 123000, tzinfo=UTC)
    assert parse_w3c_date("2025-11-12 08:30:00") == datetime(2025, 11, 12, 8, 30, tzinfo=UTC)
    assert parse_w3c_date("next week") is None and parse_w3c_date("") is None


# -- hostile and wrong input ---------------------------------------------------------------------

LAUGHS = "".join(
    f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)
)
ENTITY_BOMB = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY lol0 "lol">{LAUGHS}]>
<urlset {SM}><url><loc>https://www.example.kw/a/&lol9;</loc></url></urlset>"""


def test_billion_laughs_is_not_expanded() -> None:
    result = parse(ENTITY_BOMB)
    assert all("lollol" not in e.link for e in result.entries if e.link)
    assert result.error is not None or len(result.entries) <= 1


def test_billion_laughs_after_good_urls_keeps_them() -> None:
    body = ENTITY_BOMB.replace(
        "<url><loc>https://www.example.kw/a/&lol9;",
        "<url><loc>https://www.example.kw/a/1</loc></url><url><loc>https://www.example.kw/a/&lol9;",
    )
    result = parse(body)
    assert [e.link for e in result.entries][:1] == ["https://www.example.kw/a/1"]
    assert all("lollol" not in (e.link or "") for e in result.entries)


def test_external_entities_are_not_read() -> None:
    body = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<urlset {SM} {NEWS}><url><loc>https://www.example.kw/a/1</loc><news:news><news:title>t &xxe; t</news:title></news:news></url></urlset>"""
    result = parse(body)
    rendered = repr(result)
    assert "root:" not in rendered and "/bin/" not in rendered
    assert [e.link for e in result.entries] == ["https://www.example.kw/a/1"]


def test_rss_given_as_a_sitemap_says_to_use_type_rss() -> None:
    for body in (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><link>https://a/1</link></item></channel></rss>',
        '<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id></entry></feed>',
    ):
        result = parse(body)
        assert result.entries == () and result.error is not None
        assert result.error.startswith("not a sitemap") and 'type "rss"' in result.error


def test_html_page_is_not_a_sitemap() -> None:
    for body in (
        "<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>",
        "\n\n<html lang='ar'><body><a href='/a'>x</a></body></html>",
    ):
        assert parse(body).error == "not a sitemap: the server sent an HTML page"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "not a sitemap: empty response body"),
        (b"   \n ", "not a sitemap: empty response body"),
        (b'{"urls": ["https://www.example.kw/a"]}', "not a sitemap: no <urlset> or <sitemapindex>"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a sitemap: binary content"),
        (b"<<<>>> \xff\xfe garbage", "not a sitemap: "),
        (b"<?xml version='1.0'?><catalog><book/></catalog>", "not a sitemap: the XML root element is <catalog>"),
    ],
)
def test_garbage_is_a_short_error(body: bytes, expected: str) -> None:
    result = parse(body)
    assert result.entries == () and result.error is not None
    assert result.error.startswith(expected), result.error


def test_truncated_xml_keeps_what_was_readable() -> None:
    body = urlset(*(f"<url><loc>https://www.example.kw/a/{n}</loc></url>" for n in range(5)))
    result = parse(body[: body.index("/a/3") + 4])
    assert [e.link for e in result.entries][:3] == [f"https://www.example.kw/a/{n}" for n in range(3)]
    assert any(w.startswith("sitemap is not well-formed XML") for w in result.warnings)


def test_empty_urlset_is_no_error() -> None:
    result = parse(urlset())
    assert result.error is None and result.entries == ()
    assert result.warnings == ("the sitemap lists no URLs",)


def test_invalid_utf8_bytes_become_replacement_characters() -> None:
    body = GOOGLE_NEWS.encode("utf-8").replace("انطلاق".encode(), b"\xff\xfe" + "انطلاق".encode())
    result = parse(body)
    assert len(result.entries) == 3
    damaged = result.entries[1]
    assert damaged.title.startswith("\ufffd") and damaged.text_suspect
    assert not result.entries[0].text_suspect


# -- title_from_url ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "title"),
    [
        (
            "https://www.example.kw/2025/11/12/الكويت-وواشنطن-تعقدان-الحوار-الاستراتيجي.html",
            "الكويت وواشنطن تعقدان الحوار الاستراتيجي",
        ),
        (
            "https://www.example.kw/2025/11/12/%D8%A7%D9%84%D9%83%D9%88%D9%8A%D8%AA-%D9%88%D9%88%D8%A7%D8%B4%D9%86%D8%B7%D9%86",
            "الكويت وواشنطن",
        ),
        ("https://www.example.kw/1301245-kuwait-us-strategic-dialogue", "Kuwait us strategic dialogue"),
        ("https://www.example.kw/article/1301245/kuwait_us-dialogue-a8f3c9e2/?ref=rss", "Kuwait us dialogue"),
        ("https://www.example.kw/en/kuwait-us-dialogue/1301245", "Kuwait us dialogue"),
        ("https://www.example.kw/news/details/1301245", ""),
        ("https://www.example.kw/index.php?id=1301245", ""),
        ("https://www.example.kw/", ""),
        ("https://www.example.kw/politics/dialogue.html", "Dialogue"),
        ("https://www.example.kw/g20-summit-covid19-talks", "G20 summit covid19 talks"),
        ("https://www.example.kw/%ZZ-bad-%D8", "%ZZ bad"),
    ],
)
def test_title_from_url(url: str, title: str) -> None:
    assert title_from_url(url) == title


def test_title_from_url_is_bounded() -> None:
    assert len(title_from_url("https://www.example.kw/" + "word-" * 100_000)) <= 300


def test_a_cut_gzip_download_drops_the_half_read_last_url() -> None:
    body = urlset(
        *(news_url(f"https://www.example.kw/a/{n}", f"خبر رقم {n} عن الحوار الاستراتيجي", "2025-11-12") for n in range(40))
    )
    compressed = gzip.compress(body.encode("utf-8"))
    result = parse(compressed[: len(compressed) * 3 // 4])
    assert result.error is None and result.warnings[0] == "the gzip body is truncated: read what inflated"
    assert 10 < len(result.entries) < 40
    assert all(e.title == f"خبر رقم {e.link.rsplit('/', 1)[1]} عن الحوار الاستراتيجي" for e in result.entries)
    # Cut inside a title: that <url> is not stored with half a headline.
    cut = body[: body.index("خبر رقم 20") + len("خبر رق")]
    result = parse(gzip.compress(cut.encode("utf-8")))
    assert [e.link for e in result.entries] == [f"https://www.example.kw/a/{n}" for n in range(20)]


def test_undeclared_html_entities_in_titles_are_decoded() -> None:
    result = parse(urlset(news_url("https://www.example.kw/a/1", "Kuwait&nbsp;&rsquo;s dialogue", "2025-11-12")))
    assert result.entries[0].title == "Kuwait ’s dialogue"
