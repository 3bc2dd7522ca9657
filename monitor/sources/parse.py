"""Feed bytes → plain-text entries, with feedparser as the parser of record.

Pure (no I/O) and top-level so a ProcessPoolExecutor can run it: feedparser is the cold-path
bottleneck, so the post-processing here stays cheap (regexes compiled once, a regex HTML-to-text
path instead of a DOM, and a no-markup fast path for the common plain-text title), and plain
UTF-8 RSS 2.0 skips feedparser altogether through monitor.sources.fastfeed, which hands the same
post-processing the same dicts feedparser would have built.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import structlog

from monitor.sources import charset
from monitor.sources.fastfeed import parse_fast

log = structlog.get_logger(__name__)

# A date further ahead than this is a publisher's clock or time-zone bug, not a scheduled
# article; trusting it would pin the entry to the top of every "newest first" view.
FUTURE_TOLERANCE = timedelta(days=1)
# Dates before this are placeholder epochs (0 → 1970), not publication times.
EARLIEST_PLAUSIBLE = datetime(1995, 1, 1, tzinfo=UTC)

# What a reader never sees. A self-closing tag ("<iframe src=…/>", usual in feeds written as
# XML) is an empty element; an unclosed script or style hides the rest (it is code), but an
# unclosed embed (<object> without </object>) is only its tag, so the article's words after
# a video embed still reach the rules. Every tag pattern stops at the next "<": with
# "[^>]*" a text of many "<a" and no ">" made each one scan to the end (quadratic: 1 MB
# took 50 s).
_INVISIBLE_OPEN = re.compile(r"<(script|style|noscript|template|iframe|object)\b[^<>]*?(/?)>", re.IGNORECASE)
_CODE_ELEMENTS = frozenset({"script", "style"})
_CLOSING = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE)
    for name in ("script", "style", "noscript", "template", "iframe", "object")
}
_COMMENTS = re.compile(r"<!--.*?(?:-->|\Z)|<!\[CDATA\[|\]\]>", re.DOTALL)
# Block-level boundaries become spaces so "<p>a</p><p>b</p>" reads "a b", not "ab";
# inline tags vanish so "Ku<b>wait</b>" stays one word.
_BLOCK_TAGS = re.compile(
    r"</?(?:p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|table|thead|tbody|tr|td|th|blockquote|pre|"
    r"section|article|header|footer|aside|nav|figure|figcaption|img|caption|address)\b[^<>]*>",
    re.IGNORECASE,
)
_TAGS = re.compile(r"</?[A-Za-z][^<>]*>|<![A-Za-z][^<>]*>|<\?[^<>]*>")
# Markup that is still there after one unescape: the feed escaped its HTML twice.
_RESIDUAL_MARKUP = re.compile(r"<(?:/?(?:p|br|div|span|a|img|b|i|strong|em|script|style)\b)", re.IGNORECASE)
_TAG_LIKE = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_ALLOWED_SCHEMES = frozenset({"http", "https"})
_ABSOLUTE_HTTP = re.compile(r"https?://[^/\\\s?#@:]+[^\s]*\Z", re.IGNORECASE)
# Headers that describe the transfer, not the document; the fetcher has already undone them.
_TRANSFER_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@dataclass(frozen=True)
class ParsedEntry:
    guid: str
    link: str | None
    title: str
    summary: str
    published: datetime
    published_is_fallback: bool
    author: str | None
    language: str | None
    # The title or summary may be garbled by a bad charset (it holds U+FFFD for invalid
    # bytes, or the whole feed was decoded against its declaration): the store repairs the
    # article when a later poll brings the same guid clean.
    text_suspect: bool = False


@dataclass(frozen=True)
class ParsedFeed:
    entries: tuple[ParsedEntry, ...]
    title: str | None
    warnings: tuple[str, ...]
    error: str | None


def parse_feed(
    body: bytes,
    headers: Mapping[str, str],
    *,
    base_url: str,
    fetched_at: datetime,
    default_language: str | None = None,
    sanitize_html: bool = False,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one response body. Never raises for bad input: a feed that yields no entries
    comes back with `error` set, a damaged feed that still yields entries with `warnings`.

    `fast=False` forces feedparser even where the fast path applies (the differential tests
    compare the two); `sanitize_html=True` always uses feedparser, whose sanitizer it asks for.
    A few invalid bytes in a UTF-8 feed become U+FFFD before either parser sees them (see
    monitor.sources.charset), so they cannot make feedparser guess another charset for the whole feed."""
    response_headers = _response_headers(headers)
    decoded = charset.prepare(body, response_headers)
    body = decoded.body
    result = _fast_result(body, response_headers, decoded.valid_utf8) if fast and not sanitize_html else None
    if result is None:
        try:
            result = feedparser.parse(
                io.BytesIO(body),
                response_headers=response_headers,
                # Both passes rewrite embedded HTML that html_to_text() then throws away; skipping
                # them more than doubles feedparser's throughput (tests show identical entries).
                sanitize_html=sanitize_html,
                resolve_relative_uris=sanitize_html,
            )
        except Exception as exc:  # feedparser is lenient, but a parser bug must not kill a poll
            return ParsedFeed(entries=(), title=None, warnings=(), error=f"feed parser failed: {_describe(exc)}")
    return from_feedparser(
        result,
        body,
        response_headers,
        base_url=base_url,
        fetched_at=fetched_at,
        default_language=default_language,
        decoded=decoded,
    )


def _fast_result(body: bytes, response_headers: Mapping[str, str], valid_utf8: bool) -> Any:
    """The fast path's stand-in for feedparser's result, or None to use feedparser. A failure
    of the fast path is a bug in it, never the feed's fault: log it and let feedparser decide."""
    try:
        return parse_fast(body, response_headers, valid_utf8=valid_utf8)
    except Exception as exc:
        log.warning("fast feed parser failed, using feedparser", error=_describe(exc))
        return None


def from_feedparser(
    result: Any,
    body: bytes,
    response_headers: Mapping[str, str],
    *,
    base_url: str,
    fetched_at: datetime,
    default_language: str | None,
    decoded: charset.Decoded | None = None,
) -> ParsedFeed:
    """Our part of parse_feed, after feedparser; separate so bench/parse_bench.py can time it."""
    warnings = [_bozo_warning(result)] if result.get("bozo") else []
    suspect = _Suspicion()
    if decoded is not None:
        if decoded.warning:
            warnings.append(decoded.warning)
        suspect.replaced = decoded.replaced > 0
        if against := charset.against_declaration(decoded, result.get("encoding")):
            warnings.append(against)
            suspect.everything = True
    if not result.entries:
        return ParsedFeed(
            entries=(), title=None, warnings=tuple(warnings), error=_no_entries_message(body, result, response_headers)
        )
    feed = result.feed
    feed_language = _language(feed.get("language")) or _language(response_headers.get("content-language"))
    fallback = feed_language or _language(default_language)
    dates = _DateCounters()
    entries = tuple(_entry(raw, base_url, fetched_at, fallback, dates, suspect) for raw in result.entries)
    warnings.extend(dates.warnings(len(entries)))
    title = _text_of(feed.get("title"), feed.get("title_detail")) or None
    return ParsedFeed(entries=entries, title=title, warnings=tuple(warnings), error=None)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment: script/style contents dropped, tags removed, entities
    decoded, whitespace collapsed. A regex pass, because a DOM per entry would cost more than
    feedparser itself on the cold path."""
    if "<" not in markup and "&" not in markup:
        return plain_text(markup)
    text = _strip_markup(markup)
    if "<" in text and _RESIDUAL_MARKUP.search(text):
        text = _strip_markup(text)
    return plain_text(text)


def _strip_markup(markup: str) -> str:
    text = _drop_invisible(markup)
    text = _COMMENTS.sub(" ", text)
    text = _BLOCK_TAGS.sub(" ", text)
    text = _TAGS.sub("", text)
    return html.unescape(text)


def _drop_invisible(markup: str) -> str:
    """Remove script, style, noscript, template, iframe and object elements, left to right
    (what one opens, e.g. a script inside an iframe, goes with it). Linear: each closing-tag
    search is remembered, so a thousand unclosed <object> tags cost one scan, not a
    thousand (quadratic before: 1 MB of them took 150 s)."""
    if "<" not in markup:
        return markup
    pieces: list[str] = []
    position = 0
    closings: dict[str, tuple[int, re.Match[str] | None]] = {}  # name -> (searched from, found)
    while (opening := _INVISIBLE_OPEN.search(markup, position)) is not None:
        pieces.append(markup[position : opening.start()])
        pieces.append(" ")
        position = opening.end()
        if opening.group(2):  # self-closing: an empty element
            continue
        name = opening.group(1).lower()
        closing = _next_closing(markup, name, position, closings)
        if closing is not None:
            position = closing.end()
        elif name in _CODE_ELEMENTS:
            position = len(markup)  # unclosed code hides the rest
    pieces.append(markup[position:])
    return "".join(pieces)


def _next_closing(
    markup: str, name: str, start: int, cache: dict[str, tuple[int, re.Match[str] | None]]
) -> re.Match[str] | None:
    """The first "</name>" at or after `start`, reusing the last search while it still
    answers: none found from an earlier point means none from here either."""
    searched_from, found = cache.get(name, (-1, None))
    if searched_from != -1 and searched_from <= start and (found is None or found.start() >= start):
        return found
    found = _CLOSING[name].search(markup, start)
    cache[name] = (start, found)
    return found


def plain_text(text: str) -> str:
    """Whitespace collapsed to single spaces. Text already in that shape comes back as is,
    checked at C speed: a printable string holds no whitespace but the ASCII space (every
    other kind is a Unicode separator or control), so it is clean when no two spaces meet
    and none starts or ends it. Splitting and joining a 2 KB summary was a tenth of a
    parse worker's time per entry (bench/poll_bench.py)."""
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.split())


# -- entries --------------------------------------------------------------------------------


@dataclass
class _Suspicion:
    """Which entries' text a bad charset may have garbled: all of them when the feed was
    decoded against its declaration, else those showing a replacement character."""

    everything: bool = False
    replaced: bool = False

    def of(self, title: str, summary: str) -> bool:
        return self.everything or (self.replaced and ("\ufffd" in title or "\ufffd" in summary))


@dataclass
class _DateCounters:
    """Counts instead of one warning per entry, so a dateless feed logs one line, not forty."""

    missing: int = 0
    implausible: int = 0

    def warnings(self, total: int) -> list[str]:
        found = []
        if self.missing:
            found.append(f"{self.missing} of {total} entries have no usable date; first-seen time used")
        if self.implausible:
            found.append(
                f"{self.implausible} of {total} entries have an implausible date (far future or before 1995); "
                "first-seen time used"
            )
        return found


def _entry(
    raw: Any,
    base_url: str,
    fetched_at: datetime,
    feed_language: str | None,
    dates: _DateCounters,
    suspect: _Suspicion,
) -> ParsedEntry:
    # dict.get, not FeedParserDict.get: the latter's alias handling costs ~4 µs per lookup,
    # and every key read here is one feedparser stores under its own name.
    get = dict.get
    link = safe_link(get(raw, "link"), base_url)
    title = _text_of(get(raw, "title"), get(raw, "title_detail"))
    summary = _summary(raw)
    published, is_fallback = _published(raw, fetched_at, dates)
    author = _text_of(get(raw, "author"), get(raw, "author_detail")) or None
    return ParsedEntry(
        guid=_guid(raw, link, title, summary),
        link=link,
        title=title,
        summary=summary,
        published=published,
        published_is_fallback=is_fallback,
        author=author,
        language=_entry_language(raw) or feed_language,
        text_suspect=suspect.of(title, summary),
    )


def safe_link(link: str | None, base_url: str) -> str | None:
    """An absolute http(s) URL or None: a relative link is resolved against the feed's URL,
    anything else (javascript:, data:, mailto:) would be unsafe or useless in a digest."""
    if not link:
        return None
    link = link.strip()
    if not link:
        return None
    if _ABSOLUTE_HTTP.match(link) and "[" not in link:
        # The common case, already absolute http(s) with a host: urljoin and urlsplit would
        # only re-parse it (they cost more than the rest of the entry's post-processing).
        scheme, rest = link.split(":", 1)
        return link if scheme in _ALLOWED_SCHEMES else f"{scheme.lower()}:{rest}"
    try:
        absolute = urljoin(base_url, link) if base_url else link
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in _ALLOWED_SCHEMES or not parts.netloc:
        return None
    return absolute


def _summary(raw: Any) -> str:
    """The longest text the entry offers: full content when present, else the summary."""
    best = ""
    for content in dict.get(raw, "content") or ():
        text = _text_of(dict.get(content, "value"), content)
        if len(text) > len(best):
            best = text
    if not best:
        best = _text_of(dict.get(raw, "summary"), dict.get(raw, "summary_detail"))
    return best


def _text_of(value: str | None, detail: Mapping[str, Any] | None) -> str:
    if not value:
        return ""
    content_type = (detail and dict.get(detail, "type")) or "text/html"
    # feedparser calls a title "text/plain" when it holds tags outside its HTML whitelist
    # (<script>, <iframe>), which is exactly when the markup must not reach a digest.
    if content_type in _HTML_TYPES or ("<" in value and _TAG_LIKE.search(value)):
        return html_to_text(value)
    return plain_text(value)


def _published(raw: Any, fetched_at: datetime, dates: _DateCounters) -> tuple[datetime, bool]:
    get = dict.get
    parsed = get(raw, "published_parsed") or get(raw, "updated_parsed") or get(raw, "created_parsed")
    if parsed is None:
        dates.missing += 1
        return fetched_at, True
    # feedparser normalises every date it understands to a UTC struct_time.
    published = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    if published > fetched_at + FUTURE_TOLERANCE or published < EARLIEST_PLAUSIBLE:
        dates.implausible += 1
        return fetched_at, True
    return published, False


def _guid(raw: Any, link: str | None, title: str, summary: str) -> str:
    """The publisher's id when it gives one, else the link; a content hash only as the last
    resort, since an edited headline then looks like a new entry."""
    guid = (dict.get(raw, "id") or "").strip()
    if guid:
        return guid
    if link:
        return link
    digest = hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()
    return f"sha256:{digest}"


def _entry_language(raw: Any) -> str | None:
    for key in ("language", "dc_language"):
        if value := _language(dict.get(raw, key)):
            return value
    for key in ("title_detail", "summary_detail"):
        detail = dict.get(raw, key)
        if detail and (value := _language(dict.get(detail, "language"))):
            return value
    return None


def _language(value: str | None) -> str | None:
    """A BCP 47 tag in lower case ("ar", "ar-kw"); feeds write "AR", "ar_KW", " ar "."""
    if not value:
        return None
    value = value.strip().replace("_", "-").lower()
    return value or None


# -- feed-level diagnostics -----------------------------------------------------------------


def _response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case keys so feedparser sees the HTTP charset. The base URL is deliberately not
    passed as Content-Location: feedparser would then urljoin every element (10% of its time);
    safe_link() resolves the one link per entry we keep instead."""
    return {key.lower(): value for key, value in headers.items() if key.lower() not in _TRANSFER_HEADERS}


def _bozo_warning(result: Any) -> str:
    exc = result.get("bozo_exception")
    return f"feed is not well-formed, parsed leniently: {_describe(exc)}" if exc else "feed is not well-formed"


def _no_entries_message(body: bytes, result: Any, headers: Mapping[str, str]) -> str:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower() or "no content type"
    if not body.strip():
        return "empty response body"
    if _looks_like_html(body, result):
        return f"not a feed: the server sent an HTML page ({content_type}) instead of RSS/Atom"
    if result.get("version"):
        return f"feed has no entries ({_version_name(result['version'])})"
    if result.get("bozo"):
        return f"not a feed: unparseable content ({content_type}): {_describe(result.get('bozo_exception'))}"
    return f"not a feed: no RSS/Atom/RDF root element ({content_type})"


def _looks_like_html(body: bytes, result: Any) -> bool:
    if result.get("version"):
        return False
    head = body[:2048].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head or b"<body" in head


def _version_name(version: str) -> str:
    return {"rss090": "RSS 0.90", "rss10": "RSS 1.0 / RDF", "rss20": "RSS 2.0", "atom10": "Atom 1.0"}.get(
        version, version
    )


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
