"""A loopback farm of news sites without usable feeds, labelled from the dev corpus (issue #9).

    .venv/bin/python bench/sitefarm.py serve [--sites 100] [--articles 50] [--manifest farm.json]
    .venv/bin/python bench/sitefarm.py check [--sites 10] [--articles 20]

Each site is one ThreadingHTTPServer on its own 127.0.0.1 port (a host of its own for robots.txt
and per-host limits) and is one of five kinds, the shapes issue #9 must read:

- `sitemap`: /sitemap.xml is an index of a Google News sitemap (news:title, publication date)
  and a plain urlset that also lists section pages (the feed's `include` keeps them out);
- `html`: a listing page /section/local whose article links are `.news-list .item a`, with a
  "most read" box, navigation and footer links that must not become entries;
- `title-rss`: RSS items with a title and a link only (Google News style);
- `sentence-rss`: RSS items with a title and the first sentence;
- `jsonld`: a listing or a sitemap whose article pages carry their text only in JSON-LD
  `articleBody` (the visible HTML has none, as on several Kuwaiti dailies).

Every one of the 68 corpus articles appears once on a site of every kind, so each kind is judged
on the whole corpus; the other slots are irrelevant Arabic filler built from sentences of the
corpus's irrelevant articles (sentences naming a dialogue are left out, so filler can never be
relevant). Article pages carry realistic boilerplate, and their «الأكثر قراءة» box holds ten
other corpus headlines, relevant ones among them: an extractor that keeps the box leaks those
headlines into an article's text, which the evaluation counts. Half the sites disallow
/private/ in robots.txt and keep one (filler) article there; a tenth have no robots.txt.

Sitemaps, listing pages and feeds answer conditional requests (ETag, Last-Modified, 304);
every other site gzips when asked. Every request is recorded (site, path, status, time,
User-Agent) so that the evaluation can count page fetches. The corpus is read at run time
and never written into the repository.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import random
import re
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from xml.sax.saxutils import escape as xml_escape

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"

KINDS = ("sitemap", "html", "title-rss", "sentence-rss", "jsonld")
LISTING_PATH = "/section/local"
LINKS_SELECTOR = ".news-list .item a"
LAYOUTS = ("article-body", "entry-content", "story-text", "plain-br")
TEXT_SELECTORS = {
    "article-body": "div.article-body", "entry-content": "div.entry-content", "story-text": "section.story-text",
    "plain-br": "div.txt",
}
SECTIONS = (
    "local", "politics", "economy", "gulf", "arab", "world", "sport", "culture", "health", "tech",
    "opinion", "editorial", "parliament", "courts", "oil", "banks", "stocks", "education", "video", "photos",
)
# Words of a filler sentence that could make it about a dialogue: such sentences are dropped.
DIALOGUE_WORDS = re.compile(r"حوار|توجيه|تسيير|تسييرية|dialogue|steering|jsg", re.IGNORECASE)


@dataclass(frozen=True)
class FarmArticle:
    """One article page of the farm; `corpus_id` is None for filler (labelled irrelevant)."""

    site: int
    path: str
    title: str
    body: str
    published: datetime
    relevant: bool
    corpus_id: str | None = None
    dialogue: str | None = None
    event_id: str | None = None
    private: bool = False
    most_read: tuple[str, ...] = ()  # the headlines of the box on its page


@dataclass(frozen=True)
class Site:
    index: int
    kind: str
    layout: str
    disallow_private: bool
    has_robots: bool
    discovery: str  # how the monitor finds the articles: "sitemap", "html" or "rss"
    text_selector: str | None  # what the feed config sets as `text`, if anything
    articles: tuple[FarmArticle, ...]

    @property
    def feed_id(self) -> str:
        return f"site{self.index:03d}-{self.kind}"

    @property
    def entry_path(self) -> str:
        return {"sitemap": "/sitemap.xml", "html": LISTING_PATH, "rss": "/rss.xml"}[self.discovery]


@dataclass(frozen=True)
class Farm:
    sites: tuple[Site, ...]
    generated_at: datetime

    def articles(self) -> Iterable[FarmArticle]:
        for site in self.sites:
            yield from site.articles


# -- generation (pure) -------------------------------------------------------------------


def read_corpus(path: Path = CORPUS) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!؟?])\s+|\n+", text)
    return [p.strip() for p in parts if len(p.split()) >= 5]


def first_sentence(text: str) -> str:
    sentences = split_sentences(text)
    return sentences[0] if sentences else text.strip()


def filler_sentences(corpus: list[dict]) -> list[str]:
    """Sentences of the irrelevant articles that name no dialogue: filler can never be relevant."""
    return [s for a in corpus if not a["relevant"] for s in split_sentences(a["body"]) if not DIALOGUE_WORDS.search(s)]


def make_filler(rng: random.Random, pool: list[str]) -> tuple[str, str]:
    title = " ".join(rng.choice(pool).split()[: rng.randint(6, 11)]).rstrip(".،,")
    sentences = rng.sample(pool, rng.randint(5, 12))
    paragraphs = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    return title, "\n\n".join(paragraphs)


def box_headlines(corpus: list[dict], rng: random.Random, exclude_event: str | None) -> tuple[str, ...]:
    """Ten «most read» headlines, four of them relevant, a relevant one first (pages that
    quote one inside the text, «اقرأ أيضاً», quote that one): the leak test."""
    candidates = [a for a in corpus if a["id"].startswith("d") and a["event_id"] != exclude_event]
    relevant = rng.sample([a for a in candidates if a["relevant"]], 4)
    rest = relevant[1:] + rng.sample([a for a in candidates if not a["relevant"]], 6)
    rng.shuffle(rest)
    return tuple(a["title"] for a in [relevant[0], *rest])


def site_shape(index: int) -> tuple[str, str, str | None]:
    """(kind, discovery, text selector) of site `index`; kinds rotate so every size has each."""
    kind = KINDS[index % len(KINDS)]
    layout = LAYOUTS[(index // len(KINDS)) % len(LAYOUTS)]
    if kind == "sitemap":
        return kind, "sitemap", None
    if kind == "html":  # every other listing site names its text selector, the rest rely on extraction
        return kind, "html", TEXT_SELECTORS[layout] if (index // len(KINDS)) % 2 == 0 else None
    if kind == "jsonld":
        return kind, "sitemap" if (index // len(KINDS)) % 2 else "html", None
    return kind, "rss", None


def build_farm(corpus: list[dict], sites: int, articles: int, seed: int = 9, now: datetime | None = None) -> Farm:
    """Place every corpus article once on a site of each kind; fill the other slots."""
    if articles < 3:
        raise ValueError("at least 3 articles per site")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    pool = filler_sentences(corpus)
    by_kind: dict[str, list[int]] = {kind: [i for i in range(sites) if KINDS[i % len(KINDS)] == kind] for kind in KINDS}
    placed: dict[int, list[dict]] = {i: [] for i in range(sites)}
    for kind, indices in by_kind.items():
        if not indices:
            continue
        capacity = len(indices) * (articles - 1)
        if capacity < len(corpus):
            print(f"sitefarm: {kind}: {capacity} slots for {len(corpus)} corpus articles; the rest left out", file=sys.stderr)
        for n, article in enumerate(corpus[:capacity]):
            placed[indices[n % len(indices)]].append(article)
    built = []
    for index in range(sites):
        kind, discovery, selector = site_shape(index)
        disallow = (index // len(KINDS)) % 2 == 0
        items: list[FarmArticle] = []
        slots = list(placed[index])
        while len(slots) < articles:
            slots.append({})
        rng.shuffle(slots)
        for n, source in enumerate(slots):
            published = now - timedelta(minutes=37 * n + index)
            private = disallow and not source and not any(a.private for a in items)
            path = f"/private/{n}.html" if private else f"/news/{index}-{n}.html"
            common = {"site": index, "path": path, "published": published, "private": private}
            if source:
                items.append(FarmArticle(
                    **common, title=source["title"], body=source["body"], relevant=bool(source["relevant"]),
                    corpus_id=source["id"], dialogue=source.get("dialogue"), event_id=source["event_id"],
                    most_read=box_headlines(corpus, rng, source["event_id"]),
                ))
            else:
                title, body = make_filler(rng, pool)
                items.append(FarmArticle(**common, title=title, body=body, relevant=False, most_read=box_headlines(corpus, rng, None)))
        built.append(Site(
            index=index, kind=kind, layout=LAYOUTS[(index // len(KINDS)) % len(LAYOUTS)], disallow_private=disallow,
            has_robots=index % 10 != 9, discovery=discovery, text_selector=selector, articles=tuple(items),
        ))
    return Farm(sites=tuple(built), generated_at=now)


# -- rendering (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str
    conditional: bool = False  # sitemaps, listing pages and feeds: ETag and Last-Modified
    last_modified: str = ""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def _assets() -> str:
    """What a real page carries before any text: styles, analytics and ad scripts (~25 KB),
    so that fetch sizes and extraction speed are those of real pages, not of toy ones."""
    rules = "".join(
        f".c{k}{{margin:{k % 7}px;padding:{k % 5}px;color:#{k * 4111 % 0xFFFFFF:06x};font:{12 + k % 6}px/1.5 Tahoma,sans-serif}}"
        for k in range(120)
    )
    script = "".join(
        f"window.dataLayer=window.dataLayer||[];dataLayer.push({{'event':'slot{k}','section':'local','ts':{k * 977}}});"
        f"googletag.cmd.push(function(){{googletag.defineSlot('/1234/ar/local/{k}',[[300,250],[728,90]],'ad-{k}').addService(googletag.pubads());}});"
        for k in range(60)
    )
    return f"<style>{rules}</style><script>{script}</script><script async src=\"/static/app.js\"></script>"


ASSETS = _assets()


def nav() -> str:
    """The header: 20 sections, each with a sub-menu (a mega-menu of 120 links, as dailies have)."""
    links = "".join(
        f'<li><a href="/section/{s}">{s}</a><ul class="sub">'
        + "".join(f'<li><a href="/section/{s}/{k}">{s} {k}</a></li>' for k in range(5))
        + "</ul></li>"
        for s in SECTIONS
    )
    return (
        f'<header class="site-header"><a class="logo" href="/">الجريدة</a><nav class="main-nav"><ul>{links}</ul></nav>'
        '<div class="ticker"><span>عاجل</span> <a href="/section/local">تابعوا آخر الأخبار المحلية لحظة بلحظة</a></div>'
        '<div class="ad-slot" id="ad-top" data-size="728x90">إعلان</div></header>'
    )


def most_read_box(site: Site, headlines: tuple[str, ...]) -> str:
    """Links of the box go to an archive: an extractor or a link finder that follows them is wrong.
    The plain layout's box has no telling class or element, only its heading."""
    items = "".join(
        f'<li><a href="/archive/{site.index}-{k}.html">{esc(h)}</a></li>' for k, h in enumerate(headlines)
    )
    if site.layout == "plain-br":
        return f'<div class="box-3"><div class="ttl">الأكثر قراءة</div><ul>{items}</ul></div>'
    return f'<aside class="most-read"><h3>الأكثر قراءة</h3><ol>{items}</ol></aside>'


def related(site: Site, article: FarmArticle) -> str:
    """«Related» teasers: other articles of the site, linked like entries but not entries of this page."""
    others = [a for a in site.articles if a.path != article.path][:6]
    items = "".join(f'<li><a href="{a.path}">{esc(a.title)}</a></li>' for a in others)
    return f'<section class="related"><h4>مواضيع ذات صلة</h4><ul>{items}</ul></section>'


def footer() -> str:
    return (
        '<div class="share"><a href="#">تويتر</a> <a href="#">فيسبوك</a> <a href="#">واتساب</a> <a href="#">نسخ الرابط</a></div>'
        '<footer class="site-footer"><p>جميع الحقوق محفوظة © 2026</p>'
        '<a href="/about">من نحن</a> <a href="/contact">اتصل بنا</a> <a href="/privacy">سياسة الخصوصية</a></footer>'
    )


COMMENTS = (
    "مقال رائع، شكرا للكاتب على هذا الطرح", "نتمنى أن تتحول هذه الوعود إلى أفعال على أرض الواقع",
    "أين المتابعة؟ سمعنا هذا الكلام من قبل", "خبر مهم ويستحق المتابعة من الجميع",
    "كل التوفيق للقائمين على هذا العمل", "الله يحفظ الديرة وأهلها", "تغطية ممتازة كالعادة",
    "ننتظر التفاصيل في الأيام المقبلة",
)


def comments(rng: random.Random) -> str:
    """Reader comments: text of their own, so that a comment leaking into an article shows."""
    items = "".join(
        f'<li class="comment"><b>زائر {k}</b><p>{esc(rng.choice(COMMENTS))}</p></li>' for k in range(rng.randint(1, 3))
    )
    return f'<section class="comments"><h4>التعليقات</h4><ol>{items}</ol><form><textarea name="c"></textarea><button>أرسل</button></form></section>'


def text_block(site: Site, article: FarmArticle) -> str:
    """The article's text in the site's layout. Where no `text` selector is configured, the
    text quotes a «most read» headline after its second paragraph («اقرأ أيضاً», as dailies
    do): an extractor must drop that link line."""
    lines = [f"<p>{esc(p.strip())}</p>" for p in article.body.split("\n") if p.strip()]
    if site.text_selector is None and len(lines) >= 3 and site.layout != "story-text":
        quote = f'<p><strong>اقرأ أيضاً:</strong> <a href="/archive/{site.index}-0.html">{esc(article.most_read[0])}</a></p>'
        lines.insert(2, quote)
    paragraphs = "".join(lines)
    if site.kind == "jsonld":
        return '<div class="article-body" id="app"><noscript>فعّل جافاسكربت لقراءة الخبر</noscript></div>'
    if site.layout == "plain-br":
        return f'<div class="content-area"><div class="txt">{paragraphs.replace("<p>", "").replace("</p>", "<br><br>")}</div></div>'
    if site.layout == "entry-content":
        return f'<article class="post"><div class="entry-content">{paragraphs}</div></article>'
    if site.layout == "story-text":
        return f'<div id="story"><section class="story-text">{paragraphs}</section></div>'
    return f'<div class="article-body">{paragraphs}</div>'


def json_ld(article: FarmArticle, url: str, with_body: bool) -> str:
    data = {
        "@context": "https://schema.org", "@type": "NewsArticle", "headline": article.title,
        "datePublished": article.published.isoformat(), "mainEntityOfPage": url,
        "publisher": {"@type": "Organization", "name": "الجريدة"},
    }
    if with_body:
        data["articleBody"] = article.body
    text = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/ld+json">{text}</script>'


def article_page(site: Site, article: FarmArticle, base: str, rng: random.Random) -> Page:
    url = base + article.path
    when = article.published.isoformat()
    html_text = (
        f'<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{esc(article.title)} | الجريدة</title>'
        f'<meta property="og:title" content="{esc(article.title)}"><meta property="article:published_time" content="{when}">'
        f'<link rel="canonical" href="{url}">{json_ld(article, url, site.kind == "jsonld")}{ASSETS}</head><body>{nav()}'
        f'<main><div class="breadcrumb"><a href="/">الرئيسية</a> › <a href="/section/local">محليات</a></div>'
        f'<h1 class="headline">{esc(article.title)}</h1><time datetime="{when}">{article.published:%Y-%m-%d %H:%M}</time>'
    )
    box = most_read_box(site, article.most_read)
    if site.layout == "story-text":  # the box inside the story's own wrapper: the harder case
        html_text += f'<div class="story-wrap">{text_block(site, article)}{box}</div>'
    else:
        html_text += f"{text_block(site, article)}{box}"
    html_text += (
        f'<div class="ad-slot" data-size="300x250">إعلان</div>{related(site, article)}{comments(rng)}</main>{footer()}'
        '<script>window.__INITIAL_STATE__={"user":null,"consent":false};</script></body></html>'
    )
    return Page(html_text.encode("utf-8"), "text/html; charset=utf-8")


def listing_page(site: Site, box: tuple[str, ...]) -> Page:
    items = "".join(
        f'<div class="item"><a href="{a.path}">{esc(a.title)}</a><span class="date">{a.published:%Y-%m-%d %H:%M}</span></div>'
        for a in site.articles
    )
    text = (
        f'<!doctype html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>محليات | الجريدة</title></head>'
        f'<body>{nav()}<main><h1>محليات</h1><div class="news-list">{items}</div>'
        f'<div class="pager"><a href="{LISTING_PATH}?page=2">التالي</a></div>{most_read_box(site, box)}</main>{footer()}</body></html>'
    )
    return Page(text.encode("utf-8"), "text/html; charset=utf-8", conditional=True)


def rss_feed(site: Site, base: str) -> Page:
    def item(a: FarmArticle) -> str:
        description = f"<description>{xml_escape(first_sentence(a.body))}</description>" if site.kind == "sentence-rss" else ""
        return (
            f"<item><title>{xml_escape(a.title)}</title><link>{base}{a.path}</link><guid>{base}{a.path}</guid>"
            f"<pubDate>{format_datetime(a.published)}</pubDate>{description}</item>"
        )

    text = (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>site {site.index}</title>'
        f"<link>{base}/</link><description>أخبار</description>{''.join(item(a) for a in site.articles)}</channel></rss>"
    )
    return Page(text.encode("utf-8"), "application/rss+xml; charset=utf-8", conditional=True)


def sitemap_pages(site: Site, base: str, generated: datetime) -> dict[str, Page]:
    xml = "application/xml; charset=utf-8"
    head = '<?xml version="1.0" encoding="UTF-8"?>'
    index = (
        f'{head}<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{base}/sitemap-news.xml</loc><lastmod>{generated.isoformat()}</lastmod></sitemap>"
        f"<sitemap><loc>{base}/sitemap-pages.xml</loc><lastmod>{generated.isoformat()}</lastmod></sitemap></sitemapindex>"
    )
    news = "".join(
        f"<url><loc>{base}{a.path}</loc><news:news><news:publication><news:name>الجريدة</news:name>"
        f"<news:language>ar</news:language></news:publication><news:publication_date>{a.published.isoformat()}"
        f"</news:publication_date><news:title>{xml_escape(a.title)}</news:title></news:news></url>"
        for a in site.articles
    )
    news_doc = (
        f'{head}<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{news}</urlset>'
    )
    old = (generated - timedelta(days=400)).date().isoformat()
    pages = "".join(f"<url><loc>{base}/section/{s}</loc><lastmod>{old}</lastmod></url>" for s in SECTIONS)
    pages += "".join(f"<url><loc>{base}{a.path}</loc><lastmod>{a.published.isoformat()}</lastmod></url>" for a in site.articles)
    plain = f'{head}<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{pages}</urlset>'
    return {
        "/sitemap.xml": Page(index.encode(), xml, conditional=True),
        "/sitemap-news.xml": Page(news_doc.encode(), xml, conditional=True),
        "/sitemap-pages.xml": Page(plain.encode(), xml, conditional=True),
    }


def robots(site: Site, base: str) -> str:
    lines = ["User-agent: *"]
    lines.append("Disallow: /private/" if site.disallow_private else "Disallow: /search")
    lines.append("Allow: /")
    if site.discovery == "sitemap":
        lines.append(f"Sitemap: {base}/sitemap.xml")
    return "\n".join(lines) + "\n"


def render_site(site: Site, base: str, generated: datetime) -> dict[str, Page]:
    """Every path the site serves; anything else is a 404."""
    rng = random.Random(site.index)
    pages: dict[str, Page] = {}
    if site.has_robots:
        pages["/robots.txt"] = Page(robots(site, base).encode(), "text/plain; charset=utf-8")
    stamp = format_datetime(generated, usegmt=True)
    if site.discovery == "sitemap":
        pages.update({p: Page(v.body, v.content_type, True, stamp) for p, v in sitemap_pages(site, base, generated).items()})
    elif site.discovery == "html":
        page = listing_page(site, site.articles[0].most_read)
        pages[LISTING_PATH] = Page(page.body, page.content_type, True, stamp)
    else:
        page = rss_feed(site, base)
        pages["/rss.xml"] = Page(page.body, page.content_type, True, stamp)
    for article in site.articles:
        pages[article.path] = article_page(site, article, base, rng)
    for k in range(10):  # where the "most read" links lead; fetched only by a crawler that strays
        pages[f"/archive/{site.index}-{k}.html"] = Page(b"<html><body><p>archive</p></body></html>", "text/html; charset=utf-8")
    return pages


# -- serving -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    site: int
    path: str
    status: int
    at: float  # time.monotonic()
    user_agent: str
    conditional: bool = False  # If-None-Match or If-Modified-Since was sent


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, farm: SiteFarm, site: Site):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.farm = farm
        self.site = site
        self.pages: dict[str, Page] = {}

    def handle_error(self, request: object, client_address: object) -> None:
        """A client closing a kept-alive connection is normal; anything else is worth a line."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            print(f"sitefarm: site {self.site.index}: {type(error).__name__}: {error}", file=sys.stderr)


class _Handler(BaseHTTPRequestHandler):
    server: _SiteServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        page = self.server.pages.get(path)
        status = 200 if page else 404
        if page and page.conditional and self._not_modified(page):
            status = 304
        conditional = bool(self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"))
        agent = self.headers.get("User-Agent", "")
        self.server.farm.record(Request(self.server.site.index, self.path, status, time.monotonic(), agent, conditional))
        if status == 404:
            body, content_type = b"<html><body>not found</body></html>", "text/html; charset=utf-8"
        else:
            body, content_type = page.body, page.content_type
        self.send_response(status)
        if page and page.conditional:
            self.send_header("ETag", page.etag)
            self.send_header("Last-Modified", page.last_modified)
        if status == 304:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.server.site.index % 2 and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=5)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _not_modified(self, page: Page) -> bool:
        tag = self.headers.get("If-None-Match")
        if tag is not None:
            return page.etag in [t.strip() for t in tag.split(",")] or tag.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since and page.last_modified:
            try:
                return parsedate_to_datetime(since) >= parsedate_to_datetime(page.last_modified)
            except (TypeError, ValueError):
                return False
        return False


@dataclass
class SiteFarm:
    """Serve a Farm: one server per site, each in a daemon thread, until close()."""

    farm: Farm
    requests: list[Request] = field(default_factory=list)
    _servers: list[_SiteServer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Self:
        for site in self.farm.sites:
            server = _SiteServer(self, site)
            server.pages = render_site(site, self.base_url(server), self.farm.generated_at)
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, name=f"site-{site.index}", daemon=True).start()
        return self

    def close(self) -> None:
        """Stop every server at once: shutdown() waits up to half a second for each loop."""
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def base_url(server: _SiteServer) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}"

    def site_base(self, index: int) -> str:
        return self.base_url(self._servers[index])

    def entry_url(self, site: Site) -> str:
        return self.site_base(site.index) + site.entry_path

    def article_url(self, article: FarmArticle) -> str:
        return self.site_base(article.site) + article.path

    def page(self, article: FarmArticle) -> Page:
        return self._servers[article.site].pages[article.path]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def take_requests(self) -> list[Request]:
        """The requests since the last call (the log starts empty again)."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def manifest(self) -> dict:
        return {
            "generated_at": self.farm.generated_at.isoformat(),
            "sites": [
                {"index": s.index, "kind": s.kind, "discovery": s.discovery, "feed_id": s.feed_id, "url": self.entry_url(s),
                 "text_selector": s.text_selector, "disallow_private": s.disallow_private, "has_robots": s.has_robots,
                 "articles": [{"url": self.article_url(a), "corpus_id": a.corpus_id, "relevant": a.relevant, "private": a.private}
                              for a in s.articles]}
                for s in self.farm.sites
            ],
        }


# -- self-check --------------------------------------------------------------------------


def self_check(server: SiteFarm) -> list[str]:
    """Fetch a few URLs of each kind with httpx and parse the sitemaps with lxml; return problems."""
    import httpx
    from lxml import etree

    problems: list[str] = []
    seen: set[str] = set()
    with httpx.Client(timeout=10) as client:
        for site in server.farm.sites:
            if site.kind in seen:
                continue
            seen.add(site.kind)
            base = server.site_base(site.index)
            entry = client.get(base + site.entry_path)
            if entry.status_code != 200:
                problems.append(f"{site.feed_id}: {site.entry_path} answered {entry.status_code}")
            again = client.get(base + site.entry_path, headers={"If-None-Match": entry.headers.get("etag", "")})
            if again.status_code != 304:
                problems.append(f"{site.feed_id}: conditional GET answered {again.status_code}, not 304")
            if site.discovery == "sitemap":
                for path in ("/sitemap.xml", "/sitemap-news.xml", "/sitemap-pages.xml"):
                    parser = etree.XMLParser(resolve_entities=False, no_network=True)
                    root = etree.fromstring(client.get(base + path).content, parser)
                    locs = root.findall(".//{http://www.sitemaps.org/schemas/sitemap/0.9}loc")
                    if not locs:
                        problems.append(f"{site.feed_id}: {path} has no <loc>")
            article = next((a for a in site.articles if a.corpus_id), site.articles[0])
            page = client.get(base + article.path)
            if page.status_code != 200 or "الأكثر قراءة" not in page.text:
                problems.append(f"{site.feed_id}: article page {article.path} is wrong ({page.status_code})")
            visible = re.sub(r"<script.*?</script>", "", page.text, flags=re.DOTALL)
            lead = next(line for line in article.body.split("\n") if line.strip())
            shown = esc(" ".join(lead.split()[:6])) in visible
            if shown == (site.kind == "jsonld"):
                problems.append(f"{site.feed_id}: the article text is {'shown' if shown else 'missing'} outside scripts")
            robots_answer = client.get(base + "/robots.txt")
            if site.has_robots and site.disallow_private and "Disallow: /private/" not in robots_answer.text:
                problems.append(f"{site.feed_id}: robots.txt does not disallow /private/")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["serve", "check"])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--manifest", type=Path, help="write the sites, their URLs and labels here (serve)")
    args = parser.parse_args(argv)
    corpus = read_corpus(args.corpus)
    farm = build_farm(corpus, args.sites, args.articles, args.seed)
    with SiteFarm(farm) as server:
        if args.command == "check":
            problems = self_check(server)
            print(f"{len(farm.sites)} sites, {sum(1 for _ in farm.articles())} articles; {len(server.requests)} requests served")
            for problem in problems:
                print("PROBLEM", problem)
            return 1 if problems else 0
        if args.manifest:
            args.manifest.write_text(json.dumps(server.manifest(), ensure_ascii=False, indent=1), encoding="utf-8")
        for site in farm.sites:
            print(site.feed_id, server.entry_url(site))
        print("serving; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
