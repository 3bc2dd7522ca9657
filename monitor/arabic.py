"""Arabic text normalisation and offset-keeping tokenisation.

News feeds spell the same word many ways (hamza forms, ى/ي, ة/ه, Persian letters, tatweel,
diacritics, HTML entities, Eastern digits). Everything that compares Arabic text, the relevance
rules and the near-duplicate detector alike, goes through `normalize` so that those spellings
compare equal. Tokenisation keeps character offsets into the original text because analysts
see matches highlighted in what the outlet actually published.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate, chain, count
from operator import add

__all__ = [
    "ANALYSED_CHARS",
    "ORDINALS",
    "Token",
    "TokenizedText",
    "analysed_prefix",
    "chunk_words",
    "normalize",
    "parse_ordinal",
    "tokenize",
]

# How much of a field the relevance rules and the near-duplicate detector read. A feed item
# may carry up to `[polling] max_bytes` (10 MB) of text, and one worker must not spend more
# than a fraction of a second on it. News articles are far shorter: in the development
# corpora (dev.jsonl, dev-en.jsonl) the longest relevant article has a 3,932-character body,
# and where the title does not name the dialogue the body names it within its first 1,001
# characters; long reports and transcripts stay well under 100,000. Beyond this many
# characters nothing is analysed (README, "Relevance rules"); bench/text_bench.py measures
# the cost of a full prefix (a few hundredths of a second).
ANALYSED_CHARS = 100_000
_WORD_CUT_LOOKBACK = 64  # characters searched back for a space, so no word is cut in two


def analysed_prefix(text: str, limit: int = ANALYSED_CHARS) -> str:
    """The part of a field that is analysed: all of it up to `limit` characters, else its
    first `limit` characters less the word cut at the end (a cut word could match a shorter
    term: «الكويتية» cut to «الكويت»). Offsets into the prefix are offsets into the text."""
    if len(text) <= limit:
        return text
    for end in range(limit, max(0, limit - _WORD_CUT_LOOKBACK), -1):
        if text[end].isspace() or text[end - 1].isspace():
            return text[:end]
    return text[:limit]

# Private-use character that pads a decoded HTML entity to the entity's length, so that
# offsets into the decoded text are offsets into the original.
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

_TABLE: dict[int, str | None] = {}
_TABLE.update({ord(c): None for c in _DIACRITICS + _INVISIBLE})
_TABLE.update({ord(k): v for k, v in _LETTERS.items()})
_TABLE.update({0x0660 + i: str(i) for i in range(10)})  # Arabic-Indic digits
_TABLE.update({0x06F0 + i: str(i) for i in range(10)})  # Persian digits

# The table never maps a character to another key of the table, so applying it character by
# character (str.translate) and replacing each key everywhere in turn give the same text.
assert not {ord(c) for v in _TABLE.values() if v for c in v} & _TABLE.keys()
_TABLE_KEYS = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]")


def _apply_table(text: str) -> str:
    """str.translate does a dict look-up per character, and raises and clears a KeyError for
    each one the table lacks (most of them): ~130 µs for a 2 KB article. Only a handful of
    distinct characters ever need mapping; finding them and replacing each in one C pass is
    3–10× faster, and a no-op costs one regex scan."""
    for char in set(_TABLE_KEYS.findall(text)):
        text = text.replace(char, _TABLE[ord(char)] or "")
    return text


_ENTITY = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};?)")


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
        if result == text or _left_unchanged_by_another_round(result):
            return result
        text = result
    return text


def _left_unchanged_by_another_round(text: str) -> bool:
    """True when _normalize_once(text) would return text, checked for a fraction of the cost
    of running it (it used to run twice on every article). Only for its own output, whose
    whitespace is already collapsed."""
    return (
        ("&" not in text or _ENTITY.search(text) is None)
        and unicodedata.is_normalized("NFKC", text)
        and _TABLE_KEYS.search(text) is None
        and text.casefold() == text
    )


def _normalize_once(text: str) -> str:
    text = _decode_entities(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = _apply_table(text).casefold()
    if not unicodedata.is_normalized("NFKC", text):
        text = _apply_table(unicodedata.normalize("NFKC", text))
    return " ".join(text.split())


_WORD = re.compile(r"\w+")


def normalized_words(text: str) -> list[str]:
    """The words (runs of word characters) of normalize(text): what fingerprints and
    shingles are made of.

    normalize() decodes entities, then applies NFKC, casefolding and the table, which change
    one character (or a canonical sequence, never across whitespace) at a time and never turn
    anything into a word character's neighbour across a space: so each whitespace-separated
    token's words can be computed alone (NFKC may split a token: «¨» becomes a space and a
    combining mark). News repeats its words, so they are cached by token and most tokens of
    an article are looked up, not recomputed (2-4x faster on 2 KB articles than applying each
    step to the whole text). A token that is not plain (an entity left after decoding, a
    casefolded form that NFKC would change) sends the whole text down the plain definition;
    tests/test_arabic.py checks the two agree."""
    original = text
    if "&" in text:
        text = _decode_entities(text)  # normalize(text) starts the same way
    if "&" not in text:
        cache = _TOKEN_WORDS
        words: list[str] = []
        for token in text.split():
            found = cache.get(token)
            if found is None:
                found = _token_words(token)
                if found is None:
                    break
                if len(cache) >= _TOKEN_CACHE_SIZE:
                    cache.clear()
                cache[token] = found
            words.extend(found)
        else:
            return words
    return _WORD.findall(normalize(original))


# token (whitespace-free, entities decoded) -> its normalised words; cleared when full: a
# long-running process meets an open vocabulary (every article brings new numbers and names)
# and each entry costs ~225 bytes. 20,000 holds the words news repeats (40,000 of poll_bench's
# articles: 99.6 % of tokens found, 99.7 % at 100,000) within ~5 MB; at 100,000 (~22 MB) the
# daemon's search indexer took an hour of new articles to fill it, its RSS creeping meanwhile.
_TOKEN_WORDS: dict[str, tuple[str, ...]] = {}
_TOKEN_CACHE_SIZE = 20_000


def _token_words(token: str) -> tuple[str, ...] | None:
    """The normalised words of one token, or None when it needs the plain definition."""
    composed = token if unicodedata.is_normalized("NFKC", token) else unicodedata.normalize("NFKC", token)
    words: list[str] = []
    for part in composed.split():
        folded = part.casefold()
        if "&" in folded or not unicodedata.is_normalized("NFKC", folded):
            return None
        applied = _apply_table(folded)
        if applied.isalnum():
            words.append(applied)
        else:
            words.extend(_WORD.findall(applied))
    return tuple(words)


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


@dataclass(frozen=True, slots=True)
class Token:
    """A normalised word and where it sits in the original text (end exclusive)."""

    norm: str
    start: int
    end: int


# Characters that belong to a word in raw text: letters, digits, combining marks (harakat),
# tatweel, zero-width (non-)joiners and the entity padding. Everything else separates words.
_RAW_WORD = re.compile(
    "[\\w\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u08d3-\u08ff\u00ad\u200c\u200d" + FILLER + "]+"
)
_LONG_WHITESPACE = re.compile(r"\s{2,}")
_TRIM_INVISIBLE = "\u00ad\u200c\u200d\u0640"
_TRIM = FILLER + _TRIM_INVISIBLE

# Whitespace-separated chunks recur constantly in news text, so their analysis is cached:
# chunk → normalised words, and chunk → the words' spans inside the chunk.
_CHUNK_WORDS: dict[str, tuple[str, ...]] = {}
_CHUNK_SPANS: dict[str, tuple[tuple[int, int], ...]] = {}
_CACHE_LIMIT = 50_000  # chunks, ~420 bytes each in the two caches: ~21 MB at most (170 MB at 400,000)


def _analyse_chunk(chunk: str) -> None:
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for match in _RAW_WORD.finditer(chunk):
        raw = match.group()
        norm = normalize(raw)
        if not norm:
            continue
        # Leading padding belongs to an entity that decoded into this word's first letter, so
        # the word's span covers it; trailing padding belongs to the next (punctuation) entity.
        lead = len(raw) - len(raw.lstrip(_TRIM_INVISIBLE))
        tail = len(raw) - len(raw.rstrip(_TRIM))
        span = (match.start() + lead, match.end() - tail)
        for part in norm.split(" "):  # NFKC may expand a ligature into several words
            words.append(part)
            spans.append(span)
    _CHUNK_WORDS[chunk] = tuple(words)
    _CHUNK_SPANS[chunk] = tuple(spans)


def _spans_of(chunk: str) -> tuple[tuple[int, int], ...]:
    spans = _CHUNK_SPANS.get(chunk)
    if spans is None:  # the cache was cleared since this text was split
        _analyse_chunk(chunk)
        spans = _CHUNK_SPANS[chunk]
    return spans


def chunk_words(chunk: str) -> tuple[str, ...]:
    """Normalised words of a whitespace-free piece of raw text (cached)."""
    words = _CHUNK_WORDS.get(chunk)
    if words is None:
        _analyse_chunk(chunk)
        words = _CHUNK_WORDS[chunk]
    return words


class TokenizedText:
    """The normalised words of a text, with their spans in the original computed on demand.

    Built for throughput: the text is split on whitespace into chunks, and each distinct chunk
    is analysed once (cached), so the common path runs at C speed; a regex tokenizer over
    Unicode text costs several times more. Word lists, word numbering and offsets are only
    built when asked for (for the few articles and words that match a rule).
    """

    __slots__ = ("original", "chunks", "words", "_per_chunk", "_padded", "_first_word", "_starts")

    def __init__(self, text: str):
        self.original = text
        padded = _decode_entities_in_place(text) if "&" in text else text
        self._padded = padded
        self.chunks: list[str] = padded.split()
        per_chunk = list(map(_CHUNK_WORDS.get, self.chunks))
        if None in per_chunk:
            missing = set(self.chunks).difference(_CHUNK_WORDS)
            if len(_CHUNK_WORDS) + len(missing) > _CACHE_LIMIT:
                _CHUNK_WORDS.clear()  # a crude bound; the vocabulary of news refills it quickly
                _CHUNK_SPANS.clear()
                missing = set(self.chunks)
            for chunk in missing:
                _analyse_chunk(chunk)
            per_chunk = list(map(chunk_words, self.chunks))  # safe even if another thread clears
        self._per_chunk = per_chunk
        self.words: list[str] = list(chain.from_iterable(per_chunk))
        self._first_word: list[int] | None = None
        self._starts: tuple[list[int], list[int], list[int]] | None = None

    def __len__(self) -> int:
        return len(self.words)

    def span(self, index: int) -> tuple[int, int]:
        """Original [start, end) of word `index`."""
        if self._first_word is None:
            self._first_word = list(accumulate(map(len, self._per_chunk), initial=0))
        # chunks without words repeat the same first-word index: the last of them holds the word
        chunk_index = bisect_right(self._first_word, index) - 1
        offset = index - self._first_word[chunk_index]
        chunk_start = self._chunk_start(chunk_index)
        start, end = _spans_of(self.chunks[chunk_index])[offset]
        return chunk_start + start, chunk_start + end

    def _chunk_start(self, chunk_index: int) -> int:
        if self._starts is None:
            self._starts = self._locate_chunks()
        lower, breaks, extras = self._starts
        return lower[chunk_index] + extras[bisect_right(breaks, chunk_index) - 1]

    def _locate_chunks(self) -> tuple[list[int], list[int], list[int]]:
        """Chunk starts as (starts if single-space separated, breakpoints, extra offsets).

        Chunk i starts at the length of the chunks before it plus one separator each, plus the
        extra length of the longer whitespace runs before it (paragraph breaks), of which an
        article has only a few.
        """
        text = self._padded
        lower = list(map(add, accumulate(map(len, self.chunks), initial=0), count()))
        leading = len(text) - len(text.lstrip())
        breaks, extras = [0], [leading]
        extra = leading
        for run in _LONG_WHITESPACE.finditer(text, leading):
            if run.end() == len(text):
                break
            extra += run.end() - run.start() - 1
            # the chunk after this run starts at run.end(), i.e. at lower = run.end() - extra
            breaks.append(bisect_left(lower, run.end() - extra))
            extras.append(extra)
        return lower, breaks, extras


def tokenize(text: str) -> list[Token]:
    """Words of `text`, normalised, with their spans in `text` (for highlighting)."""
    tokenized = TokenizedText(text)
    return [Token(word, *tokenized.span(i)) for i, word in enumerate(tokenized.words)]


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
