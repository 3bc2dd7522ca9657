"""Sitemap bytes → entries: urlset, sitemap index, Google News, plain text, gzip. Pure: no I/O.

Why not ultimate-sitemap-parser (USP 1.8.1, the library issue #9 suggests)? It can parse a
string it is handed (`usp.tree.sitemap_from_str`, with hardened expat that refuses DOCTYPE and
ENTITY), but measured against what the poller needs it falls short:
- a sitemap index loses its children's <lastmod> (`IndexXMLSitemap` keeps URLs only), so the
  newest child sitemaps cannot be followed first, and relative child URLs are dropped;
- one <url> with an empty <loc> or empty <news:title> raises inside its expat handler and
  ends the parse: every URL after it is lost (tests/test_sitemap.py holds such a sitemap);
- it stops at the first XML error, where lxml's recovering parser reads on;
- no bound on the number of <url>: it builds an object per URL before we could stop, and logs
  a stdlib warning per bad priority or changefreq (50,000 lines for one broken sitemap);
- `news:language` is dropped unless the entry also has a parseable publication date.
So this module reads the XML with lxml's iterparse (entities not resolved, no network, no
huge trees, recovery on), one <url> at a time with the element cleared behind it, so memory
stays flat and the work stops after `max_urls`.
"""

from __future__ import annotations

import codecs
import html
import io
import re
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import structlog
from lxml import etree

from monitor.sources import charset
from monitor.sources.parse import EARLIEST_PLAUSIBLE, FUTURE_TOLERANCE, ParsedEntry, safe_link
from monitor.sources.urltitle import title_from_url

log = structlog.get_logger(__name__)

# The sitemaps.org limit for one uncompressed sitemap; a .xml.gz inflating beyond it is a
# bomb or not a sitemap, and inflation stops there whatever the compression ratio.
MAX_INFLATED = 50 * 1024 * 1024
_INFLATE_CHUNK = 256 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_FEED_ROOTS = frozenset({"rss", "feed", "rdf", "channel"})
_URL_LINE = re.compile(r"\Ahttps?://\S+\Z", re.IGNORECASE)
_YEAR_OR_MONTH = re.compile(r"\A(\d{4})(?:-(\d{2}))?\Z")


@dataclass(frozen=True)
class ParsedSitemap:
    entries: tuple[ParsedEntry, ...]  # a urlset: one per distinct <loc>, newest first, undated last
    sitemaps: tuple[str, ...]  # a sitemap index: child sitemap URLs, newest <lastmod> first, undated last
    warnings: tuple[str, ...]
    error: str | None  # nothing usable: "not a sitemap: ..." etc.


@dataclass(frozen=True)
class _Options:
    base_url: str
    fetched_at: datetime
    language: str | None
    include: re.Pattern[str] | None
    cutoff: datetime | None
    max_urls: int


@dataclass
class _Tally:
    """Counts instead of one warning per URL, so a broken sitemap logs a line, not 50,000."""

    unsafe: int = 0
    undated: int = 0
    implausible: int = 0
    total: int = 0
    truncated: bool = False
    seen: set[str] = field(default_factory=set)

    def warnings(self, options: _Options, what: str) -> list[str]:
        found = []
        if self.unsafe:
            found.append(f"{self.unsafe} {what} with no usable http(s) <loc> skipped")
        if self.undated:
            found.append(f"{self.undated} of {self.total} {what} have no usable date; first-seen time used")
        if self.implausible:
            found.append(
                f"{self.implausible} of {self.total} {what} have an implausible date (far future or before 1995); "
                "first-seen time used"
            )
        if self.truncated:
            found.append(f"sitemap has more than {options.max_urls} {what}: only the first {options.max_urls} read")
        return found


class _NotASitemap(Exception):
    """The body is something else; the message says what, for the user."""


def parse_sitemap(
    body: bytes,
    *,
    base_url: str,
    fetched_at: datetime,
    default_language: str | None,
    include: re.Pattern[str] | None = None,
    max_age: timedelta | None = None,
    max_urls: int = 50_000,
) -> ParsedSitemap:
    """Parse one sitemap response body (already without its Content-Encoding). Never raises
    for bad input: nothing usable comes back with `error`, a damaged sitemap with `warnings`.

    `include` keeps only page URLs it matches (child sitemaps of an index are all kept);
    `max_age` drops pages, and child sitemaps, dated before `fetched_at - max_age`."""
    options = _Options(
        base_url=base_url,
        fetched_at=fetched_at,
        language=normalise_language(default_language),
        include=include,
        cutoff=fetched_at - max_age if max_age is not None else None,
        max_urls=max(max_urls, 0),
    )
    try:
        body, truncated = _inflated(body)
        result = _parse(body, options)
    except _NotASitemap as exc:
        return ParsedSitemap(entries=(), sitemaps=(), warnings=(), error=f"not a sitemap: {exc}")
    if truncated:
        return replace(result, warnings=("the gzip body is truncated: read what inflated", *result.warnings))
    return result


def _parse(body: bytes, options: _Options) -> ParsedSitemap:
    start = _content_start(body)
    if not start:
        raise _NotASitemap("empty response body")
    if b"\x00" in body[:1024] and not body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _NotASitemap("binary content, neither XML nor a list of URLs")
    if _looks_like_html(start):
        raise _NotASitemap("the server sent an HTML page")
    if start.startswith(b"<"):
        return _parse_xml(body, options)
    return _parse_text(body, options)


# -- gzip -------------------------------------------------------------------------------------


def _inflated(body: bytes) -> tuple[bytes, bool]:
    """A .xml.gz served without Content-Encoding arrives compressed: inflate it here, in
    bounded pieces, so a gzip bomb costs at most MAX_INFLATED bytes of memory. The flag says
    the stream ended early (a cut download): what inflated is still worth reading."""
    if not body.startswith(_GZIP_MAGIC):
        return body, False
    pieces: list[bytes] = []
    size = 0
    data = body
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        while data:
            piece = inflater.decompress(data, _INFLATE_CHUNK)
            size += len(piece)
            if size > MAX_INFLATED:
                raise _NotASitemap(f"the gzip body inflates to more than {MAX_INFLATED // (1024 * 1024)} MB")
            pieces.append(piece)
            data = inflater.unconsumed_tail
            if inflater.eof:
                data = inflater.unused_data  # concatenated gzip members are legal
                if not data.startswith(_GZIP_MAGIC):
                    break
                inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    except zlib.error as exc:
        raise _NotASitemap(f"corrupt gzip body ({exc})") from None
    inflated = b"".join(pieces)
    if not inflater.eof and not inflated.strip():
        raise _NotASitemap("corrupt gzip body (truncated before any content)")
    return inflated, not inflater.eof


def _content_start(body: bytes) -> bytes:
    head = body[:4096]
    for bom in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if head.startswith(bom):
            head = head[len(bom) :]
            if bom is not codecs.BOM_UTF8:
                head = head.decode("utf-16", "replace").encode("utf-8", "replace")
            break
    return head.lstrip()


def _looks_like_html(start: bytes) -> bool:
    lowered = start[:1024].lower()
    return lowered.startswith((b"<!doctype html", b"<html")) or (
        not lowered.startswith(b"<?xml") and (b"<html" in lowered or b"<body" in lowered)
    )


# -- XML --------------------------------------------------------------------------------------


def _parse_xml(body: bytes, options: _Options) -> ParsedSitemap:
    decoded = charset.prepare(body, {})
    warnings = [decoded.warning] if decoded.warning else []
    events = etree.iterparse(
        io.BytesIO(decoded.body),
        events=("end",),
        # Only the items reach Python: each is read and cleared when it closes.
        tag=("{*}url", "{*}sitemap"),
        recover=True,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    reader = _XmlReader(options, suspect=decoded.replaced > 0)
    try:
        reader.read(events)
    except etree.LxmlError as exc:  # recovery gave up; keep what came before
        reader.failure = str(exc)
    if reader.root is None:
        detail = reader.failure or _first_error(events)
        raise _NotASitemap(f"unparseable XML ({detail})" if detail else "no XML element found")
    if reader.root in _FEED_ROOTS:
        raise _NotASitemap('this is an RSS/Atom feed: configure it with type "rss"')
    if reader.root == "html":
        raise _NotASitemap("the server sent an HTML page")
    if reader.root not in ("urlset", "sitemapindex"):
        raise _NotASitemap(f"the XML root element is <{reader.root}>, not <urlset> or <sitemapindex>")
    if damage := reader.failure or _first_error(events):
        if "Premature end" in damage:
            reader.drop_cut_item()
        if not (reader.entries or reader.children):
            raise _NotASitemap(f"unparseable XML ({damage})")
        warnings.append(f"sitemap is not well-formed XML, read up to the damage: {damage}")
    what = "URLs" if reader.root == "urlset" else "child sitemaps"
    warnings.extend(reader.tally.warnings(options, what))
    if not reader.tally.total:
        warnings.append(f"the sitemap lists no {what}")
    if reader.root == "urlset":
        entries = _newest_first(reader.entries)
        return ParsedSitemap(entries=entries, sitemaps=(), warnings=tuple(warnings), error=None)
    return ParsedSitemap(entries=(), sitemaps=_children_newest_first(reader.children), warnings=tuple(warnings), error=None)


def _first_error(events: etree.iterparse) -> str | None:
    """The first error libxml2 reported, if any. Namespace complaints are not damage: real
    sitemaps use `news:` without declaring it, and local names are matched anyway."""
    for entry in events.error_log:
        if entry.domain_name != "NAMESPACE":
            return f"line {entry.line}: {entry.message}"
    return None


class _XmlReader:
    """Walks iterparse's end events, handling each <url> or <sitemap> when it closes and then
    clearing it, so a 50 MB sitemap never sits in memory as a tree."""

    def __init__(self, options: _Options, *, suspect: bool) -> None:
        self.options = options
        self.suspect = suspect
        self.root: str | None = None
        self.failure: str | None = None
        self.entries: list[ParsedEntry] = []
        self.children: list[tuple[str, datetime | None]] = []
        self.tally = _Tally()
        self.last_item_kept = False

    def drop_cut_item(self) -> None:
        """A body cut mid-<url> (a truncated download) leaves the last item closed by
        recovery with a half title or a half URL: better not stored than stored wrong."""
        if self.last_item_kept:
            if self.entries:
                self.entries.pop()
            elif self.children:
                self.children.pop()

    def read(self, events: etree.iterparse) -> None:
        item_name = ""
        for _, element in events:
            if self.root is None:
                self.root = local_name(element.getroottree().getroot().tag)
                item_name = {"urlset": "url", "sitemapindex": "sitemap"}.get(self.root, "")
            if local_name(element.tag) != item_name:
                continue  # a <url> in an index or a <sitemap> in a urlset: not ours
            if self.tally.total >= self.options.max_urls:
                self.tally.truncated = True
                return
            self.tally.total += 1
            kept = len(self.entries) + len(self.children)
            if item_name == "url":
                self._page(element)
            else:
                self._child_sitemap(element)
            self.last_item_kept = len(self.entries) + len(self.children) > kept
            _release(element)
        if self.root is None and events.root is not None:
            self.root = local_name(events.root.tag)

    def _page(self, element: etree._Element) -> None:
        fields = _page_fields(element)
        link = _link(fields.get("loc"), self.options.base_url)
        if link is None:
            self.tally.unsafe += 1
            return
        if link in self.tally.seen or (self.options.include and not self.options.include.search(link)):
            return
        self.tally.seen.add(link)
        published, fallback = self._date(fields.get("publication_date"), fields.get("lastmod"))
        if self.options.cutoff is not None and not fallback and published < self.options.cutoff:
            return
        title = fields.get("title") or title_from_url(link)
        self.entries.append(
            ParsedEntry(
                guid=link,
                link=link,
                title=title,
                summary="",
                published=published,
                published_is_fallback=fallback,
                author=None,
                language=normalise_language(fields.get("language")) or self.options.language,
                text_suspect=self.suspect and "\ufffd" in title,
            )
        )

    def _child_sitemap(self, element: etree._Element) -> None:
        fields = _page_fields(element)
        link = _link(fields.get("loc"), self.options.base_url)
        if link is None:
            self.tally.unsafe += 1
            return
        if link in self.tally.seen:
            return
        self.tally.seen.add(link)
        modified, fallback = self._date(None, fields.get("lastmod"))
        if self.options.cutoff is not None and not fallback and modified < self.options.cutoff:
            return
        self.children.append((link, None if fallback else modified))

    def _date(self, *candidates: str | None) -> tuple[datetime, bool]:
        """The first candidate that parses and is plausible, else the fetch time."""
        given = [text for text in candidates if text]
        if not given:
            self.tally.undated += 1
            return self.options.fetched_at, True
        for text in given:
            parsed = parse_w3c_date(text)
            if parsed is not None and plausible(parsed, self.options.fetched_at):
                return parsed, False
        self.tally.implausible += 1
        return self.options.fetched_at, True


def _page_fields(element: etree._Element) -> dict[str, str]:
    """The texts of a <url>'s (or <sitemap>'s) own children and of its news:news block, by
    local name. Only these levels: an image:image or video:video child has a <loc> of its own
    that must not replace the page's."""
    fields: dict[str, str] = {}
    for child in element:
        name = local_name(child.tag)
        if name == "news":
            for news_child in child:
                news_name = local_name(news_child.tag)
                if news_name == "publication":
                    for publication_child in news_child:
                        if local_name(publication_child.tag) == "language":
                            fields.setdefault("language", _text(publication_child))
                elif news_name in ("title", "publication_date"):
                    fields.setdefault(news_name, _text(news_child))
        elif name in ("loc", "lastmod"):
            fields.setdefault(name, _text(child))
    return fields


def _text(element: etree._Element) -> str:
    """Whitespace collapsed; HTML entities that generators write undeclared (&nbsp;, &rsquo;)
    and that recovery kept as text are decoded too."""
    text = " ".join("".join(element.itertext()).split())
    return " ".join(html.unescape(text).split()) if "&" in text else text


def _link(loc: str | None, base_url: str) -> str | None:
    if not loc:
        return None
    return safe_link(loc.replace(" ", "%20"), base_url)


def _release(element: etree._Element) -> None:
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def local_name(tag: object) -> str:
    """`{ns}name`, `prefix:name` (an undeclared prefix, kept as is by recovery) or `name`,
    lower-cased: sitemaps in the wild use the right namespace, a wrong one, or none."""
    if not isinstance(tag, str):
        return ""  # a comment, processing instruction or unresolved entity
    return tag.rpartition("}")[2].rpartition(":")[2].lower()


def _newest_first(entries: list[ParsedEntry]) -> tuple[ParsedEntry, ...]:
    """Dated entries newest first; undated ones (first-seen time) after them in sitemap order,
    so a dateless sitemap keeps the publisher's own order."""
    dated = sorted((entry for entry in entries if not entry.published_is_fallback), key=lambda e: e.published, reverse=True)
    return tuple(dated) + tuple(entry for entry in entries if entry.published_is_fallback)


def _children_newest_first(children: list[tuple[str, datetime | None]]) -> tuple[str, ...]:
    dated = sorted(((when, url) for url, when in children if when is not None), key=lambda pair: pair[0], reverse=True)
    return tuple(url for _, url in dated) + tuple(url for url, when in children if when is None)


# -- plain text -------------------------------------------------------------------------------


def _parse_text(body: bytes, options: _Options) -> ParsedSitemap:
    """The sitemaps.org text format: one absolute URL per line, nothing else."""
    text = body.decode("utf-8-sig", "replace")
    tally = _Tally()
    entries: list[ParsedEntry] = []
    other_lines = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not _URL_LINE.match(line):
            other_lines += 1
            continue
        if tally.total >= options.max_urls:
            tally.truncated = True
            break
        tally.total += 1
        link = safe_link(line, options.base_url)
        if link is None:
            tally.unsafe += 1
            continue
        if link in tally.seen or (options.include and not options.include.search(link)):
            continue
        tally.seen.add(link)
        entries.append(_undated_entry(link, options))
    if not tally.total:
        raise _NotASitemap("no <urlset> or <sitemapindex>, and no line is an http(s) URL")
    warnings = tally.warnings(options, "URLs")
    if other_lines:
        warnings.append(f"{other_lines} lines of the text sitemap are not http(s) URLs; skipped")
    return ParsedSitemap(entries=tuple(entries), sitemaps=(), warnings=tuple(warnings), error=None)


def _undated_entry(link: str, options: _Options) -> ParsedEntry:
    return ParsedEntry(
        guid=link,
        link=link,
        title=title_from_url(link),
        summary="",
        published=options.fetched_at,
        published_is_fallback=True,
        author=None,
        language=options.language,
    )


# -- shared with monitor.sources.listing ------------------------------------------------------


def parse_w3c_date(text: str) -> datetime | None:
    """A W3C datetime ("2025-11-12", "2025-11-12T08:30+03:00", "…Z", with fractions) in UTC,
    naive times read as UTC; RFC 822 dates too, which some sitemap generators write. None
    when it is neither."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        parsed = _year_or_month(text) or _rfc822(text)
        if parsed is None:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _year_or_month(text: str) -> datetime | None:
    match = _YEAR_OR_MONTH.match(text)
    if not match:
        return None
    try:
        return datetime(int(match.group(1)), int(match.group(2) or 1), 1, tzinfo=UTC)
    except ValueError:
        return None


def _rfc822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def plausible(when: datetime, fetched_at: datetime) -> bool:
    """Not a placeholder epoch and not far in the future (see monitor.sources.parse)."""
    return EARLIEST_PLAUSIBLE <= when <= fetched_at + FUTURE_TOLERANCE


def normalise_language(value: str | None) -> str | None:
    """A BCP 47 tag in lower case ("ar", "ar-kw"); publishers write "AR", "ar_KW", " ar "."""
    if not value:
        return None
    value = value.strip().replace("_", "-").lower()
    return value[:35] or None
