"""Arabic text normalisation and offset-keeping tokenisation.

News feeds spell the same word many ways (hamza forms, ى/ي, ة/ه, Persian letters, tatweel,
diacritics, HTML entities, Eastern digits). Everything that compares Arabic text, the relevance
rules and the near-duplicate detector alike, goes through `normalize` so that those spellings
compare equal. `tokenize` keeps character offsets into the original text because analysts see
matches highlighted in what the outlet actually published.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["Token", "normalize", "tokenize", "NormalizedText", "normalize_aligned", "parse_ordinal", "ORDINALS"]

# Private-use character standing in for a deleted character, so that a first normalisation
# pass keeps the original length and offsets stay trivially aligned.
FILLER = "\ue000"

_DIACRITICS = (
    [chr(c) for c in range(0x064B, 0x0660)]  # fathatan … sukun, maddah/hamza above/below, …
    + ["\u0670"]  # superscript (dagger) alef
    + [chr(c) for c in range(0x0610, 0x061B)]  # honorific and Quranic signs
    + [chr(c) for c in range(0x06D6, 0x06DD)]
    + [chr(c) for c in range(0x06DF, 0x06E5)]
    + [chr(c) for c in range(0x06E7, 0x06E9)]
    + [chr(c) for c in range(0x06EA, 0x06EE)]
    + [chr(c) for c in range(0x08D3, 0x0900) if c != 0x08E2]
)
_INVISIBLE = [
    "\u0640",  # tatweel
    "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad",  # zero-width, soft hyphen
    "\u200e", "\u200f", "\u061c",  # LRM, RLM, Arabic letter mark
    *[chr(c) for c in range(0x202A, 0x202F)],  # embeddings and overrides
    *[chr(c) for c in range(0x2066, 0x206A)],  # isolates
    FILLER,
]
_LETTERS = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ٲ": "ا", "ٳ": "ا",
    "ى": "ي", "ی": "ي", "ې": "ي", "ۍ": "ي", "ێ": "ي",
    "ة": "ه", "ۀ": "ه", "ھ": "ه", "ە": "ه", "ہ": "ه", "ۃ": "ه",
    "ک": "ك", "ڪ": "ك",
}
_SPACES = ["\u00a0", "\u2007", "\u202f", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004",
           "\u2005", "\u2006", "\u2008", "\u2009", "\u200a", "\u205f", "\u3000", "\t", "\r", "\n",
           "\x0b", "\x0c", "\x85", "\u2028", "\u2029"]

# Same-length table: every character maps to exactly one character (deletions become FILLER).
_ALIGNED_TABLE: dict[int, str] = {}
_ALIGNED_TABLE.update({ord(c): FILLER for c in _DIACRITICS + _INVISIBLE})
_ALIGNED_TABLE.update({ord(k): v for k, v in _LETTERS.items()})
_ALIGNED_TABLE.update({0x0660 + i: str(i) for i in range(10)})  # Arabic-Indic digits
_ALIGNED_TABLE.update({0x06F0 + i: str(i) for i in range(10)})  # Persian digits
_ALIGNED_TABLE.update({ord(c): " " for c in _SPACES})
_ALIGNED_TABLE.update({ord(c): chr(ord(c) + 32) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})

# Deleting table for the plain `normalize`.
_TABLE: dict[int, str | None] = {k: (None if v == FILLER else v) for k, v in _ALIGNED_TABLE.items()}

_ENTITY = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};?)")
_WHITESPACE = re.compile(r"\s+")
_NEEDS_WORK = re.compile(
    "[&\u00a0-\U0010ffff]"
)  # anything beyond plain ASCII may need the slow checks


def _decode_entities(text: str) -> str:
    """Decode entities to a fixpoint: feeds double-escape (&amp;quot;), and normalize must be idempotent."""
    for _ in range(5):
        if "&" not in text:
            return text
        decoded = html.unescape(text)
        if decoded == text:
            return text
        text = decoded
    return text


def normalize(text: str) -> str:
    """Canonical form for comparing Arabic news text: same word, same string.

    Entities decoded, NFKC, diacritics/tatweel/zero-width/bidi dropped, letter variants unified,
    Eastern digits to ASCII, case folded, whitespace collapsed to single spaces.
    """
    for _ in range(3):  # a second round only when one step re-enabled another (rare)
        result = _normalize_once(text)
        if result == text:
            return result
        text = result
    return text


def _normalize_once(text: str) -> str:
    text = _decode_entities(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.translate(_TABLE).casefold()
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text).translate(_TABLE)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised word and where it sits in the original text (end exclusive)."""

    norm: str
    start: int
    end: int


class NormalizedText:
    """Normalised text (single-spaced not guaranteed) plus a map back to original offsets.

    Matching runs regexes over `text`; `original_span` turns a match span back into the span of
    the original characters, which is what the user highlights.
    """

    __slots__ = ("text", "_breaks", "_shifts", "_offsets", "_original_length")

    def __init__(self, text: str, breaks: list[int], shifts: list[int], offsets: list[int] | None, original_length: int):
        self.text = text
        self._breaks = breaks  # normalised positions where the shift changes
        self._shifts = shifts  # original - normalised from that break on
        self._offsets = offsets  # full per-character map (slow path only)
        self._original_length = original_length

    def original_index(self, index: int) -> int:
        """Original position of the normalised character at `index`."""
        if self._offsets is not None:
            return self._offsets[index]
        if not self._breaks:
            return index
        k = bisect_right(self._breaks, index)
        return index + (self._shifts[k - 1] if k else 0)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) covering normalised [start, end); end > start for non-empty spans."""
        if end <= start:
            position = self.original_index(start) if start < len(self.text) else self._original_length
            return position, position
        return self.original_index(start), self.original_index(end - 1) + 1


def normalize_aligned(text: str) -> NormalizedText:
    """Normalise like `normalize` (without collapsing whitespace) but keep a map to `text`.

    Fast path: entities are decoded in place padded with FILLER, a same-length table does the
    rest, so the only misalignment comes from deleted characters, recorded as a few breakpoints.
    Text that NFKC or case folding would change in length takes a per-character slow path.
    """
    aligned = text
    if "&" in aligned:
        aligned = _decode_entities_in_place(aligned)
    aligned = aligned.translate(_ALIGNED_TABLE)
    if not aligned.isascii():
        folded = aligned.casefold()
        if len(folded) != len(aligned) or not unicodedata.is_normalized("NFKC", folded):
            return _normalize_slow(aligned, len(text))
        aligned = folded
    if FILLER not in aligned:
        return NormalizedText(aligned, [], [], None, len(text))
    breaks: list[int] = []
    shifts: list[int] = []
    removed = 0
    pieces: list[str] = []
    previous_end = 0
    for run in re.finditer(FILLER + "+", aligned):
        pieces.append(aligned[previous_end:run.start()])
        removed += run.end() - run.start()
        breaks.append(run.start() - (removed - (run.end() - run.start())))
        shifts.append(removed)
        previous_end = run.end()
    pieces.append(aligned[previous_end:])
    return NormalizedText("".join(pieces), breaks, shifts, None, len(text))


def _decode_entities_in_place(text: str) -> str:
    """Replace each entity by its decoded text padded with FILLER to the entity's length."""

    def pad(match: re.Match[str]) -> str:
        raw = match.group()
        decoded = _decode_entities(raw)
        if decoded == raw or len(decoded) > len(raw):
            return raw
        return FILLER * (len(raw) - len(decoded)) + decoded

    for _ in range(5):  # double-escaped entities decode one layer per round
        decoded = _ENTITY.sub(pad, text)
        if decoded == text:
            break
        text = decoded
    return text


def _normalize_slow(aligned: str, original_length: int) -> NormalizedText:
    out: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(aligned):
        if char == FILLER:
            continue
        piece = unicodedata.normalize("NFKC", char).translate(_TABLE).casefold()
        for produced in piece:
            out.append(produced)
            offsets.append(index)
    return NormalizedText("".join(out), [], [], offsets, original_length)


_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[Token]:
    """Words of `text`, normalised, with their spans in `text` (for highlighting)."""
    normalized = normalize_aligned(text)
    tokens = []
    for match in _WORD.finditer(normalized.text):
        start, end = normalized.original_span(match.start(), match.end())
        tokens.append(Token(match.group(), start, end))
    return tokens


# --- Arabic ordinals -------------------------------------------------------------------------
# No library gets these right, so the table is written out and tested. Keys are normalised
# (ة → ه, ى → ي, hamza-free alef) and without the article, since clitics vary.

_UNITS_M = ["اول", "ثاني", "ثالث", "رابع", "خامس", "سادس", "سابع", "ثامن", "تاسع", "عاشر"]
_UNITS_F = ["اولي", "ثانيه", "ثالثه", "رابعه", "خامسه", "سادسه", "سابعه", "ثامنه", "تاسعه", "عاشره"]
_TENS = {20: "عشرون", 30: "ثلاثون", 40: "اربعون", 50: "خمسون"}


def _ordinal_table() -> dict[str, int]:
    table: dict[str, int] = {}
    for value, (masc, fem) in enumerate(zip(_UNITS_M, _UNITS_F), start=1):
        table[masc] = value
        table[fem] = value
    # 11–19: الحادي عشر / الحادية عشرة, الثاني عشر / الثانية عشرة, … (عشر and عشرة both seen)
    for unit in range(1, 10):
        masc = "حادي" if unit == 1 else _UNITS_M[unit - 1]
        fem = "حاديه" if unit == 1 else _UNITS_F[unit - 1]
        for first in (masc, fem):
            for ten in ("عشر", "عشره"):
                table[f"{first} {ten}"] = 10 + unit
    # 20, 21 …: العشرون, الحادي والعشرون / الحادية والعشرين …
    for tens_value, tens_word in _TENS.items():
        for tens_form in (tens_word, tens_word[:-2] + "ين"):
            table[tens_form] = tens_value
            for unit in range(1, 10):
                masc = "حادي" if unit == 1 else _UNITS_M[unit - 1]
                fem = "حاديه" if unit == 1 else _UNITS_F[unit - 1]
                for first in {masc, fem, _UNITS_M[unit - 1], _UNITS_F[unit - 1]}:
                    table[f"{first} {tens_form}"] = tens_value + unit
    return table


ORDINALS: dict[str, int] = _ordinal_table()
_TENS_FORMS = frozenset(form for word in _TENS.values() for form in (word, word[:-2] + "ين"))
_ORDINAL_WORDS = sorted({word for key in ORDINALS for word in key.split()}, key=len, reverse=True)


def parse_ordinal(words: str) -> int | None:
    """The number of an ordinal phrase such as «الحادية عشرة» or «الثانية والعشرين», else None.

    The article (ال, لل, بال…) is optional on each word, as in running text.
    """
    parts = [_strip_article(word) for word in normalize(words).split()]
    if not parts:
        return None
    return ORDINALS.get(" ".join(parts))


def _strip_article(word: str) -> str:
    for prefix in ("وال", "بال", "فال", "لل", "ال"):
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            rest = word[len(prefix):]
            return rest
    if word.startswith("و") and len(word) >= 4 and word[1:] in _TENS_FORMS:
        return word[1:]
    return word
