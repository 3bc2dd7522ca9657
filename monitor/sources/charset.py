"""Which bytes the feed parsers get, when a feed's bytes do not match its declared charset.

feedparser decodes with the declared charset and, when that fails on even one byte, with
whatever chardet guesses for the whole document: an Arabic UTF-8 feed with one bad byte came
out as IBM855 (every title mojibake), flagged nowhere. Here a feed declared as UTF-8 (or
undeclared but plainly UTF-8) with a few invalid bytes is UTF-8 with U+FFFD at those places,
handed to the parsers as clean UTF-8, so the fast path and feedparser agree by construction;
and a guess that would leave less Arabic readable than the declaration loses to it.

Whatever is still decoded against its declaration is reported (`against_declaration`) so
that monitor.sources.parse can warn and mark the entries suspect. Pure: no I/O.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass

import chardet
from feedparser.encodings import parse_content_type

# At least this many valid multi-byte characters per invalid byte make a document UTF-8 with
# a few bad bytes. Arabic in windows-1256 read as UTF-8 has almost no valid sequence; a Latin
# text in windows-1252 has none.
_MOSTLY = 20
_XML_ENCODING = re.compile(rb"""\A<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_INVALID = re.compile("[\udc80-\udcff]+")  # the bytes surrogateescape could not decode
_ARABIC = re.compile("[\u0621-\u064a\u0660-\u0669\u066e-\u06d3\u06fa-\u06ff]")
_WIDE_BOMS = (codecs.BOM_UTF32_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)


@dataclass(frozen=True)
class Decoded:
    """The body the parsers get and what was done to it."""

    body: bytes
    declared: tuple[str, ...]  # codec names the response declared (header, XML, BOM)
    replaced: int = 0  # invalid bytes now U+FFFD
    warning: str | None = None
    valid_utf8: bool = False  # `body` is known to decode as UTF-8 (so no parser checks again)


def prepare(body: bytes, headers: Mapping[str, str]) -> Decoded:
    """`body` as is, or re-encoded as clean UTF-8 with U+FFFD for its invalid bytes when the
    declaration (or, undeclared, the bytes themselves) say UTF-8. `headers` have lower-case
    keys. The common case (valid UTF-8, or a declared non-UTF-8 charset) costs one decode."""
    declared = declarations(body, headers)
    utf8_declared = "utf-8" in declared
    if not utf8_declared and any(name != "ascii" for name in declared):
        return Decoded(body, declared)  # declared as something else: the declaration decides
    if body.startswith(_WIDE_BOMS) or b"\x00" in body[:4]:
        return Decoded(body, declared)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return Decoded(body, declared, valid_utf8=True)
    text = body.decode("utf-8", "surrogateescape")
    runs = list(_INVALID.finditer(text))
    invalid = sum(run.end() - run.start() for run in runs)
    # Each valid multi-byte character is one character for two to four bytes; each invalid
    # byte one for one: the difference counts the valid ones (at least once each).
    multibyte = len(body) - len(text)
    if multibyte < invalid * _MOSTLY:
        if not utf8_declared or _another_declaration_fits(body, declared) or not _guess_loses(body):
            return Decoded(body, declared)
        how = "its charset guess would leave less Arabic readable"
    else:
        if utf8_declared:
            how = "declared as UTF-8"
        else:
            how = f"{'declared US-ASCII' if declared else 'undeclared'}, detected as UTF-8"
    first = len(text[: runs[0].start()].encode("utf-8", "surrogateescape"))
    line = body.count(b"\n", 0, first) + 1
    plural = "byte" if invalid == 1 else "bytes"
    warning = (
        f"{invalid} invalid UTF-8 {plural} (first at line {line}, byte {first}) replaced with U+FFFD "
        f"({how}); entries showing U+FFFD are marked suspect until the feed sends them clean"
    )
    repaired = body.decode("utf-8", "replace").encode("utf-8")
    return Decoded(repaired, declared, replaced=invalid, warning=warning, valid_utf8=True)


def declarations(body: bytes, headers: Mapping[str, str]) -> tuple[str, ...]:
    """The charsets the response names, as codec names (unknown names are no declaration):
    the Content-Type charset, the XML declaration's encoding, a UTF-8 byte order mark."""
    found: list[str] = []
    _, charset = parse_content_type(headers.get("content-type") or "")
    if body.startswith(codecs.BOM_UTF8):
        found.append("utf-8")
        body = body[3:]
    match = _XML_ENCODING.match(body)
    for name in (charset, match.group(1).decode("ascii") if match else ""):
        if name and (codec := _codec(name)) and codec not in found:
            found.append(codec)
    return tuple(found)


def against_declaration(decoded: Decoded, used: str | None) -> str | None:
    """A warning when the parser decoded with a charset the response did not declare (its
    own guess), or None. A superset of the declared charset is no conflict: text that decodes
    as ASCII reads the same in any charset a feed declares, US-ASCII declared is extended by
    whatever was used, and feedparser reads GB2312 as its superset GB18030 on purpose."""
    if not decoded.declared or not used:
        return None
    codec = _codec(used)
    if codec is None or codec == "ascii" or codec in decoded.declared or "ascii" in decoded.declared:
        return None
    if codec == "gb18030" and "gb2312" in decoded.declared:
        return None
    names = " / ".join(decoded.declared)
    return (
        f"decoded as {codec} against the declared {names} (the bytes are not valid {names}): "
        "the text may be garbled; its entries are marked suspect until the feed is fixed"
    )


def _another_declaration_fits(body: bytes, declared: tuple[str, ...]) -> bool:
    """Whether a charset the response also declares (the XML prolog against the header, say)
    decodes the bytes: feedparser then uses it, which is no guess."""
    for name in declared:
        if name != "utf-8":
            try:
                body.decode(name)
            except UnicodeDecodeError:
                continue
            return True
    return False


def _guess_loses(body: bytes) -> bool:
    """Whether chardet's guess (feedparser's fallback) reads less Arabic than UTF-8 with
    replacement characters: a guess that makes Arabic unreadable must not win."""
    guess = _codec(chardet.detect(body).get("encoding") or "")
    if guess is None or guess == "utf-8":
        return True
    utf8 = _arabic_letters(body.decode("utf-8", "replace"))
    return utf8 > _arabic_letters(body.decode(guess, "replace"))


def _arabic_letters(text: str) -> int:
    return len(text) - len(_ARABIC.sub("", text))


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None
