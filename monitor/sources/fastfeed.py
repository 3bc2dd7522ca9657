"""A fast path for the commonest feed shape; feedparser stays the parser of record.

feedparser (a SAX parser calling Python handlers for every element and text chunk) is the
cold-path bottleneck. For a whitelisted subset of RSS 2.0 in UTF-8, this module parses the
same bytes with the C-accelerated ElementTree and builds the very dicts feedparser would have
built for the keys monitor.sources.parse reads, so monitor/sources/parse.py's post-processing (text, links,
dates, guids) stays the one source of truth. Anything outside the subset returns None and the
caller runs feedparser.

The subset and every value rule below were read off feedparser 6.0.14 (api.py, encodings.py,
mixin.py, parsers/strict.py, namespaces/_base.py, dc.py, mediarss.py) and are checked by
differential tests (tests/test_fastfeed.py); where feedparser has a function for a decision
(encoding detection, date parsing, "looks like HTML", author e-mail splitting, URI fixing)
it is called rather than re-implemented, so the two paths agree by construction. Another
feedparser version disables the fast path until someone re-runs those tests and re-reads
the source.

Pure: no I/O. Hostile input stays contained: a document with a DOCTYPE or ENTITY declaration
never reaches expat here, so no entity is ever expanded.
"""

from __future__ import annotations

import codecs
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import feedparser
from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8, parse_content_type
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from feedparser.util import FeedParserDict

# The feedparser release whose element mapping this module mirrors (see the module docstring).
VERIFIED_FEEDPARSER = "6.0.14"

_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ATOM = "{http://www.w3.org/2005/Atom}"
_SY = "{http://purl.org/rss/1.0/modules/syndication/}"
_WFW = "{http://wellformedweb.org/CommentAPI/}"
_SLASH = "{http://purl.org/rss/1.0/modules/slash/}"
_MEDIA_NAMESPACES = ("{http://search.yahoo.com/mrss/}", "{http://search.yahoo.com/mrss}")

_NO_ATTRIBUTES: frozenset[str] = frozenset()
_MEDIA_CONTENT_ATTRIBUTES = frozenset(
    {"url", "type", "medium", "width", "height", "fileSize", "duration", "isDefault", "expression", "bitrate"}
)


@dataclass(frozen=True)
class _Child:
    """How one whitelisted child element is read. `slot` names what it sets among the keys
    monitor.sources.parse reads; "" means it sets none of them (feedparser stores it under keys we
    never read, and it changes no parser state those keys depend on), so it may repeat."""

    slot: str
    attributes: frozenset[str] = _NO_ATTRIBUTES


# Children of <item>. Each must be a leaf: in feedparser a child element inside e.g. <title>
# switches the content type to XHTML, and media:content's own children (media:title,
# media:description) would overwrite the entry's title and summary.
_ITEM_CHILDREN: dict[str, _Child] = {
    "title": _Child("title"),
    "link": _Child("link"),
    "description": _Child("description"),
    "guid": _Child("guid", frozenset({"isPermaLink"})),
    "pubDate": _Child("published"),
    _DC + "date": _Child("updated"),
    # Both go through feedparser's _start_author/_end_author; one slot so that two of them
    # (where feedparser keeps the last name but the first author_detail) stay ineligible.
    "author": _Child("author"),
    _DC + "creator": _Child("author"),
    _CONTENT + "encoded": _Child("content"),
    "category": _Child("", frozenset({"domain"})),
    "comments": _Child(""),
    "enclosure": _Child("", frozenset({"url", "length", "type"})),
    _WFW + "commentRss": _Child(""),
    _SLASH + "comments": _Child(""),
    **{ns + "content": _Child("", _MEDIA_CONTENT_ATTRIBUTES) for ns in _MEDIA_NAMESPACES},
    **{ns + "thumbnail": _Child("", frozenset({"url", "width", "height"})) for ns in _MEDIA_NAMESPACES},
}

# Children of <channel> other than <item>. Only title and language feed a key we read.
_CHANNEL_CHILDREN: dict[str, _Child] = {
    "title": _Child("title"),
    "language": _Child("language"),
    "link": _Child(""),
    "description": _Child(""),
    "copyright": _Child(""),
    "managingEditor": _Child(""),
    "webMaster": _Child(""),
    "pubDate": _Child(""),
    "lastBuildDate": _Child(""),
    "category": _Child("", frozenset({"domain"})),
    "generator": _Child(""),
    "docs": _Child(""),
    "ttl": _Child(""),
    "image": _Child(""),
    _ATOM + "link": _Child("", frozenset({"href", "rel", "type"})),
    _SY + "updatePeriod": _Child(""),
    _SY + "updateFrequency": _Child(""),
    _SY + "updateBase": _Child(""),
}
_IMAGE_CHILDREN = frozenset({"url", "title", "link", "width", "height", "description"})

# Namespace handling. feedparser maps a namespace URI (lower-cased) to its own prefix, and
# also remaps every prefix a document declares for a known URI: a document binding, say,
# "dc" to the content module's URI would make feedparser read dc:creator as something else.
_KNOWN_NAMESPACES = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_CANONICAL_PREFIXES = frozenset(_KNOWN_NAMESPACES.values()) - {""}
# Declaring these switches feedparser's idea of the version (RSS 1.0, RSS 0.90).
_VERSION_NAMESPACES = frozenset({"http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/"})

_DECLARATIONS = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECLARATION = re.compile(rb"\A<\?xml[^>]*?>")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_C1_CONTROLS = re.compile(r"[\x80-\x9f]")
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_CHARACTER_REFERENCE = re.compile(rb"&#")
# feedparser's repair of "?a=1&b;=2" in links (mixin.py, _FeedParserMixin.pop).
_LINK_ENTITY = re.compile("&([A-Za-z0-9_]+);")
_looks_like_html = _FeedParserMixin.looks_like_html


def parse_fast(body: bytes, headers: Mapping[str, str], *, valid_utf8: bool = False) -> FeedParserDict | None:
    """feedparser's result for `body` as far as monitor.sources.parse reads it, or None when the
    document is outside the verified subset (the caller must then run feedparser).

    `headers` are the lower-cased response headers exactly as monitor.sources.parse passes them to
    feedparser; they decide the encoding and, via Content-Language, the languages."""
    if feedparser.__version__ != VERIFIED_FEEDPARSER or _DECLARATIONS.search(body):
        return None
    document = _utf8_document(body, headers, valid_utf8=valid_utf8)
    if document is None:
        return None
    data, bozo = document
    parsed = _parse_xml(data)
    if parsed is None or not _namespaces_are_plain(parsed[1]):
        return None
    channel = _rss20_channel(parsed[0])
    if channel is None:
        return None
    built = _Builder(headers.get("content-language"), _may_hold_c1(data)).channel(channel)
    if built is None:
        return None
    feed, entries = built
    result = FeedParserDict(bozo=bozo is not None, entries=entries, feed=feed, version="rss20")
    if bozo is not None:
        result["bozo_exception"] = bozo
    return result


# -- dates -----------------------------------------------------------------------------------

_RFC822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) (?:([+-])(\d{2})(\d{2})|GMT|UT|UTC|Z)\Z"
)
_MONTHS = {name: number for number, name in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def parse_date(value: str) -> time.struct_time | None:
    """feedparser's date parsing (a UTC struct_time, or None), with the form RSS 2.0 feeds
    nearly always use ("Sun, 01 Nov 2026 09:30:00 +0300") read directly: feedparser tries
    its handlers in turn, ~45 us per entry, a tenth of a parse worker's time per item.
    Anything else, or a date that does not exist, goes to feedparser (a test compares)."""
    match = _RFC822.match(value)
    if match is not None:
        day, month, year, hour, minute, second, sign, offset_hours, offset_minutes = match.groups()
        try:
            stamp = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
            if sign:
                offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
                stamp = stamp - offset if sign == "+" else stamp + offset
            return stamp.utctimetuple()
        except (ValueError, OverflowError):
            pass
    return _parse_date(value)


# -- bytes to a UTF-8 document ----------------------------------------------------------------


def _utf8_document(
    body: bytes, headers: Mapping[str, str], *, valid_utf8: bool = False
) -> tuple[bytes, Exception | None] | None:
    """The bytes feedparser's strict parser would see, with the warning it would raise about
    the encoding; None unless every declared charset is UTF-8 and UTF-8 is what feedparser
    settles on. feedparser's own convert_to_utf8 decides, so its warnings are the same.
    `valid_utf8` says the caller has checked that the body decodes (monitor.sources.charset)."""
    if "content-location" in headers or b"\x00" in body:  # NUL: UTF-16/32 or not XML at all
        return None
    bom = body.startswith(codecs.BOM_UTF8)
    head = body[3:] if bom else body
    declaration = _XML_DECLARATION.match(head)
    declared = declaration and _DECLARED_ENCODING.search(declaration.group())
    if declared and not _is_utf8(declared.group(1)):
        return None
    mime, charset = parse_content_type(headers.get("content-type") or "")
    if charset and not _is_utf8(charset):
        return None
    if not valid_utf8:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return None
    ascii = head.isascii()
    # Served as text/* without a charset, non-ASCII text may send feedparser to chardet.
    chardet_possible = mime.startswith("text/") and not charset and not ascii
    if chardet_possible and not (declared or bom):
        # No charset anywhere: RFC 3023 says US-ASCII, the text is not, and feedparser
        # would ask chardet (slow, and not ours to second-guess).
        return None
    info: dict[str, Any] = {}
    probe = None if chardet_possible else _encoding_probe(head, bom, declaration, ascii)
    if probe is None:
        data = convert_to_utf8(dict(headers), body, info)
    else:
        convert_to_utf8(dict(headers), probe, info)
        data = _UTF8_DECLARATION + (head[declaration.end() :] if declaration else b"\n" + head)
    encoding = info.get("encoding")
    if not encoding or not _is_utf8(encoding, ascii_ok=True):
        return None
    return data, info.get("bozo_exception")


# What convert_to_utf8 puts in place of the document's XML declaration, or before it.
_UTF8_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>"


def _encoding_probe(head: bytes, bom: bool, declaration: re.Match[bytes] | None, ascii: bool) -> bytes | None:
    """A few bytes on which feedparser's convert_to_utf8 decides the encoding and its warning
    as on the whole valid UTF-8 document, or None when it might not. It decides from the
    headers, the byte order mark, an `encoding=` on the first line (its regex reads the
    whole first line, not just the XML declaration) and whether the bytes decode: for valid
    UTF-8 they decode as UTF-8, as Latin-1, and as US-ASCII only if they are ASCII (one
    non-ASCII character stands for the rest); chardet, asked when nothing declared decodes,
    would read the whole text, and the caller rules that case out. Decoding, rewriting and
    re-encoding a whole feed was its costliest step after the XML parse (poll_bench: ~12 us
    per entry); its output is the body with feedparser's declaration in place of its own."""
    end = declaration.end() if declaration else 0
    if declaration is not None and not declaration.group().endswith(b"?>"):
        return None
    line_end = head.find(b"\n")
    if head.find(b"encoding=", end, len(head) if line_end == -1 else line_end) != -1:
        return None
    return (codecs.BOM_UTF8 if bom else b"") + head[:end] + (b"" if ascii else "\u00e9".encode())


def _is_utf8(name: str | bytes, *, ascii_ok: bool = False) -> bool:
    """ASCII counts when feedparser decoded with it: those bytes decode alike as UTF-8."""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    try:
        codec = codecs.lookup(name.strip()).name
    except LookupError:
        return False
    return codec == "utf-8" or (ascii_ok and codec == "ascii")


# -- XML --------------------------------------------------------------------------------------


def _parse_xml(data: bytes) -> tuple[ET.Element, list[tuple[str, str]]] | None:
    """Root element and every namespace declaration; None when expat rejects the document
    (feedparser then parses it leniently and says so, which is its job, not ours)."""
    parser = ET.XMLPullParser(events=("start-ns", "start"))
    try:
        parser.feed(data)
        parser.close()
    except ET.ParseError:
        return None
    root = None
    declarations = []
    for event, value in parser.read_events():
        if event == "start-ns":
            declarations.append(value)
        elif root is None:
            root = value
    return (root, declarations) if root is not None else None


def _namespaces_are_plain(declarations: list[tuple[str, str]]) -> bool:
    """No declaration that would change feedparser's version or its element names."""
    for prefix, uri in declarations:
        lowered = uri.lower()
        if lowered in _VERSION_NAMESPACES:
            return False
        canonical = "" if "backend.userland.com/rss" in lowered else _KNOWN_NAMESPACES.get(lowered)
        if canonical is not None and prefix and prefix != canonical and prefix in _CANONICAL_PREFIXES:
            return False
    return True


def _rss20_channel(root: ET.Element) -> ET.Element | None:
    if root.tag != "rss" or root.attrib != {"version": "2.0"} or len(root) != 1:
        return None
    channel = root[0]
    return channel if channel.tag == "channel" and not channel.attrib else None


def _allowed(element: ET.Element, child: _Child | None) -> bool:
    return child is not None and (not element.attrib or element.attrib.keys() <= child.attributes)


def _text(element: ET.Element) -> str:
    """What feedparser's pop() returns for a leaf: its character data (CDATA included,
    comments and processing instructions dropped), stripped, before the repairs below."""
    return (element.text or "").strip()


def _may_hold_c1(data: bytes) -> bool:
    """Whether any text of the document can hold a C1 control (U+0080-U+009F): only as the
    UTF-8 pair C2 80-9F or through a character reference. (feedparser's Latin-1 re-decoding
    cannot create one where there was none: it would need the byte 80-9F, i.e. a C1 control,
    in the text it re-decodes.) Checked once per document, because the per-value test costs
    more than the rest of a long description's handling."""
    return _occurs(b"&", _CHARACTER_REFERENCE, data) or _occurs(b"\xc2", _C1_UTF8, data)


_PAIR_SCAN_LIMIT = 64  # occurrences of the first byte looked at one by one, then one scan


def _occurs(first: bytes, pattern: re.Pattern[bytes], data: bytes) -> bool:
    """`pattern.search(data) is not None` for a pattern that starts with the byte `first`,
    rare in a feed (an Arabic feed's bytes are mostly D8/D9 pairs): finding each `first`
    (memchr) and matching there is a few times faster than the regex's scan of the whole
    document."""
    position = data.find(first)
    for _ in range(_PAIR_SCAN_LIMIT):
        if position == -1:
            return False
        if pattern.match(data, position) is not None:
            return True
        position = data.find(first, position + 1)
    return position != -1 and pattern.search(data, position) is not None


class _Builder:
    """Builds feedparser's dicts for one document; holds what is the same for all its values."""

    def __init__(self, lang: str | None, may_hold_c1: bool) -> None:
        # feedparser's base language is the Content-Language header; push_content writes it
        # into every detail with "_" turned into "-" (xml:lang and lang are not whitelisted).
        self.language = lang.replace("_", "-") if lang else lang
        self.feed_language = self.language if lang else None
        self.may_hold_c1 = may_hold_c1

    def stored(self, text: str) -> str:
        """feedparser's last two repairs of every value (mixin.py, pop): text that is really
        UTF-8 read as Latin-1 is decoded again, and C1 controls become their windows-1252
        characters. Both are no-ops for ASCII."""
        if text.isascii():
            return text
        try:
            text = text.encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        return text.translate(_cp1252) if self.may_hold_c1 and _C1_CONTROLS.search(text) else text

    def channel(self, channel: ET.Element) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The feed dict (title, title_detail, language) and the entries, or None when the
        channel holds an element outside the whitelist."""
        feed: dict[str, Any] = {} if self.feed_language is None else {"language": self.feed_language}
        entries = []
        seen: set[str] = set()
        for element in channel:
            if element.tag == "item":
                entry = self.item(element)
                if entry is None:
                    return None
                entries.append(entry)
                continue
            child = _CHANNEL_CHILDREN.get(element.tag)
            if not _allowed(element, child) or not _leaf_or_image(element):
                return None
            assert child is not None
            if child.slot:
                if child.slot in seen:  # feedparser keeps the first title but the last language
                    return None
                seen.add(child.slot)
            if child.slot == "title":
                feed["title"], feed["title_detail"] = self.title(element)
            elif child.slot == "language":
                feed["language"] = self.stored(_text(element))
        return feed, entries

    def item(self, item: ET.Element) -> dict[str, Any] | None:
        """One entry as feedparser builds it (only the keys monitor.sources.parse reads), or None."""
        if item.attrib:
            return None
        entry: dict[str, Any] = {}
        seen: set[str] = set()
        guid_link: str | None = None
        for element in item:
            child = _ITEM_CHILDREN.get(element.tag)
            if not _allowed(element, child) or len(element):
                return None
            assert child is not None
            slot = child.slot
            if not slot:
                continue
            if slot in seen:
                return None
            seen.add(slot)
            if slot == "title":
                entry["title"], entry["title_detail"] = self.title(element)
            elif slot == "link":
                entry["link"] = self.link(_text(element))
            elif slot == "guid":
                guid_link = self.guid(element, entry)
            elif slot == "description":
                entry["summary"] = value = self.stored(_text(element))
                entry["summary_detail"] = self.detail("text/html", value)
            elif slot == "content":
                entry["content"] = [self.detail("text/html", self.stored(_text(element)))]
            elif slot == "published" or slot == "updated":
                entry[slot] = value = self.stored(_text(element))
                entry[f"{slot}_parsed"] = parse_date(value)
            elif slot == "author":
                _author(self.stored(_text(element)), entry)
        if "summary" not in entry and "content" in entry:
            # _end_content copies the content into a missing summary (without a summary_detail).
            entry["summary"] = entry["content"][0]["value"]
        if guid_link is not None:
            # A permalink guid is the link only when the item has no <link>, wherever it stands.
            entry.setdefault("link", guid_link)
        return entry

    def title(self, element: ET.Element) -> tuple[str, dict[str, Any]]:
        """RSS titles are nominally text/plain; feedparser's own heuristic decides whether this
        one is HTML, on the text before its repairs, as pop() does."""
        text = _text(element)
        content_type = "text/html" if _looks_like_html(text) else "text/plain"
        value = self.stored(text)
        return value, self.detail(content_type, value)

    def detail(self, content_type: str, value: str) -> dict[str, Any]:
        # "base" is the empty base URI: parse_feed passes no Content-Location and xml:base is
        # not whitelisted.
        return {"type": content_type, "language": self.language, "base": "", "value": value}

    def link(self, text: str) -> str:
        """pop() for <link>: feedparser's URI fix-up against the empty base, its repairs, then
        its un-mangling of query strings."""
        value = self.stored(_resolved(text))
        return _LINK_ENTITY.sub(r"&\g<1>", value.replace("&amp;", "&")) if "&" in value else value

    def guid(self, element: ET.Element, entry: dict[str, Any]) -> str | None:
        """Sets the id; returns the link the guid stands for, if it is a permalink
        (isPermaLink absent or exactly "true", as feedparser compares it)."""
        is_link = element.get("isPermaLink", "true") == "true"
        text = _text(element)
        value = self.stored(_resolved(text) if is_link else text)
        entry["id"] = value
        return value if is_link else None


def _leaf_or_image(element: ET.Element) -> bool:
    if not len(element):
        return True
    return element.tag == "image" and all(
        part.tag in _IMAGE_CHILDREN and not part.attrib and not len(part) for part in element
    )


def _resolved(text: str) -> str:
    """feedparser's resolve_uri against the empty base URI. With no base, urljoin returns the
    URI itself and the only change is feedparser's collapsing of the slashes after "scheme://",
    so the call (a regex substitution per link) is skipped when there are none to collapse."""
    return _urljoin("", text) if ":///" in text else text


class _EntryContext:
    """Just enough of a feedparser parser for its _sync_author_detail, which splits an e-mail
    address out of the author into author_detail."""

    __slots__ = ("entry",)

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry

    def _get_context(self) -> dict[str, Any]:
        return self.entry


def _author(value: str, entry: dict[str, Any]) -> None:
    entry["author"] = value
    entry["authors"] = [FeedParserDict()]
    _FeedParserMixin._sync_author_detail(_EntryContext(entry))  # type: ignore[arg-type]
