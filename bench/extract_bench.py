"""Article-text extraction on synthetic news pages: words recovered, boilerplate leaked, speed.

Each article of the corpus (read at run time, never copied) becomes one page per site
template and per method, wrapped in the boilerplate a Kuwaiti daily's page carries: a
navigation bar of 20 links, a "most read" box of 10 other articles' headlines (the leak that
matters: another story's keywords in this article's text), a related-articles list, share
buttons, reader comments and a footer. Templates:

    kuna       table-era layout, text in a span with <br><br> between paragraphs
    alrai      <article> with a div of <p>, sidebar boxes with class names
    wordpress  div.entry-content, Jetpack-style related posts, a comment list
    divsoup    no semantic tags nor telling class names: only headings and link density

Methods (what extract_page is given, and which path must answer):

    selector     the text sits in div.article-body and the feed's text selector names it
    json-ld      the visible HTML has no article text; NewsArticle.articleBody in JSON-LD
    trafilatura  no selector, no articleBody: the general extractor

Per method: median share of the article's words recovered (multiset recall on the body's
words), share of pages where any boilerplate (a most-read or related headline, a comment,
the footer) appears in the text, how many pages another path answered, and pages/s on one
core (CPU time of extract_page alone). A last row runs trafilatura alone on the same pages
as the trafilatura row (same options, no pruning of boilerplate first), the peer.

`--hostile` times instead one extract_page call (CPU seconds) on pages of `--size` bytes
built to be slow: deep nesting of each kind the HTML parser handles in time quadratic in
depth, one huge list of links, JSON-LD nested a million deep, thousands of selector matches.

    .venv/bin/python bench/extract_bench.py [--corpus ../shared/corpus/dev.jsonl] [--repeat 1]
    .venv/bin/python bench/extract_bench.py --hostile [--size 10m]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import trafilatura  # noqa: E402

from monitor.sources.extract import extract_page  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)
METHODS = ("selector", "json-ld", "trafilatura")
NAV = [
    "الرئيسية", "محليات", "برلمان", "اقتصاد", "دوليات", "رياضة", "ثقافة", "منوعات", "مقالات",
    "كاريكاتير", "فيديو", "صور", "الطقس", "وفيات", "إعلانات", "أرشيف", "اتصل بنا", "من نحن",
    "الصفحات الكاملة", "تطبيقات",
]
COMMENTS = [
    ("أبو فهد", "خطوة ممتازة ونتمنى أن تنعكس على المواطن مباشرة"),
    ("Salem", "متى تنشر نتائج الاجتماعات السابقة؟ لا أحد يتابع التنفيذ"),
    ("نورة", "شكرا على التغطية، ننتظر التفاصيل الكاملة"),
    (
        "مواطن",
        "أتابع هذه الاجتماعات منذ سنوات وأرى أن المشكلة ليست في عدد الجولات ولا في البيانات الختامية بل في غياب "
        "جدول زمني واضح للتنفيذ يعرفه الناس ويحاسبون الحكومة عليه عند كل جولة جديدة من هذه المباحثات",
    ),
    (
        "Hamad",
        "الأجدر أن تنشر الوزارة تقريرا سنويا مفصلا عن كل مجموعة عمل وما أنجزته فعلا على أرض الواقع، "
        "فالمواطن يسمع عن مذكرات التفاهم ولا يرى أثرها في التعليم أو الصحة أو فرص العمل للشباب",
    ),
]
FOOTER = "جميع الحقوق محفوظة لصحيفة الراصد الكويتية 2026 - سياسة الخصوصية - شروط الاستخدام"


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str
    published: str


@dataclass(frozen=True)
class Page:
    article: Article
    template: str
    method: str
    html: bytes
    selector: str | None
    leaks: tuple[str, ...]  # boilerplate strings that must not be in the text


def load(corpus: Path) -> list[Article]:
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Article(r["id"], r["title"], r["body"], r["published"]) for r in rows]


def others(articles: list[Article], index: int, count: int, offset: int) -> list[str]:
    """Headlines of `count` other articles, the same for one article across templates."""
    picked = []
    step = 1 + offset
    position = index
    while len(picked) < count:
        position = (position + step) % len(articles)
        if position != index and articles[position].title not in picked:
            picked.append(articles[position].title)
        step += 1
    return picked


def paragraphs(body: str) -> list[str]:
    return [p.strip() for p in body.split("\n\n") if p.strip()]


def e(text: str) -> str:
    """Text as a page's markup holds it: the corpus keeps some entities as noise ("&nbsp;"),
    which a page would carry as entities, so they are decoded first and escaped again."""
    return html.escape(html.unescape(text), quote=True)


def json_ld(article: Article, with_body: bool) -> str:
    data: dict[str, object] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published,
        "inLanguage": "ar",
        "publisher": {"@type": "Organization", "name": "الراصد"},
    }
    if with_body:
        data["articleBody"] = "".join(f"<p>{e(p)}</p>" for p in paragraphs(article.body))
    text = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/ld+json">{text}</script>'


def _assets() -> str:
    """What a daily's page carries besides its text (~30 KB of styles and ad scripts), so
    that pages/s is that of real pages, not of 8 KB toys."""
    rules = "".join(f".c{k}{{margin:{k % 7}px;padding:{k % 5}px;color:#{k * 4111 % 0xFFFFFF:06x}}}" for k in range(300))
    slots = "".join(
        f"googletag.cmd.push(function(){{googletag.defineSlot('/1234/ar/local/{k}',[[300,250]],'ad-{k}')"
        ".addService(googletag.pubads());});"
        for k in range(150)
    )
    return f"<style>{rules}</style><script>{slots}</script>"


ASSETS = _assets()


def head(article: Article, method: str) -> str:
    return (
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{e(article.title)} | الراصد</title>"
        f'<meta property="og:title" content="{e(article.title)}">'
        '<meta property="og:site_name" content="الراصد">'
        f'<meta property="article:published_time" content="{article.published}">'
        '<link rel="stylesheet" href="/s.css"><script>window.dataLayer=[{"section":"local"}];</script>'
        f"{ASSETS}"
        f"{json_ld(article, method == 'json-ld')}</head>"
    )


def nav_html(kind: str) -> str:
    links = "".join(f'<li><a href="/section/{i}">{e(name)}</a></li>' for i, name in enumerate(NAV))
    if kind == "divsoup":
        return '<div class="c-top">' + "".join(f'<a href="/s/{i}">{e(n)}</a> ' for i, n in enumerate(NAV)) + "</div>"
    return f'<nav class="main-menu"><ul>{links}</ul></nav>'


def most_read_html(kind: str, headlines: list[str]) -> str:
    items = "".join(f'<li><a href="/article/{900 + i}">{e(h)}</a></li>' for i, h in enumerate(headlines))
    if kind == "kuna":
        return f'<div class="col-md-4"><h3>الأكثر قراءة</h3><ul>{items}</ul></div>'
    if kind == "divsoup":
        rows = "".join(
            f'<div class="r{i % 3}"><span>{i + 1}</span><a href="/a/{900 + i}">{e(h)}</a></div>'
            for i, h in enumerate(headlines)
        )
        return f'<div class="w-4"><div class="t2">الأكثر قراءة</div>{rows}</div>'
    box = f'<section class="box most-read"><h2>الأكثر قراءة</h2><ol>{items}</ol></section>'
    return f'<aside class="sidebar">{box}</aside>'


def related_html(kind: str, headlines: list[str]) -> str:
    if kind == "wordpress":
        cells = "".join(
            f'<div class="jp-relatedposts-post"><a href="/p/{i}">{e(h)}</a></div>' for i, h in enumerate(headlines)
        )
        return f'<div id="jp-relatedposts" class="jp-relatedposts"><h3>مقالات ذات صلة</h3>{cells}</div>'
    if kind == "divsoup":
        cells = "".join(f'<div><a href="/a/{800 + i}">{e(h)}</a></div>' for i, h in enumerate(headlines))
        return f'<div class="b9"><div class="t2">اقرأ أيضاً</div>{cells}</div>'
    items = "".join(f'<li><a href="/article/{800 + i}">{e(h)}</a></li>' for i, h in enumerate(headlines))
    return f'<div class="related-news"><h4>أخبار ذات صلة</h4><ul>{items}</ul></div>'


def share_html() -> str:
    return (
        '<div class="share"><a href="https://twitter.com/share">تويتر</a>'
        ' <a href="https://facebook.com/share">فيسبوك</a>'
        ' <a href="https://wa.me/?text=x">واتساب</a> <button>نسخ الرابط</button></div>'
    )


def comments_html(kind: str) -> str:
    items = "".join(f"<li><b>{e(name)}</b><p>{e(text)}</p></li>" for name, text in COMMENTS)
    if kind == "divsoup":
        return '<div class="x7"><div class="t2">التعليقات (3)</div>' + "".join(
            f"<div><b>{e(n)}</b><div>{e(t)}</div></div>" for n, t in COMMENTS
        ) + "</div>"
    return f'<div id="comments" class="comments-area"><h3>التعليقات (3)</h3><ol class="commentlist">{items}</ol></div>'


def body_html(article: Article, template: str, method: str) -> str:
    """The article's own part: its text in the template's markup, or only a teaser shell for
    the JSON-LD-only pages (the text is rendered by a script from the JSON-LD)."""
    paras = paragraphs(article.body)
    if method == "json-ld":
        return '<div id="app-article" data-id="1"></div><noscript>يرجى تفعيل جافاسكربت</noscript>'
    if method == "selector":
        return '<div class="article-body">' + "".join(f"<p>{e(p)}</p>" for p in paras) + "</div>"
    if template == "kuna":
        inner = "<br><br>".join(e(p) for p in paras)
        return f'<span id="ctl00_ContentPlaceHolder1_lblBody" class="ArticleBody">{inner}</span>'
    if template == "divsoup":
        return '<div class="c9">' + "".join(f"<div>{e(p)}</div>" for p in paras) + "</div>"
    klass = "entry-content" if template == "wordpress" else "article-desc"
    return f'<div class="{klass}">' + "".join(f"<p>{e(p)}</p>" for p in paras) + "</div>"


def page(articles: list[Article], index: int, template: str, method: str) -> Page:
    article = articles[index]
    most_read = others(articles, index, 10, 0)
    related = others(articles, index, 4, 7)
    date = article.published[:10]
    core = body_html(article, template, method)
    if template == "kuna":
        main = (
            f'<table width="100%"><tr><td class="ArticleTitle"><h1>{e(article.title)}</h1></td></tr>'
            f'<tr><td class="date">{date}</td></tr><tr><td>{core}</td></tr></table>'
        )
    elif template == "divsoup":
        main = f'<div class="c8"><div class="h">{e(article.title)}</div><div class="d">{date}</div>{core}</div>'
    else:
        main = (
            f'<article><header><h1>{e(article.title)}</h1><time datetime="{article.published}">{date}</time></header>'
            f"{share_html()}{core}</article>"
        )
    body = (
        '<body class="single-post comments-open">'
        '<header class="site-header"><a href="/" class="logo">الراصد</a></header>'
        f"{nav_html(template)}<div class=\"container\"><div class=\"row\"><div class=\"col-main\">{main}"
        f"{related_html(template, related)}{comments_html(template)}</div>"
        f"{most_read_html(template, most_read)}</div></div>"
        f'<footer class="site-footer"><p>{e(FOOTER)}</p></footer></body>'
    )
    document = f'<!DOCTYPE html><html lang="ar" dir="rtl">{head(article, method)}{body}</html>'
    leaks = tuple(most_read + related + [text for _, text in COMMENTS] + [FOOTER])
    selector = "div.article-body" if method == "selector" else None
    return Page(article, template, method, document.encode("utf-8"), selector, leaks)


_WORD = re.compile(r"\w+")


def words(text: str) -> Counter[str]:
    return Counter(_WORD.findall(text))


def recall(expected: str, got: str) -> float:
    want = words(expected)
    have = words(got)
    total = sum(want.values())
    return sum(min(count, have[word]) for word, count in want.items()) / total if total else 1.0


def leaked(page_: Page, text: str) -> bool:
    flat = " ".join(text.split())
    return any(" ".join(leak.split()) in flat for leak in page_.leaks)


def measure(pages: list[Page], repeat: int, run: Callable[[Page], object]) -> float:
    start = time.process_time()
    for _ in range(repeat):
        for item in pages:
            run(item)
    return time.process_time() - start


def trafilatura_alone(pages: list[Page]) -> None:
    def run(item: Page) -> str:
        markup = item.html.decode("utf-8")
        return trafilatura.extract(markup, include_comments=False, include_tables=False, fast=True) or ""

    texts = [run(item) for item in pages]
    recalls = [recall(html.unescape(p.article.body), text) for p, text in zip(pages, texts, strict=True)]
    leaks = [p for p, text in zip(pages, texts, strict=True) if leaked(p, text)]
    rate = len(pages) / measure(pages, 1, run)
    print(
        f"{'alone (peer)':<12} {len(pages):>5} {statistics.median(recalls):>10.3f} {min(recalls):>10.3f}"
        f" {100 * len(leaks) / len(pages):>6.1f}% {'':>10} {rate:>8.0f}"
    )
    print(f"{'':<12} leaks by template: {dict(Counter(p.template for p in leaks))}")


def hostile_pages(size: int) -> dict[str, tuple[bytes, str | None]]:
    sentence = "<p>" + "عقدت الكويت والولايات المتحدة الجولة الخامسة من الحوار الاستراتيجي في واشنطن " * 5 + "</p>"
    link = '<li><a href="/a/1">عنوان خبر آخر من الأكثر قراءة</a></li>'
    match = '<div class="article-body"><div class="article-body">نص</div></div>'
    units = {
        "nested <div>": ("<div>", None),
        "nested <b><div>": ("<b><div>", None),
        "nested <li><ul>": ("<li><ul>", None),
        "nested <table><tr><td>": ("<table><tr><td>", None),
        "misnested <b><i><u><s>x</b>": ("<b><i><u><s>x</b>", None),
        "paragraphs": (sentence, None),
        "one list of links": (link, None),
        "unclosed '<a href'": ('<a href="x" ', None),
        "selector matches": (match, "div.article-body"),
    }
    pages = {
        name: ((unit * (size // len(unit.encode()) + 1)).encode()[:size], selector)
        for name, (unit, selector) in units.items()
    }
    depth = size // 2 - 50
    pages["JSON-LD nested"] = (
        ('<script type="application/ld+json">' + "[" * depth + "]" * depth + "</script>").encode(),
        None,
    )
    return pages


def hostile(size: int) -> None:
    print(f"one extract_page call per page of {size / 1e6:.1f} MB, CPU seconds")
    for name, (body, selector) in hostile_pages(size).items():
        start = time.process_time()
        result = extract_page(
            body, {"content-type": "text/html"}, url="https://example.kw/a", fetched_at=FETCHED_AT,
            text_selector=selector,
        )
        seconds = time.process_time() - start
        print(f"  {name:<30} {seconds:>6.2f} s  {result.method:<11} {len(result.text):>7} chars")


def parse_size(value: str) -> int:
    units = {"k": 1_000, "m": 1_000_000}
    return int(float(value[:-1]) * units[value[-1]]) if value[-1] in units else int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=1, help="timing passes over the pages")
    parser.add_argument("--hostile", action="store_true", help="time hostile pages instead")
    parser.add_argument("--size", type=parse_size, default=10_000_000, help="bytes of each hostile page")
    args = parser.parse_args()
    if args.hostile:
        hostile(args.size)
        return
    articles = load(args.corpus)
    templates = ("kuna", "alrai", "wordpress", "divsoup")
    print(f"{len(articles)} articles from {args.corpus.name}, templates: {', '.join(templates)}")
    print(
        f"{'method':<12} {'pages':>5} {'recall med':>10} {'recall min':>10} {'leak %':>7} {'wrong path':>10}"
        f" {'pages/s':>8}"
    )
    for method in METHODS:
        pages = [page(articles, i, t, method) for t in templates for i in range(len(articles))]

        def run(item: Page) -> object:
            return extract_page(
                item.html, {"content-type": "text/html; charset=utf-8"}, url="https://example.kw/a",
                fetched_at=FETCHED_AT, text_selector=item.selector,
            )

        results = [run(item) for item in pages]
        recalls = [recall(html.unescape(p.article.body), r.text) for p, r in zip(pages, results, strict=True)]
        leaks = [p for p, r in zip(pages, results, strict=True) if leaked(p, r.text)]
        wrong = sum(1 for r in results if r.method != method)
        seconds = measure(pages, args.repeat, run)
        rate = len(pages) * args.repeat / seconds if seconds else float("inf")
        print(
            f"{method:<12} {len(pages):>5} {statistics.median(recalls):>10.3f} {min(recalls):>10.3f}"
            f" {100 * len(leaks) / len(pages):>6.1f}% {wrong:>10} {rate:>8.0f}"
        )
        by_template = Counter(p.template for p in leaks)
        if by_template:
            print(f"{'':<12} leaks by template: {dict(by_template)}")
        low = Counter(p.template for p, value in zip(pages, recalls, strict=True) if value < 0.95)
        if low:
            print(f"{'':<12} pages under 0.95 recall by template: {dict(low)}")
        if method == "trafilatura":
            peer_pages = pages
    trafilatura_alone(peer_pages)


if __name__ == "__main__":
    main()
