"""HTML listing page bytes → one entry per article link the feed's CSS selector finds. Pure: no I/O.

Kuwaiti dailies without a usable feed still list their latest articles on a section page;
the user names the links with a selector (`.news-list .item a`) and each new link becomes an
entry, its visible text the title. selectolax (lexbor) parses and matches in C.

Bounded on hostile pages: lexbor's tree building costs time in proportion to the depth of
open elements for every block tag (40,000 nested <div> took 2.7 s, 1,000,000 did not finish
in ten minutes), so the markup is cut where the nesting passes MAX_DEPTH, with a warning;
each matched element is read through at most _MAX_NODES nodes; at most `max_links` links.

`check_selector` (config validation) is monitor.sources.selectors', re-exported here.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from urllib.parse import urldefrag, urljoin

import structlog
from selectolax.lexbor import LexborHTMLParser, LexborNode

from monitor.sources.parse import ParsedEntry, safe_link
from monitor.sources.selectors import check_selector
from monitor.sources.sitemap import normalise_language, parse_w3c_date, plausible
from monitor.sources.urltitle import title_from_url

log = structlog.get_logger(__name__)

__all__ = ["MAX_DEPTH", "ParsedListing", "bounded_nesting", "check_selector", "decode_page", "not_html", "parse_listing"]

# Real pages nest 20 to 60 elements deep, sloppy ones a few hundred; beyond this the markup
# is an attack or a generator bug, and lexbor's per-tag cost grows with the depth.
MAX_DEPTH = 512
# Nodes read inside one matched element (its link, title, image, date): an article card has
# a few dozen; a selector matching the page's outer wrappers must not read the page per match.
_MAX_NODES = 2000
_MAX_TITLE = 500
# A date is looked for in the matched element and up to this many ancestors, each read
# through at most _MAX_DATE_NODES elements (an article card has a few dozen).
_DATE_ANCESTORS = 3
_MAX_DATE_NODES = 300
_INVISIBLE = ["script", "style", "noscript", "template"]
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "td", "th", "tr", "ul", "img",
    }
)  # fmt: skip
# Elements whose end tag may be omitted (or that cannot have one): they do not deepen the
# nesting the way an unclosed <div> does, so the depth count leaves them out.
_NOT_COUNTED = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
        "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "rb", "rt",
        "rp", "rtc", "colgroup", "caption", "html", "head", "body", "param", "keygen", "frame", "basefont",
        "bgsound", "image", "isindex",
    }
)  # fmt: skip
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)|<!--")
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "noscript", "iframe", "noembed", "noframes"})
_RAW_CLOSING = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in _RAW_TEXT}
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta\b[^>]{0,400}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z][A-Za-z0-9:._-]*)")
_PROLOG = re.compile(rb"\A(?:\s+|<\?[^>]*>|<!--.*?-->|<!DOCTYPE[^>]*>)*", re.IGNORECASE | re.DOTALL)
_FEEDS = frozenset({b"rss", b"feed", b"rdf:rdf", b"rdf"})
_SITEMAPS = frozenset({b"urlset", b"sitemapindex"})
# At least this many valid multi-byte characters per invalid byte make a page UTF-8 with a few
# bad bytes (as in monitor.sources.charset); fewer, and it is a legacy Arabic page.
_MOSTLY_UTF8 = 20
_LEGACY_ARABIC = "cp1256"
_INVALID = re.compile("[\udc80-\udcff]+")  # the bytes surrogateescape could not decode
# What the HTML standard decodes these labels as: browsers never use Latin-1 proper, and a
# page cannot declare UTF-16 in a <meta> it could not have been read to find.
_HTML_LABELS = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252", "utf-16-le": "utf-8", "utf-16-be": "utf-8", "utf-16": "utf-8"}
_SCHEME_ONLY = re.compile(r"\A\s*(?:javascript|mailto|data|tel|vbscript):", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedListing:
    entries: tuple[ParsedEntry, ...]  # in page order, one per distinct link
    warnings: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class DecodedPage:
    text: str
    warning: str | None
    against_declaration: bool  # decoded with another charset than the page declared


def parse_listing(
    body: bytes,
    headers: Mapping[str, str],
    *,
    base_url: str,
    fetched_at: datetime,
    default_language: str | None,
    selector: str,
    include: re.Pattern[str] | None = None,
    max_links: int = 1000,
) -> ParsedListing:
    """Parse one listing page. Never raises for bad input: nothing usable comes back with
    `error`, a damaged or oversized page with `warnings`."""
    if reason := check_selector(selector):
        return _failure(f"invalid links selector: {reason}")
    headers = {key.lower(): value for key, value in headers.items()}
    if problem := not_html(body, headers.get("content-type", "")):
        return _failure(problem)
    page = decode_page(body, headers)
    warnings = [page.warning] if page.warning else []
    markup, cut_at = bounded_nesting(page.text)
    if cut_at is not None:
        warnings.append(f"the page nests elements more than {MAX_DEPTH} deep; read up to character {cut_at}")
    tree = LexborHTMLParser(markup)
    tree.strip_tags(_INVISIBLE)
    matches = tree.css(selector)
    if not matches:
        links = len(tree.css("a[href]"))
        return _failure(f"the links selector {selector!r} matched nothing on the page ({links} <a href> links on it)", warnings)
    reader = _LinkReader(
        base=_page_base(tree, base_url),
        fetched_at=fetched_at,
        language=_page_language(tree) or normalise_language(default_language),
        include=include,
        suspect=page.against_declaration,
    )
    for position, element in enumerate(matches):
        if len(reader.entries) >= max_links:
            warnings.append(
                f"the links selector matched {len(matches)} elements: only the first {max_links} links kept "
                f"(read up to element {position})"
            )
            break
        reader.read(element)
    warnings.extend(reader.warnings())
    if not reader.entries:
        return _failure(f"the links selector {selector!r} matched {len(matches)} elements but no usable link", warnings)
    return ParsedListing(entries=tuple(reader.entries.values()), warnings=tuple(warnings), error=None)


def _failure(error: str, warnings: list[str] | None = None) -> ParsedListing:
    return ParsedListing(entries=(), warnings=tuple(warnings or ()), error=error)


# -- what the body is -------------------------------------------------------------------------


def not_html(body: bytes, content_type: str) -> str | None:
    """Why the body is not an HTML page, or None. A server answering a listing URL with
    JSON, a feed or a sitemap is configured under the wrong type, and says so plainly."""
    kind = content_type.split(";")[0].strip().lower() or "no content type"
    head = body[:4096].removeprefix(codecs.BOM_UTF8)
    start = head.lstrip()
    if not start:
        return "empty response body"
    if b"\x00" in head[:1024] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return f"not an HTML page: binary content ({kind})"
    if start[:1] in (b"{", b"[") or kind == "application/json":
        return f"not an HTML page: the server sent JSON ({kind})"
    prolog = _PROLOG.match(start)
    first = _FIRST_ELEMENT.match(start, prolog.end() if prolog else 0)
    root = first.group(1).lower() if first else b""
    if root in _FEEDS:
        return 'not an HTML page: the server sent an RSS/Atom feed; configure it with type "rss"'
    if root in _SITEMAPS:
        return 'not an HTML page: the server sent a sitemap; configure it with type "sitemap"'
    if not re.search(rb"<[A-Za-z!/]", body[:65536]):
        return f"not an HTML page: no markup ({kind})"
    return None


def decode_page(body: bytes, headers: Mapping[str, str]) -> DecodedPage:
    """Bytes → text as a browser would choose: byte order mark, then the HTTP charset, then
    <meta charset> / <meta http-equiv>, else UTF-8; and windows-1256 when bytes said (or
    assumed) to be UTF-8 plainly are not, which is what old Arabic sites serve."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if body.startswith(bom):
            return DecodedPage(body[len(bom) :].decode(codec, "replace"), None, False)
    declared = _declared_charset(body, headers)
    if declared is not None and declared != "utf-8":
        text = body.decode(declared, "replace")
        replaced = text.count("\ufffd") - body.count("\ufffd".encode())
        warning = f"{replaced} bytes invalid in the declared {declared} replaced with U+FFFD" if replaced > 0 else None
        return DecodedPage(text, warning, False)
    return _decode_utf8_or_legacy(body, declared_utf8=declared == "utf-8")


def _declared_charset(body: bytes, headers: Mapping[str, str]) -> str | None:
    header = _HEADER_CHARSET.search(headers.get("content-type", ""))
    if header and (codec := _codec(header.group(1))):
        return codec
    meta = _META_CHARSET.search(body[:8192])
    if meta and (codec := _codec(meta.group(1).decode("ascii"))):
        return _HTML_LABELS.get(codec, codec) if codec.startswith("utf-16") else codec
    return None


def _codec(label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip()).name
    except LookupError:
        return None
    return _HTML_LABELS.get(name, name) if not name.startswith("utf-16") else name


def _decode_utf8_or_legacy(body: bytes, *, declared_utf8: bool) -> DecodedPage:
    try:
        return DecodedPage(body.decode("utf-8"), None, False)
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", "surrogateescape")
    invalid = sum(run.end() - run.start() for run in _INVALID.finditer(text))
    multibyte = len(body) - len(text)
    if multibyte >= invalid * _MOSTLY_UTF8:
        plural = "byte" if invalid == 1 else "bytes"
        return DecodedPage(body.decode("utf-8", "replace"), f"{invalid} invalid UTF-8 {plural} replaced with U+FFFD", False)
    how = "declared UTF-8 but is not" if declared_utf8 else "declares no charset and is not UTF-8"
    return DecodedPage(body.decode(_LEGACY_ARABIC, "replace"), f"the page {how}: decoded as windows-1256", declared_utf8)


def bounded_nesting(markup: str) -> tuple[str, int | None]:
    """The markup, cut where its open elements first nest deeper than MAX_DEPTH (and where
    the cut is), in one pass. Depth is counted per element name, so a stray </div> closes
    nothing of another name; script, style and comment contents are skipped, as the HTML
    parser skips them; elements whose end tag may be omitted (<p>, <li>) are not counted."""
    open_counts: dict[str, int] = {}
    depth = 0
    position = 0
    missing: set[str] = set()  # raw-text closings already known absent: no second search
    while (tag := _TAG.search(markup, position)) is not None:
        position = tag.end()
        if tag.group(0) == "<!--":
            end = markup.find("-->", position)
            if end < 0:
                break
            position = end + 3
            continue
        name = tag.group(2).lower()
        if tag.group(1):
            if open_counts.get(name, 0) > 0:
                open_counts[name] -= 1
                depth -= 1
            continue
        if name in _RAW_TEXT:
            closing = None if name in missing else _RAW_CLOSING[name].search(markup, position)
            if closing is None:
                missing.add(name)
                continue  # the parser reads the rest as text, or as markup again: count on
            position = closing.end()
            continue
        if name in _NOT_COUNTED:
            continue
        open_counts[name] = open_counts.get(name, 0) + 1
        depth += 1
        if depth > MAX_DEPTH:
            return markup[: tag.start()], tag.start()
    return markup, None


# -- the links --------------------------------------------------------------------------------


class _LinkReader:
    """Turns matched elements into entries, one per distinct URL, in page order."""

    def __init__(
        self, *, base: str, fetched_at: datetime, language: str | None, include: re.Pattern[str] | None, suspect: bool
    ) -> None:
        self.base = base
        self.fetched_at = fetched_at
        self.language = language
        self.include = include
        self.suspect = suspect
        self.entries: dict[str, ParsedEntry] = {}
        self.from_text: set[str] = set()  # links whose title is their visible text
        self.without_link = 0
        self.unsafe = 0

    def read(self, element: LexborNode) -> None:
        anchor = _own_or_first_link(element)
        if anchor is None:
            self.without_link += 1
            return
        link = _clean_link(anchor.attributes.get("href") or "", self.base)
        if link is None:
            self.unsafe += 1
            return
        if self.include is not None and not self.include.search(link):
            return
        visible = visible_text(anchor)
        if not visible and anchor is not element:
            # A card often links its image and its headline to the same article: the
            # headline is the title.
            anchor, visible = self._titled_twin(element, link) or (anchor, visible)
        if link in self.entries and (link in self.from_text or not visible):
            return  # the first title wins, unless it was only a fallback
        title = visible or _fallback_title(anchor, link)
        if visible:
            self.from_text.add(link)
        previous = self.entries.get(link)
        published = _time_of(element, link, self) if previous is None else None
        self.entries[link] = ParsedEntry(
            guid=link,
            link=link,
            title=title,
            summary="",
            published=previous.published if previous else published or self.fetched_at,
            published_is_fallback=previous.published_is_fallback if previous else published is None,
            author=None,
            language=self.language,
            text_suspect=self.suspect or "\ufffd" in title,
        )

    def _titled_twin(self, element: LexborNode, link: str) -> tuple[LexborNode, str] | None:
        for node in _bounded(element):
            if node.tag == "a" and _clean_link(node.attributes.get("href") or "", self.base) == link:
                if text := visible_text(node):
                    return node, text
        return None

    def links_elsewhere(self, scope: LexborNode, link: str) -> bool:
        """Whether `scope` links to another article than `link`: then it is the list, not
        the item, and a date in it may be another item's."""
        for node in islice(scope.traverse(include_text=False), _MAX_DATE_NODES):
            if node.tag == "a" and (href := node.attributes.get("href")):
                other = _clean_link(href, self.base)
                if other is not None and other != link:
                    return True
        return False

    def warnings(self) -> list[str]:
        found = []
        if self.without_link:
            found.append(f"{self.without_link} matched elements hold no <a href>; skipped")
        if self.unsafe:
            found.append(f"{self.unsafe} links are not http(s) (javascript:, mailto:, '#'…); skipped")
        return found


def _own_or_first_link(element: LexborNode) -> LexborNode | None:
    if element.tag == "a" and element.attributes.get("href") is not None:
        return element
    for node in _bounded(element):
        if node.tag == "a" and node.attributes.get("href") is not None:
            return node
    return None


def _clean_link(href: str, base: str) -> str | None:
    """Absolute http(s), fragment dropped; None for '#…', javascript:, mailto:, data:."""
    href = href.strip()
    if not href or href.startswith("#") or _SCHEME_ONLY.match(href):
        return None
    link = safe_link(href, base)
    return urldefrag(link).url if link else None


def visible_text(node: LexborNode) -> str:
    """The node's text as a reader sees it, whitespace collapsed: block boundaries become
    spaces ("<h3>Title</h3>More" reads "Title More"), inline ones do not ("Ku<b>wait</b>"
    stays "Kuwait"). Scripts and styles are gone from the tree already."""
    pieces: list[str] = []
    size = 0
    for child in _bounded(node):
        previous = child.prev
        if child.tag in _BLOCK or (previous is not None and previous.tag in _BLOCK):
            pieces.append(" ")
        if child.is_text_node:
            text = child.text_content or ""
            pieces.append(text)
            size += len(text)
            if size > _MAX_TITLE * 4:
                break
    return " ".join("".join(pieces).split())[:_MAX_TITLE]


def _fallback_title(anchor: LexborNode, link: str) -> str:
    """For a link with no text (an image, an icon): its title attribute, an image's alt,
    else the words of the URL's slug."""
    title = " ".join((anchor.attributes.get("title") or "").split())
    if title:
        return title[:_MAX_TITLE]
    for node in _bounded(anchor):
        if node.tag == "img" and (alt := " ".join((node.attributes.get("alt") or "").split())):
            return alt[:_MAX_TITLE]
    return title_from_url(link)


def _time_of(element: LexborNode, link: str, reader: _LinkReader) -> datetime | None:
    """A plausible <time datetime> inside the matched element, else inside the nearest of
    its ancestors (up to _DATE_ANCESTORS) that still holds only this article's links: the
    item where a date sits beside the headline, never the list around other items."""
    scope: LexborNode | None = element
    for level in range(_DATE_ANCESTORS + 1):
        if scope is None or (level and reader.links_elsewhere(scope, link)):
            return None
        for node in islice(scope.traverse(include_text=False), _MAX_DATE_NODES):
            if node.tag == "time" and (value := node.attributes.get("datetime")):
                when = parse_w3c_date(value)
                if when is not None and plausible(when, reader.fetched_at):
                    return when
        scope = scope.parent
    return None


def _bounded(node: LexborNode) -> Iterator[LexborNode]:
    return islice(node.traverse(include_text=True), _MAX_NODES)


def _page_base(tree: LexborHTMLParser, base_url: str) -> str:
    base = tree.css_first("base[href]")
    if base is None:
        return base_url
    href = (base.attributes.get("href") or "").strip()
    resolved = safe_link(urljoin(base_url, href), base_url) if href else None
    return resolved or base_url


def _page_language(tree: LexborHTMLParser) -> str | None:
    html = tree.css_first("html")
    return normalise_language(html.attributes.get("lang")) if html is not None else None
