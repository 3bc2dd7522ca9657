"""Article text, title, date and language from article pages (monitor.sources.extract)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sources import extract, pagedate
from monitor.sources.extract import (
    MAX_DEPTH,
    MAX_TEXT_CHARS,
    NO_TEXT,
    decode_page,
    extract_page,
    flatten_deep_nesting,
)
from monitor.sources.pagedate import parse_page_date

PAGES = Path(__file__).parent / "fixtures" / "pages"
FETCHED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
HTML = {"content-type": "text/html; charset=utf-8"}
SENTENCE = "عقدت الكويت والمملكة المتحدة اجتماع مجموعة التوجيه المشتركة في لندن لبحث التعاون في التعليم والصحة. "
BODY = SENTENCE * 3


def page(name: str, headers: dict[str, str] | None = None, **options):
    body = (PAGES / name).read_bytes()
    url = f"https://example.kw/{name}"
    return extract_page(body, headers or {"content-type": "text/html"}, url=url, fetched_at=FETCHED, **options)


def html_page(body: str, head: str = "", lang: str = "ar") -> bytes:
    document = f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">{head}</head><body>{body}</body></html>'
    return document.encode()


def run(body: bytes, headers: dict[str, str] | None = None, **options):
    headers = HTML if headers is None else headers
    return extract_page(body, headers, url="https://example.kw/a", fetched_at=FETCHED, **options)


def assert_none_of(text: str, phrases: list[str]) -> None:
    leaked = [phrase for phrase in phrases if phrase in text]
    assert not leaked, f"boilerplate in text: {leaked}"


# -- the six kinds of page --------------------------------------------------------------------


def test_kuna_like_page_in_windows_1256_inside_an_aspnet_form():
    result = page("kuna.html")
    assert result.error is None
    assert result.method == "trafilatura"
    assert "عقد فريق العمل الاقتصادي والتجاري المنبثق عن الحوار الاستراتيجي" in result.text
    assert "تسهيل إجراءات دخول المنتجات الكويتية" in result.text
    assert "الربع الثالث من العام الحالي" in result.text
    assert_none_of(
        result.text,
        ["سمو ولي العهد يستقبل", "طقس بارد ليلا", "جسرا جديدا", "الأكثر قراءة", "جميع الحقوق محفوظة", "محليات"],
    )
    assert result.title == "الكويت والولايات المتحدة تعقدان اجتماع فريق العمل الاقتصادي"
    assert "\n\n" in result.text  # the <br><br> paragraphs stay paragraphs


def test_alrai_like_page_with_sidebar_related_comments_and_share_bar():
    result = page("alrai.html")
    assert result.error is None and result.method == "trafilatura"
    for phrase in ("اختتمت لجنة التعاون الأمني", "الأمن البحري وحماية المنشآت الحيوية", "مكافحة الجرائم الإلكترونية"):
        assert phrase in result.text
    assert_none_of(
        result.text,
        [
            "مهرجان الربيع", "أسعار الخضار", "معرض الكتاب", "حملة للتطعيم", "الدائري السادس", "نهائي البطولة",
            "أسهم البنوك", "ننتظر نتائج ملموسة", "مركز التدريب المقترح؟", "واتساب", "جميع الحقوق", "مجلس الأمة",
            "إعلان مدفوع", "color: red",
        ],
    )
    assert result.title == "لجنة التعاون الأمني تختتم اجتماعها الرابع في واشنطن"
    assert result.published == datetime(2025, 3, 4, 18, 15, tzinfo=UTC)
    assert result.language == "ar"
    assert result.text.count("\n\n") == 2  # three paragraphs


def test_json_ld_only_page_reads_the_graph_and_skips_the_malformed_block():
    result = page("jsonld_only.html")
    assert result.error is None and result.method == "json-ld"
    assert result.text.startswith("وقعت الكويت والمملكة المتحدة صباح اليوم مذكرة تفاهم")
    assert "برنامج سنوي للمنح الدراسية" in result.text
    assert "مجموعة التوجيه المشتركة التي عقدت دورتها الأخيرة في لندن" in result.text
    assert result.text.count("\n\n") == 2
    assert_none_of(result.text, ["document.cookie", "<p>", "انقطاع الكهرباء", "الأكثر قراءة", "تفعيل جافاسكربت"])
    assert result.title == "الكويت وبريطانيا توقعان مذكرة تفاهم في التعليم العالي"
    assert result.published == datetime(2024, 11, 12, 6, 30, tzinfo=UTC)
    assert result.language == "ar"  # <html lang> comes before JSON-LD inLanguage


def test_login_wall_is_an_error_with_no_text_but_keeps_title_and_date():
    result = page("login_wall.html")
    assert result.text == ""
    assert result.method == "none"
    assert result.error is not None and "login wall" in result.error
    assert result.title == "مباحثات موسعة حول الاستثمارات المشتركة"
    assert result.published == datetime(2025, 5, 20, 5, 0, tzinfo=UTC)


def test_text_selector_takes_the_custom_div_without_its_inline_box_script_or_nested_duplicate():
    result = page("selector.html", text_selector="div.article-body")
    assert result.error is None and result.method == "selector"
    assert "يصل إلى البلاد الأسبوع المقبل وفد تجاري أميركي" in result.text
    assert "جلسة عن فرص الاستثمار" in result.text
    assert "كما يزور الوفد المنطقة الاقتصادية الشمالية." in result.text  # after a <br>
    assert result.text.count("حجم التبادل التجاري") == 1  # a match inside a match: once
    assert_none_of(
        result.text,
        ["حريق محدود", "العام الدراسي", "تخفيضات كبرى", "trackView", "display:none", "التحديات التي تواجه التعليم"],
    )
    assert result.published == datetime(2023, 10, 1, 10, 0, tzinfo=UTC)  # naive: UTC
    assert result.warnings == ()


def test_english_page():
    result = page("english.html")
    assert result.error is None and result.method == "trafilatura"
    assert "Officials from Kuwait and the United Kingdom met on Tuesday" in result.text
    assert "the next session of the Joint Steering Group" in result.text
    assert_none_of(
        result.text,
        ["Camel racing", "Gold prices", "parking rules", "Heatwave", "licence renewals", "fixtures announced",
         "Copyright", "LinkedIn", "Share this"],
    )
    assert result.title == "Kuwait, UK hold talks on cyber security cooperation"
    assert result.language == "en-gb"
    assert result.published == datetime(2024, 6, 18, 14, 5, tzinfo=UTC)


# -- order of the methods -------------------------------------------------------------------


def test_a_selector_that_matches_nothing_falls_through_with_a_warning():
    result = page("alrai.html", text_selector="div.story-text")
    assert result.method == "trafilatura" and result.error is None
    assert result.warnings == ("the text selector 'div.story-text' matched nothing on the page",)


def test_a_selector_miss_on_a_login_wall_is_named_in_the_error():
    result = page("login_wall.html", text_selector="div.story-text")
    assert result.text == "" and "login wall" in result.error and "div.story-text" in result.error


def test_an_invalid_selector_is_a_warning_not_an_exception():
    result = page("english.html", text_selector="div[")
    assert result.method == "trafilatura"
    assert "not a valid CSS selector" in result.warnings[0]


def test_selector_text_too_short_falls_through_to_json_ld():
    body = html_page(
        '<div class="article-body">عنوان قصير</div>',
        head=_ld({"@type": "NewsArticle", "articleBody": SENTENCE * 4}),
    )
    result = run(body, text_selector=".article-body")
    assert result.method == "json-ld"


def test_json_ld_comes_before_the_visible_text():
    visible = f"<article><p>{'نص ظاهر مختلف في الصفحة. ' * 20}</p></article>"
    body = html_page(visible, head=_ld({"@type": "NewsArticle", "articleBody": SENTENCE * 3}))
    result = run(body)
    assert result.method == "json-ld" and "نص ظاهر" not in result.text


def test_a_truncated_json_ld_teaser_loses_to_the_full_visible_text():
    teaser = SENTENCE * 3 + "…"
    visible = "".join(f"<p>{SENTENCE} فقرة رقم {n}.</p>" for n in range(8))
    body = html_page(f"<article>{visible}</article>", head=_ld({"@type": "Article", "articleBody": teaser}))
    result = run(body)
    assert result.method == "trafilatura" and "فقرة رقم 7" in result.text


def _ld(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data, ensure_ascii=False)}</script>'


@pytest.mark.parametrize(
    "data",
    [
        [{"@type": "WebPage"}, {"@type": "ReportageNewsArticle", "articleBody": BODY}],
        {"@graph": [{"@type": "Organization"}, {"@type": "http://schema.org/NewsArticle", "articleBody": BODY}]},
        {"@type": "WebPage", "mainEntity": {"@type": "BlogPosting", "articleBody": BODY}},
    ],
    ids=["top-level list", "graph with a URL type", "nested mainEntity"],
)
def test_json_ld_shapes(data):
    result = run(html_page("", head=_ld(data)))
    assert result.method == "json-ld" and result.text.startswith("عقدت الكويت")


def test_json_ld_body_with_escaped_markup_and_raw_newlines():
    escaped = "&lt;p&gt;" + SENTENCE * 2 + "&lt;/p&gt;&lt;p&gt;" + SENTENCE + "&lt;/p&gt;"
    raw = '<script type="application/ld+json">{"@type": "NewsArticle", "articleBody": "' + escaped + '"}</script>'
    result = run(html_page("", head=raw))
    assert result.method == "json-ld" and result.text.count("\n\n") == 1 and "<p>" not in result.text
    opening = '<script type="application/ld+json">{"@type": "NewsArticle", "articleBody": "'
    newlines = opening + SENTENCE * 2 + "\n" + SENTENCE + '"}</script>'
    assert run(html_page("", head=newlines)).text.count("\n\n") == 1


def test_json_ld_blocks_over_the_bound_and_deeply_nested_ones_are_ignored():
    huge = _ld({"@type": "NewsArticle", "articleBody": SENTENCE * (pagedate.MAX_JSON_LD_CHARS // len(SENTENCE) + 1)})
    deep = '<script type="application/ld+json">' + "[" * 100_000 + "]" * 100_000 + "</script>"
    result = run(html_page("", head=huge + deep))
    assert result.text == "" and result.error == NO_TEXT


# -- not an article page --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"%PDF-1.7\n...", {"content-type": "application/pdf"}, "not an HTML page (application/pdf)"),
        (b"%PDF-1.7\n...", {"content-type": "application/octet-stream"}, "not an HTML page (application/octet-stream)"),
        (b"%PDF-1.7\n...", {}, "not an HTML page (application/pdf)"),
        (b'{"a": 1}', {"content-type": "application/json"}, "not an HTML page (application/json)"),
        (b"   \n", HTML, "empty page (no content in the response)"),
    ],
)
def test_not_an_html_page(body, headers, error):
    result = run(body, headers)
    assert (result.text, result.method, result.error) == ("", "none", error)


def test_html_sent_as_octet_stream_is_still_read():
    body = html_page(f"<article><p>{SENTENCE * 3}</p></article>")
    assert run(body, {"Content-Type": "application/octet-stream"}).method == "trafilatura"


def test_short_text_is_an_error_naming_the_length():
    result = run(html_page("<article><p>خبر قصير جدا.</p></article>"))
    assert result.text == "" and result.error.startswith("only 13 characters of article text found (under 200)")


# -- decoding -------------------------------------------------------------------------------


ARABIC = "الحوار الاستراتيجي بين الكويت والولايات المتحدة"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (f'<meta charset="windows-1256"><p>{ARABIC}</p>'.encode("cp1256"), {}),
        (f"<p>{ARABIC}</p>".encode("cp1256"), {}),  # undeclared: windows-1256 fallback
        (f"<p>{ARABIC}</p>".encode("cp1256"), {"content-type": "text/html; charset=iso-8859-1"}),  # wrong Latin
        (f"<p>{ARABIC}</p>".encode("cp1256"), {"content-type": "text/html; charset=utf-8"}),  # wrong UTF-8
        (f"<p>{ARABIC}</p>".encode(), {"content-type": "text/html; charset=windows-1252"}),  # UTF-8 wins
        (b"\xef\xbb\xbf" + f'<meta charset="windows-1256"><p>{ARABIC}</p>'.encode(), {}),  # BOM wins
        (f"<p>{ARABIC}</p>".encode("utf-16"), {}),
    ],
    ids=["meta 1256", "undeclared 1256", "latin-1 declared", "utf-8 declared", "utf-8 as cp1252", "bom", "utf-16"],
)
def test_decoding_never_garbles_arabic(body, headers):
    assert ARABIC in decode_page(body, headers)


def test_utf8_with_a_few_bad_bytes_stays_utf8():
    body = f"<p>{ARABIC * 5}</p>".encode() + b"\xff" + f"<p>{ARABIC}</p>".encode()
    text = decode_page(body, {})
    assert text.count(ARABIC) == 6 and "\ufffd" in text


def test_french_accents_survive_the_fallback():
    assert "café élevé" in decode_page("<p>café élevé à Koweït</p>".encode("cp1252"), {})


# -- dates, titles, languages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-04T21:15:00+03:00", datetime(2025, 3, 4, 18, 15, tzinfo=UTC)),
        ("2025-03-04T21:15:00+0300", datetime(2025, 3, 4, 18, 15, tzinfo=UTC)),
        ("2025-03-04 21:15:00", datetime(2025, 3, 4, 21, 15, tzinfo=UTC)),
        ("2025-03-04T21:15:00.123456789Z", datetime(2025, 3, 4, 21, 15, 0, 123456, tzinfo=UTC)),
        ("2025/03/04", datetime(2025, 3, 4, tzinfo=UTC)),
        ("٢٠٢٥-٠٣-٠٤T٢١:١٥:٠٠+03:00", datetime(2025, 3, 4, 18, 15, tzinfo=UTC)),
        ("Tue, 04 Mar 2025 21:15:00 +0300", datetime(2025, 3, 4, 18, 15, tzinfo=UTC)),
        ("1994-12-31T23:00:00Z", None),
        ("2026-02-03T00:00:00Z", None),  # more than a day after the fetch
        ("2026-02-02T11:00:00Z", datetime(2026, 2, 2, 11, 0, tzinfo=UTC)),  # within the day
        ("2025-02-30", None),
        ("yesterday", None),
        ("2025-03-04T21:15:00" + "0" * 100, None),
        ("", None),
    ],
)
def test_parse_page_date(value, expected):
    assert parse_page_date(value, FETCHED) == expected


def test_an_implausible_json_ld_date_gives_way_to_the_time_element():
    head = _ld({"@type": "NewsArticle", "datePublished": "0001-01-01T00:00:00", "articleBody": SENTENCE * 3})
    body = html_page('<time datetime="2024-01-02T03:04:05+03:00">٢ يناير</time>', head=head)
    assert run(body).published == datetime(2024, 1, 2, 0, 4, 5, tzinfo=UTC)


def test_no_date_at_all_is_none():
    assert run(html_page(f"<article><p>{SENTENCE * 3}</p></article>")).published is None


@pytest.mark.parametrize(
    ("head", "body", "title"),
    [
        ("<title>خبر الحوار | الأنباء</title><meta property='og:site_name' content='الأنباء'>", "", "خبر الحوار"),
        ("<title>الأنباء - خبر الحوار</title><meta property='og:site_name' content='الأنباء'>", "", "خبر الحوار"),
        ("<title>خبر الحوار - الجولة الثانية</title>", "", "خبر الحوار - الجولة الثانية"),
        ("<title>Site | x</title>", "<h1> عنوان  من\nh1 </h1>", "عنوان من h1"),
        ("", "", None),
    ],
)
def test_titles(head, body, title):
    assert run(html_page(body, head=head)).title == title


@pytest.mark.parametrize(
    ("html_lang", "head", "headers", "language"),
    [
        ("AR", "", HTML, "ar"),
        ("", "<meta property='og:locale' content='ar_KW'>", HTML, "ar-kw"),
        ("", _ld({"@type": "NewsArticle", "inLanguage": "en-US"}), HTML, "en-us"),
        ("", "", {"content-type": "text/html", "content-language": "ar, en"}, "ar"),
        ("not a tag!", "", HTML, None),
    ],
)
def test_languages(html_lang, head, headers, language):
    assert run(html_page("", head=head, lang=html_lang), headers).language == language


# -- hostile pages ----------------------------------------------------------------------------


def test_deep_nesting_is_flattened_and_its_text_kept():
    depth = 30_000
    body = html_page("<div>" * depth + f"<p>{SENTENCE * 3}</p>" + "</div>" * depth)
    result = run(body)
    assert result.error is None and SENTENCE.strip() in result.text


def test_flatten_keeps_the_depth_limit_and_the_content():
    markup = "<div>" * (MAX_DEPTH + 10) + "نص" + "</div>" * (MAX_DEPTH + 10) + "<p>بعد</p>"
    flat = flatten_deep_nesting(markup)
    assert flat.count("<div>") == MAX_DEPTH and flat.count("</div>") == MAX_DEPTH
    assert "نص" in flat and "<p>بعد</p>" in flat
    ordinary = "<p>a<p>b<li>c" * 500
    assert flatten_deep_nesting(ordinary) is ordinary  # unclosed <p>/<li> are no nesting


def test_an_entity_bomb_doctype_is_only_junk():
    doctype = (
        '<!DOCTYPE html [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]>'
    )
    body = f"{doctype}<html><body><article><p>&c;</p><p>{SENTENCE * 3}</p></article></body></html>".encode()
    result = run(body)
    assert result.error is None and "aaaaaaaaaaaaaaaaaaaa" not in result.text


def test_script_never_survives_in_any_path():
    script = "<script>alert('x')</script><style>p{}</style><noscript>enable js</noscript>"
    body = html_page(f'<div class="article-body"><p>{SENTENCE * 3}</p>{script}</div>')
    for selector in (".article-body", None):
        text = run(body, text_selector=selector).text
        assert text and "alert" not in text and "p{}" not in text and "enable js" not in text


def test_the_text_is_capped_at_a_paragraph_boundary():
    body = html_page('<div class="article-body">' + f"<p>{SENTENCE * 10}</p>" * 300 + "</div>")
    text = run(body, text_selector=".article-body").text
    assert MAX_TEXT_CHARS - len(SENTENCE) * 10 - 2 <= len(text) <= MAX_TEXT_CHARS
    assert text.endswith(SENTENCE.strip())


def test_many_nested_matches_are_taken_once():
    body = html_page('<div class="t">' * 100 + "نص " * 100 + "</div>" * 100)
    assert run(body, text_selector="div.t").text.count("نص") == 100


# -- boilerplate judged by structure, not by class names -------------------------------------


LONG_COMMENT = (
    "أتابع هذه الاجتماعات منذ سنوات وأرى أن المشكلة ليست في عدد الجولات ولا في البيانات الختامية بل في غياب "
    "جدول زمني واضح للتنفيذ يعرفه الناس ويحاسبون الحكومة عليه عند كل جولة جديدة"
)
OTHER_HEADLINES = [
    "افتتاح سوق شعبي جديد في المباركية",
    "الدوري الممتاز يستأنف مبارياته الجمعة",
    "هطول أمطار غزيرة على مناطق متفرقة",
]


def classless_page(article: str) -> bytes:
    """A page whose boxes carry no telling class or tag: only headings and links give them away."""
    links = "".join(f'<div><a href="/a/{n}">{h}</a></div>' for n, h in enumerate(OTHER_HEADLINES))
    comments = "".join(f"<div><b>قارئ {n}</b><div>{LONG_COMMENT}</div></div>" for n in range(3))
    return html_page(
        f'<div class="c1">{"".join(f"<a href=/s/{n}>قسم {n}</a> " for n in range(12))}</div>'
        f'<div class="c2">{article}</div>'
        f'<div class="c3"><div class="t">التعليقات (3)</div>{comments}</div>'
        f'<div class="c4"><span>الأكثر قراءة</span>{links}</div>'
    )


def test_long_comments_under_a_comments_heading_stay_out():
    paragraphs = "".join(f"<div>{SENTENCE} الفقرة {n}.</div>" for n in range(4))
    result = run(classless_page(paragraphs))
    assert result.error is None and "الفقرة 3" in result.text
    assert_none_of(result.text, [LONG_COMMENT[:40], "قارئ 1", *OTHER_HEADLINES, "قسم 5"])


def test_a_read_also_list_after_the_paragraphs_does_not_take_the_article_with_it():
    article = (
        "".join(f"<p>{SENTENCE} الفقرة {n}.</p>" for n in range(3))
        + "<h3>اقرأ أيضاً</h3><ul>"
        + "".join(f'<li><a href="/r/{n}">{h}</a></li>' for n, h in enumerate(OTHER_HEADLINES))
        + "</ul><p>وفي ختام الاجتماع اتفق الجانبان على موعد الجولة المقبلة في الكويت.</p>"
    )
    for selector in ("div.c2", None):
        result = run(classless_page(article), text_selector=selector)
        assert "الفقرة 2" in result.text and "موعد الجولة المقبلة" in result.text
        assert_none_of(result.text, ["اقرأ أيضاً", *OTHER_HEADLINES])


def test_the_article_container_stays_whatever_its_class_says():
    short = "التقى الوفدان في مقر الوزارة وناقشا جدول الأعمال المقترح للاجتماع المقبل بحضور عدد من المسؤولين."
    article = f'<div class="story widget social-share-enabled">{"".join(f"<p>{short} {n}</p>" for n in range(5))}</div>'
    page_ = html_page(f'<nav>{"".join(f"<a href=/s/{n}>قسم {n}</a>" for n in range(40))}</nav>{article}')
    result = run(page_)
    assert result.error is None and result.text.count("التقى الوفدان") == 5


# -- any markup ---------------------------------------------------------------------------------

FRAGMENTS = [
    "<div>", "</div>", "<p>", "</p>", "<ul><li>", "</li></ul>", "<a href='/x'>", "</a>", "<script>", "</script>",
    "<aside>", "</aside>", "<h3>الأكثر قراءة</h3>", "<h4>التعليقات</h4>", "<br>",
    "<table><tr><td>", "</td></tr></table>",
    "<b>", "</b>", "<!--", "-->", "&amp;", "&#x0;", "<", ">", "\x00", "\ufeff", SENTENCE, "نص", "<html lang='ar'>",
    '<script type="application/ld+json">{"@type": "NewsArticle", "articleBody": "', '"}</script>', "<time datetime='",
    "2024-01-01T00:00:00+03:00'>", "<meta property='og:title' content='", "<div class='article-body'>",
]


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60), st.sampled_from([None, "div.article-body", "p", "*"]))
@settings(max_examples=300, deadline=None)
def test_any_markup_gives_a_page_or_a_reason_never_an_internal_failure(fragments, selector):
    result = run("".join(fragments).encode("utf-8", "surrogatepass"), text_selector=selector, min_chars=1)
    assert result.error is None or not result.error.startswith("article extraction failed"), result.error
    assert (result.text == "") == (result.error is not None)
    assert "<script" not in result.text and "\x00" not in result.text
    assert result.published is None or result.published.tzinfo is UTC


def test_megabytes_of_scripts_and_styles_before_the_article_do_not_push_it_past_the_cut():
    assets = "<style>" + ".c{margin:0}" * 150_000 + "</style><script>" + "var a=1;" * 250_000 + "</script>"
    body = html_page(assets + f"<article><p>{SENTENCE * 3}</p></article>")
    assert len(body) > 1.5 * extract.MAX_GENERAL_HTML
    result = run(body)
    assert result.method == "trafilatura" and "مجموعة التوجيه" in result.text


@pytest.mark.parametrize("selector", [None, "div.txt"])
def test_an_inline_read_also_headline_is_not_article_text(selector: str | None) -> None:
    """Dailies insert «اقرأ أيضاً: <a>another story</a>» between the lines of an article,
    sometimes with no paragraph of its own: that other story's headline must not be
    classified as this article's text."""
    para = "وقال المسؤول في تصريح صحافي إن الاجتماع تناول عددا من الملفات المهمة بين البلدين الصديقين " * 2
    other = "الحوار الاستراتيجي الكويتي الأمريكي يبحث التعاون الدفاعي"
    html = (
        '<html lang="ar"><body><nav><a href="/">الرئيسية</a></nav><div class="txt">'
        f"{para}<br><br>{para}<br><br><strong>اقرأ أيضاً:</strong> <a href=\"/o/1\">{other}</a><br><br>{para}"
        "</div><footer>الحقوق محفوظة</footer></body></html>"
    ).encode()
    page = extract_page(html, {"content-type": "text/html; charset=utf-8"}, url="https://x.example/a/1",
                        fetched_at=datetime(2026, 11, 26, tzinfo=UTC), text_selector=selector)
    assert page.error is None and "تصريح صحافي" in page.text
    assert other not in page.text and "اقرأ أيضاً" not in page.text
