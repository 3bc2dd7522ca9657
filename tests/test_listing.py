"""parse_listing on listing-page bytes: selectors, relative links and <base>, unsafe links,
duplicates, fallback titles, dates, charsets (windows-1256), wrong bodies, hostile pages;
check_selector."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from monitor.sources.listing import MAX_DEPTH, ParsedListing, bounded_nesting, check_selector, parse_listing

NOW = datetime(2025, 11, 13, 9, 0, tzinfo=UTC)
BASE = "https://www.example.kw/section/kuwait"
HTML = {"content-type": "text/html; charset=utf-8"}


def parse(body: bytes | str, selector: str = ".news-list .item a", headers: dict[str, str] | None = None, **options: object) -> ParsedListing:
    if isinstance(body, str):
        body = body.encode("utf-8")
    options.setdefault("base_url", BASE)
    options.setdefault("default_language", "ar")
    return parse_listing(body, HTML if headers is None else headers, fetched_at=NOW, selector=selector, **options)  # type: ignore[arg-type]


def page(items: str, head: str = "", lang: str = "ar") -> str:
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>محليات</title>{head}</head><body>'
        '<nav><a href="/">الرئيسية</a><a href="/section/economy">اقتصاد</a></nav>'
        f'<ul class="news-list">{items}</ul><footer><a href="/about">من نحن</a></footer></body></html>'
    )


SECTION = page(
    '<li class="item"><a href="/article/1301245/kuwait-us-dialogue">انطلاق الحوار <b>الاستراتيجي</b> الكويتي - الأمريكي</a>'
    '<time datetime="2025-11-13T08:30:00+03:00">منذ ساعة</time></li>'
    '<li class="item"><a href="article/1301190?ref=list#comments">\n  ولي العهد\n  يستقبل وفداً  </a></li>'
    '<li class="item"><a href="https://other.example.com/news/77">Kuwait, US sign &amp; agree</a></li>'
)


# -- links and titles ----------------------------------------------------------------------------


def test_links_in_page_order_with_visible_text_as_title() -> None:
    result = parse(SECTION)
    assert result.error is None and result.warnings == ()
    assert [(e.link, e.title) for e in result.entries] == [
        ("https://www.example.kw/article/1301245/kuwait-us-dialogue", "انطلاق الحوار الاستراتيجي الكويتي - الأمريكي"),
        ("https://www.example.kw/section/article/1301190?ref=list", "ولي العهد يستقبل وفداً"),
        ("https://other.example.com/news/77", "Kuwait, US sign & agree"),
    ]
    first, second, _ = result.entries
    assert first.guid == first.link and first.summary == "" and first.language == "ar"
    assert first.published == datetime(2025, 11, 13, 5, 30, tzinfo=UTC) and not first.published_is_fallback
    assert second.published == NOW and second.published_is_fallback


def test_base_href_resolves_relative_links() -> None:
    result = parse(page('<li class="item"><a href="1301245">خبر</a></li>', head='<base href="/ar/news/">'))
    assert [e.link for e in result.entries] == ["https://www.example.kw/ar/news/1301245"]


def test_matched_container_uses_its_first_link() -> None:
    body = page(
        '<li class="item"><div class="card"><span class="cat">سياسة</span>'
        '<a href="/a/1"><h3>عنوان الخبر</h3>تفاصيل</a><a href="/a/1#share">شارك</a></div></li>'
    )
    result = parse(body, selector=".news-list .card")
    assert [(e.link, e.title) for e in result.entries] == [("https://www.example.kw/a/1", "عنوان الخبر تفاصيل")]


def test_unsafe_links_are_dropped_and_counted() -> None:
    body = page(
        '<li class="item"><a href="javascript:alert(1)">اضغط</a></li>'
        '<li class="item"><a href=" JavaScript:void(0)">x</a></li>'
        '<li class="item"><a href="mailto:desk@example.kw">راسلنا</a></li>'
        '<li class="item"><a href="data:text/html,<script>1</script>">d</a></li>'
        '<li class="item"><a href="#top">أعلى</a></li>'
        '<li class="item"><a href="/a/ok">خبر سليم</a></li>'
        '<li class="item"><span>لا رابط</span></li>'
    )
    result = parse(body, selector=".news-list .item")
    assert [e.link for e in result.entries] == ["https://www.example.kw/a/ok"]
    assert result.warnings == (
        "1 matched elements hold no <a href>; skipped",
        "5 links are not http(s) (javascript:, mailto:, '#'…); skipped",
    )


def test_duplicates_keep_the_first_title_unless_it_was_empty() -> None:
    body = page(
        '<li class="item"><a href="/a/1"><img src="/i.jpg"></a><a href="/a/1">العنوان الكامل للخبر</a></li>'
        '<li class="item"><a href="/a/2">العنوان الأول</a></li>'
        '<li class="item"><a href="/a/2#more">اقرأ المزيد</a></li>'
    )
    result = parse(body)
    assert [(e.link, e.title) for e in result.entries] == [
        ("https://www.example.kw/a/1", "العنوان الكامل للخبر"),
        ("https://www.example.kw/a/2", "العنوان الأول"),
    ]


def test_empty_link_text_falls_back_to_title_attribute_image_alt_then_url() -> None:
    body = page(
        '<li class="item"><a href="/a/1" title=" لقاء  ثنائي "><img src="/1.jpg" alt="صورة"></a></li>'
        '<li class="item"><a href="/a/2"><img src="/2.jpg" alt="وزير الخارجية في واشنطن"></a></li>'
        '<li class="item"><a href="/2025/11/12/الكويت-وواشنطن-تعقدان-الحوار.html"><img src="/3.jpg"></a></li>'
        '<li class="item"><a href="/a/4"> </a></li>'
    )
    result = parse(body)
    assert [e.title for e in result.entries] == ["لقاء ثنائي", "وزير الخارجية في واشنطن", "الكويت وواشنطن تعقدان الحوار", ""]


def test_script_and_style_in_link_text_are_not_title() -> None:
    body = page('<li class="item"><a href="/a/1">x<script>alert(1)</script><style>a{color:red}</style> y</a></li>')
    assert parse(body).entries[0].title == "x y"


def test_time_in_parent_item_is_the_date_and_implausible_ones_are_ignored() -> None:
    body = page(
        '<li class="item"><h3><a href="/a/1">أ</a></h3></li>'
        '<li class="item"><a href="/a/2">ب</a><time datetime="2025-11-12">أمس</time></li>'
        '<li class="item"><a href="/a/3">ج</a><time datetime="2099-01-01">x</time></li>'
        '<li class="item"><a href="/a/4">د</a><time datetime="soon">x</time></li>'
    )
    result = parse(body)
    assert [e.published_is_fallback for e in result.entries] == [True, False, True, True]
    assert result.entries[1].published == datetime(2025, 11, 12, tzinfo=UTC)


def test_include_filters_links() -> None:
    result = parse(SECTION, include=re.compile(r"/article/"))
    assert [e.link for e in result.entries] == [
        "https://www.example.kw/article/1301245/kuwait-us-dialogue",
        "https://www.example.kw/section/article/1301190?ref=list",
    ]


def test_language_from_html_lang_else_default() -> None:
    assert parse(page('<li class="item"><a href="/a">Kuwait</a></li>', lang="en-GB")).entries[0].language == "en-gb"
    body = page('<li class="item"><a href="/a">Kuwait</a></li>').replace(' lang="ar"', "")
    assert parse(body, default_language="AR").entries[0].language == "ar"


def test_max_links_keeps_the_first_with_a_warning() -> None:
    body = page("".join(f'<li class="item"><a href="/a/{n}">خبر {n}</a></li>' for n in range(30)))
    result = parse(body, max_links=10)
    assert [e.link for e in result.entries] == [f"https://www.example.kw/a/{n}" for n in range(10)]
    assert result.warnings == ("the links selector matched 30 elements: only the first 10 links kept (read up to element 10)",)


# -- charsets ------------------------------------------------------------------------------------

ARABIC_PAGE = page('<li class="item"><a href="/a/1">الحوار الاستراتيجي بين الكويت والولايات المتحدة</a></li>')


def test_windows_1256_page_declared_in_meta() -> None:
    body = ARABIC_PAGE.replace('<meta charset="utf-8">', '<meta http-equiv="Content-Type" content="text/html; charset=windows-1256">')
    result = parse(body.encode("cp1256"), headers={"content-type": "text/html"})
    assert result.error is None and result.warnings == ()
    assert result.entries[0].title == "الحوار الاستراتيجي بين الكويت والولايات المتحدة"


def test_windows_1256_page_undeclared_or_declared_utf8() -> None:
    undeclared = ARABIC_PAGE.replace('<meta charset="utf-8">', "").encode("cp1256")
    result = parse(undeclared, headers={"content-type": "text/html"})
    assert result.entries[0].title == "الحوار الاستراتيجي بين الكويت والولايات المتحدة"
    assert result.warnings == ("the page declares no charset and is not UTF-8: decoded as windows-1256",)
    assert not result.entries[0].text_suspect
    lying = ARABIC_PAGE.encode("cp1256")  # <meta charset="utf-8"> and the header both say UTF-8
    result = parse(lying)
    assert result.entries[0].title == "الحوار الاستراتيجي بين الكويت والولايات المتحدة"
    assert result.warnings == ("the page declared UTF-8 but is not: decoded as windows-1256",)
    assert result.entries[0].text_suspect


def test_http_charset_beats_meta_and_bom_beats_both() -> None:
    body = ARABIC_PAGE.replace('<meta charset="utf-8">', '<meta charset="iso-8859-1">').encode("cp1256")
    result = parse(body, headers={"content-type": "text/html; charset=windows-1256"})
    assert result.entries[0].title == "الحوار الاستراتيجي بين الكويت والولايات المتحدة"
    bom = b"\xef\xbb\xbf" + ARABIC_PAGE.encode("utf-8")
    result = parse(bom, headers={"content-type": "text/html; charset=windows-1256"})
    assert result.entries[0].title == "الحوار الاستراتيجي بين الكويت والولايات المتحدة"


def test_a_few_bad_bytes_in_utf8_become_replacement_characters() -> None:
    body = ARABIC_PAGE.encode("utf-8").replace("الكويت".encode(), b"\xff" + "الكويت".encode())
    result = parse(body)
    assert result.entries[0].title == "الحوار الاستراتيجي بين \ufffdالكويت والولايات المتحدة"
    assert result.entries[0].text_suspect
    assert result.warnings == ("1 invalid UTF-8 byte replaced with U+FFFD",)


# -- wrong bodies and selectors ------------------------------------------------------------------


def test_selector_matching_nothing_says_so_with_a_hint() -> None:
    result = parse(SECTION, selector=".latest-news a")
    assert result.entries == ()
    assert result.error == "the links selector '.latest-news a' matched nothing on the page (6 <a href> links on it)"


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"", HTML, "empty response body"),
        (b'{"items": [{"url": "https://www.example.kw/a/1"}]}', {"content-type": "application/json"}, "not an HTML page: the server sent JSON"),
        (
            b'<?xml version="1.0"?>\n<!-- feed --><rss version="2.0"><channel><item><link>https://a/1</link></item></channel></rss>',
            {"content-type": "text/html"},
            'not an HTML page: the server sent an RSS/Atom feed; configure it with type "rss"',
        ),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>', HTML, "not an HTML page: the server sent an RSS/Atom feed"),
        (b"<urlset><url><loc>https://a/1</loc></url></urlset>", HTML, 'not an HTML page: the server sent a sitemap; configure it with type "sitemap"'),
        (b"%PDF-1.7\n\x00\x01\x02", {"content-type": "application/pdf"}, "not an HTML page: binary content (application/pdf)"),
        (b"just some words, no markup at all", {"content-type": "text/plain"}, "not an HTML page: no markup (text/plain)"),
    ],
)
def test_bodies_that_are_not_html(body: bytes, headers: dict[str, str], expected: str) -> None:
    result = parse(body, headers=headers)
    assert result.entries == () and result.error is not None
    assert result.error.startswith(expected), result.error


def test_invalid_selector_is_an_error_not_a_traceback() -> None:
    result = parse(SECTION, selector="ul >> a[")
    assert result.entries == () and result.error is not None
    assert result.error == "invalid links selector: not a valid CSS selector: 'ul >> a['"


@pytest.mark.parametrize("selector", [".news-list .item a", "ul.news-list > li a[href]", "article:has(time) h3 a", "a[href*='/article/']"])
def test_check_selector_accepts_valid_css(selector: str) -> None:
    assert check_selector(selector) is None


@pytest.mark.parametrize("selector", ["", "   ", "a[", "div >>> a", "a::before", "a,", ":contains(x)"])
def test_check_selector_rejects_invalid_css(selector: str) -> None:
    reason = check_selector(selector)
    assert reason and "\n" not in reason and len(reason) < 100


# -- hostile pages -------------------------------------------------------------------------------


def test_deeply_nested_divs_are_cut_with_a_warning() -> None:
    body = page(
        '<li class="item"><a href="/a/before">قبل</a></li>'
        + "<div>" * 1_000_000
        + '<li class="item"><a href="/a/inside">داخل</a></li>'
    )
    assert len(body) > 5_000_000
    result = parse(body)
    assert [e.link for e in result.entries] == ["https://www.example.kw/a/before"]
    assert any(w.startswith(f"the page nests elements more than {MAX_DEPTH} deep") for w in result.warnings)


def test_nesting_bound_ignores_closed_elements_scripts_and_optional_end_tags() -> None:
    markup = "<div></div>" * 10_000 + "<li><p>" * 10_000 + "<script>" + "<div>" * 10_000 + "</script><div>x</div>"
    assert bounded_nesting(markup) == (markup, None)
    nested = "<section>" * (MAX_DEPTH + 5)
    cut, at = bounded_nesting(nested)
    assert at == len("<section>") * MAX_DEPTH and cut == nested[:at]


def test_a_hundred_thousand_links_are_bounded() -> None:
    body = page("".join(f'<li class="item"><a href="/a/{n}">خبر رقم {n}</a></li>' for n in range(100_000)))
    result = parse(body)
    assert len(result.entries) == 1000
    assert result.warnings[0].startswith("the links selector matched 100000 elements: only the first 1000 links kept")


def test_a_selector_matching_every_wrapper_reads_a_bounded_part_of_each() -> None:
    items = "".join(f'<div class="w"><p>{"<span>نص</span>" * 4}</p>' for _ in range(400)) + '<a href="/a/deep">عميق</a>' + "</div>" * 400
    result = parse(page(items), selector="div.w")
    # Each wrapper's first link is the one at the bottom; the outer ones are too far to reach.
    assert [e.link for e in result.entries] == ["https://www.example.kw/a/deep"]
    assert "matched elements hold no <a href>" in result.warnings[0]


def test_card_with_image_link_takes_the_headline_and_the_date_beside_it() -> None:
    card = (
        '<li class="item"><article class="card"><div class="img"><a href="/a/{n}"><img src="/{n}.jpg" alt="صورة"></a></div>'
        '<div class="body"><h3><a href="/a/{n}">عنوان الخبر {n}</a></h3><time datetime="2025-11-1{n}T10:00:00Z">اليوم</time></div>'
        "</article></li>"
    )
    body = page(card.format(n=1) + card.format(n=2))
    for selector in ("article.card", ".card h3 a"):
        result = parse(body, selector=selector)
        assert [(e.title, e.published) for e in result.entries] == [
            ("عنوان الخبر 1", datetime(2025, 11, 11, 10, tzinfo=UTC)),
            ("عنوان الخبر 2", datetime(2025, 11, 12, 10, tzinfo=UTC)),
        ], selector


def test_a_date_of_another_item_is_not_taken() -> None:
    body = page('<li class="item"><a href="/a/1">بلا تاريخ</a></li><li><a href="/a/2">آخر</a><time datetime="2025-11-12">أمس</time></li>')
    result = parse(body, selector="li.item a")
    assert result.entries[0].published_is_fallback
