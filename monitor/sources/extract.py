"""An article page's own text, title, date and language, from its bytes (no network).

Headline-only feeds, sitemaps and listing pages give the monitor a link and a title; whether
an article concerns a dialogue is decided on its text, so the poller fetches the page and
this module finds the text. In order: the feed's `text` CSS selector, when set (the one
who configured it knows the site); else schema.org JSON-LD `articleBody` (several Kuwaiti
dailies render the article from script data, their visible HTML holds no text); else
trafilatura, the general extractor, on the page with its boilerplate boxes removed first.

Boilerplate matters more than recall: a "most read" box (الأكثر قراءة) carries ten other
headlines, and their keywords would flag this article for stories it does not tell. So
navigation, asides, footers, share bars, comments, related lists and any box that is mostly
links or sits under such a heading are removed before any text is taken.

Bounded on hostile pages up to the fetcher's cap (10 MB): nesting deeper than `MAX_DEPTH`
is flattened before parsing (Lexbor's tree builder is quadratic in nesting depth: 200,000
nested <div> took 108 s), JSON-LD is bounded in monitor.sources.pagedate, trafilatura
gets at most `MAX_GENERAL_HTML` characters of markup (scripts and styles already gone), and
the text is cut at `MAX_TEXT_CHARS`. Pure: no I/O.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog
import trafilatura
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from monitor.sources import pagedate
from monitor.sources.boilerplate import drop_read_also, remove_boilerplate

log = structlog.get_logger(__name__)

MAX_DEPTH = 128  # element nesting kept; real news pages stay under 60
MAX_GENERAL_HTML = 2_000_000  # characters of cleaned markup given to trafilatura: ~0.6 s of it
MAX_TEXT_CHARS = 200_000  # of extracted text; the longest news article is ~60,000
NO_TEXT = "no article text found on the page (login wall or empty page?)"

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_SNIFFED_TYPES = frozenset(
    {"", "text/plain", "application/octet-stream", "binary/octet-stream", "text/xml", "application/xml"}
)
_HTML_MARKS = (b"<html", b"<!doctype html", b"<head", b"<body")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_MAGIC = (
    (b"%PDF-", "application/pdf"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"),
    (b"\xff\xd8\xff", "image/jpeg"), (b"PK\x03\x04", "application/zip"), (b"\x1f\x8b", "application/gzip"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_LATIN = frozenset({"ascii", "iso8859-1", "cp1252", "iso8859-15"})
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]{0,15})\b[^<>]{0,2048}?(/?)>")
# Elements that never nest (void) or that the parser closes by itself when a sibling opens:
# counting them as depth would flatten ordinary pages full of unclosed <p> and <li>.
_NOT_NESTING = frozenset(
    "area base br col embed hr img input link meta param source track wbr p li dd dt option "
    "optgroup tr td th tbody thead tfoot colgroup rt rp".split()
)
# Removed with everything inside, wherever they are.
_INVISIBLE = (
    "script", "style", "noscript", "template", "iframe", "object", "embed", "canvas", "svg", "math", "video", "audio",
)  # fmt: skip
# Removed with everything inside, within the article's part. Not <form>: ASP.NET sites
# (KUNA's among them) wrap the whole page in one.
_BLOCKS = frozenset(
    "address article aside blockquote dd details div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main ol p pre section summary table td th tr ul".split()
)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ExtractedPage:
    """What an article page says about itself. `text` is "" exactly when `error` says why."""

    text: str
    title: str | None
    published: datetime | None
    language: str | None
    method: str  # "selector" | "json-ld" | "trafilatura" | "none"
    error: str | None
    warnings: tuple[str, ...] = ()  # e.g. a text selector that matched nothing


def extract_page(
    body: bytes,
    headers: Mapping[str, str],
    *,
    url: str,
    fetched_at: datetime,
    text_selector: str | None = None,
    min_chars: int = 200,
) -> ExtractedPage:
    """The article in an HTML page's bytes; never raises on what a server may send."""
    try:
        return _extract(body, headers, fetched_at, text_selector, min_chars)
    except Exception as exc:  # noqa: BLE001 - a bug here must cost one article, not the poll
        log.warning("article extraction failed", url=url, error=f"{type(exc).__name__}: {exc}")
        return ExtractedPage("", None, None, None, "none", f"article extraction failed ({type(exc).__name__})")


def _extract(
    body: bytes, headers: Mapping[str, str], fetched_at: datetime, text_selector: str | None, min_chars: int
) -> ExtractedPage:
    lower = {key.lower(): value for key, value in headers.items()}
    if (reason := not_html_reason(body, lower)) is not None:
        return ExtractedPage("", None, None, None, "none", reason)
    tree = LexborHTMLParser(flatten_deep_nesting(decode_page(body, lower)))
    facts = pagedate.read_facts(tree)
    title = pagedate.page_title(tree, facts)
    published = pagedate.page_published(tree, facts, fetched_at)
    language = pagedate.page_language(tree, facts, lower)
    tree.strip_tags(list(_INVISIBLE))
    text, method, warnings = _article_text(tree, facts, text_selector, min_chars)
    if len(text) < min_chars:
        if text:
            why = (
                f"only {len(text)} characters of article text found (under {min_chars}): "
                "login wall, paywall or removed article?"
            )
        else:
            why = NO_TEXT
        error = "; ".join((why, *warnings))
        return ExtractedPage("", title, published, language, "none", error, warnings)
    return ExtractedPage(_without_title(text, title), title, published, language, method, None, warnings)


# -- bytes to markup ------------------------------------------------------------------------


def not_html_reason(body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why `body` is no HTML page, or None. The Content-Type decides unless it is vague
    (missing, text/plain, octet-stream), then the first bytes do."""
    if not body.strip():
        return "empty page (no content in the response)"
    mime = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if mime in _HTML_TYPES:
        return None
    start = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for magic, kind in _MAGIC:
        if start.startswith(magic.lower()):
            return f"not an HTML page ({mime or kind})"
    if mime in _SNIFFED_TYPES and any(mark in start for mark in _HTML_MARKS):
        return None
    return f"not an HTML page ({mime or 'no Content-Type and no HTML markup'})"


def decode_page(body: bytes, headers: Mapping[str, str]) -> str:
    """The page as text, never with Arabic garbled: a byte order mark, else valid UTF-8 (the
    bytes of a windows-1256 page are never valid UTF-8, so a wrong declaration loses), else
    the declared charset (Content-Type, then <meta>), where a Latin declaration on bytes that
    read as Arabic words gives way to windows-1256; undeclared, mostly UTF-8 is UTF-8 with
    U+FFFD, else windows-1256, which also keeps the French accents of windows-1252."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return _clean(body[len(bom) :].decode(codec, "replace"))
    try:
        return _clean(body.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    declared = _declared_codec(body, headers)
    if declared in _LATIN and _reads_as_arabic(body):
        declared = "cp1256"
    if declared is not None and declared not in ("utf-8", "utf-16-le", "utf-16-be", "utf-16"):
        return _clean(body.decode(declared, "replace"))
    text = body.decode("utf-8", "replace")
    invalid = text.count("\ufffd")
    if len(body) - len(text) >= 20 * invalid or declared == "utf-8" and not _reads_as_arabic(body):
        return _clean(text)
    return _clean(body.decode("cp1256", "replace"))


def _declared_codec(body: bytes, headers: Mapping[str, str]) -> str | None:
    match = _HTTP_CHARSET.search(headers.get("content-type") or "")
    name = match.group(1) if match else None
    if name is None and (meta := _META_CHARSET.search(body[:8192])):
        name = meta.group(1).decode("ascii")
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _reads_as_arabic(body: bytes) -> bool:
    """Whether the high bytes come in runs (words of a single-byte Arabic charset) rather than
    alone among ASCII letters (accented Latin). Sampled: the first 64 KB decide."""
    sample = body[:65536]
    high = sum(1 for byte in sample if byte >= 0xC0)
    if high < 20:
        return False
    runs = sum(len(run) for run in re.findall(rb"[\xc0-\xff]{3,}", sample))
    return runs >= 0.6 * high


def _clean(text: str) -> str:
    return _CONTROL.sub("", text)


def flatten_deep_nesting(markup: str) -> str:
    """`markup` with the start tags beyond `MAX_DEPTH` open elements (and their end tags)
    removed: the content stays, the parser no longer walks a stack thousands deep for each
    tag. One regex pass; the common page is returned unchanged."""
    depth = dropped = 0
    cuts: list[tuple[int, int]] = []
    for match in _TAG.finditer(markup):
        closing, name, self_closing = match.groups()
        if self_closing or name.lower() in _NOT_NESTING:
            continue
        if not closing:
            if depth >= MAX_DEPTH:
                dropped += 1
                cuts.append(match.span())
            else:
                depth += 1
        elif dropped:
            dropped -= 1
            cuts.append(match.span())
        elif depth:
            depth -= 1
    if not cuts:
        return markup
    pieces, position = [], 0
    for start, end in cuts:
        pieces.append(markup[position:start])
        position = end
    pieces.append(markup[position:])
    return "".join(pieces)


# -- the text -------------------------------------------------------------------------------


def _article_text(
    tree: LexborHTMLParser, facts: pagedate.PageFacts, selector: str | None, min_chars: int
) -> tuple[str, str, tuple[str, ...]]:
    """(text, method, warnings) of the first method giving `min_chars`; else the longest."""
    warnings: list[str] = []
    best = ("", "none")
    if selector:
        text, warning = _selector_text(tree, selector)
        if warning:
            warnings.append(warning)
        if len(text) >= min_chars:
            return text, "selector", ()
        best = max(best, (text, "selector"), key=lambda pair: len(pair[0]))
    text = _json_ld_text(pagedate.json_ld_bodies(facts))
    if len(text) >= min_chars and not text.endswith(("...", "…")):
        return text, "json-ld", tuple(warnings)
    best = max(best, (text, "json-ld"), key=lambda pair: len(pair[0]))
    general = _general_text(tree)
    best = max(best, (general, "trafilatura"), key=lambda pair: len(pair[0]))
    return best[0], best[1], tuple(warnings)


def _selector_text(tree: LexborHTMLParser, selector: str) -> tuple[str, str | None]:
    try:
        matches = tree.css(selector)
    except SelectolaxError:
        return "", f"the text selector {selector!r} is not a valid CSS selector"
    if not matches:
        return "", f"the text selector {selector!r} matched nothing on the page"
    seen: set[int] = set()
    parts: list[str] = []
    for match in matches:
        if match.mem_id in seen:
            continue  # inside an earlier match: its text is already taken
        seen.update(node.mem_id for node in match.traverse(include_text=False))
        drop_read_also(match)
        remove_boilerplate(match)
        parts.append(block_text(match))
    return _capped("\n\n".join(part for part in parts if part)), None


def _json_ld_text(bodies: list[str]) -> str:
    """The longest articleBody as text: markup in it (even escaped as "&lt;p&gt;") parsed,
    its scripts dropped; plain text split at its line breaks."""
    if not bodies:
        return ""
    body = max(bodies, key=len)
    if "<" not in body and "&lt;" in body:
        body = html.unescape(body)
    if "<" in body:
        fragment = LexborHTMLParser(f"<html><body>{flatten_deep_nesting(body)}</body></html>")
        fragment.strip_tags(list(_INVISIBLE))
        return _capped(block_text(fragment.body) if fragment.body is not None else "")
    return _capped(_paragraphs(html.unescape(body).split("\n")))


def _general_text(tree: LexborHTMLParser) -> str:
    body = tree.body
    if body is None:
        return ""
    drop_read_also(body)
    remove_boilerplate(body)
    markup = body.html or ""
    if len(markup) > MAX_GENERAL_HTML:
        markup = markup[:MAX_GENERAL_HTML]
    try:
        text = trafilatura.extract(
            f"<html>{markup}</html>", include_comments=False, include_tables=False, deduplicate=False, fast=True
        )
    except Exception:  # noqa: BLE001 - a bug in the general extractor must not stop the poll
        text = None
    return _capped(_paragraphs((text or "").split("\n")))


# -- text -----------------------------------------------------------------------------------


def block_text(root: LexborNode) -> str:
    """The visible text under `root`, one paragraph per block element or <br>, joined by a
    blank line. A walk with parent pointers, so nesting depth costs no recursion."""
    pieces: list[str] = []
    root_id = root.mem_id
    node = root.child
    while node is not None:
        if node.is_text_node:
            pieces.append(node.text_content or "")
        elif node.is_element_node:
            tag = node.tag or ""
            if tag == "br" or tag in _BLOCKS:
                pieces.append("\n")
            if tag not in _INVISIBLE and (child := node.child) is not None:
                node = child
                continue
        node = _next_in_order(node, root_id, pieces)
    return _paragraphs("".join(pieces).split("\n"))


def _next_in_order(node: LexborNode, root_id: int, pieces: list[str]) -> LexborNode | None:
    """The next node after `node`'s subtree, closing the blocks it climbs out of."""
    while True:
        if (sibling := node.next) is not None:
            return sibling
        parent = node.parent
        if parent is None or parent.mem_id == root_id:
            return None
        if (parent.tag or "") in _BLOCKS:
            pieces.append("\n")
        node = parent


def _paragraphs(lines: list[str]) -> str:
    return "\n\n".join(line for line in (" ".join(raw.split()) for raw in lines) if line)


def _capped(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    cut = text.rfind("\n\n", 0, MAX_TEXT_CHARS)
    return text[: cut if cut > 0 else MAX_TEXT_CHARS]


def _without_title(text: str, title: str | None) -> str:
    """The text without a first paragraph that only repeats the title."""
    if title and text.startswith(title):
        rest = text[len(title) :]
        if rest.startswith("\n\n"):
            return rest[2:]
    return text
