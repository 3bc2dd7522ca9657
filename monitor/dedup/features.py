"""The features of one article: normalised-text fingerprint, MinHash signature and LSH bands,
keywords, and their compact serialisation for the database."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from monitor.arabic import analysed_prefix, normalize, normalized_words
from monitor.dedup.config import DedupConfig
from monitor.dedup.events import event_kind
from monitor.dedup.urls import canonical_url
from monitor.language import text_language


# -- text features --------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _normalised_words(title: str, body: str) -> list[str]:
    """The words of each field's analysed prefix (monitor.arabic.ANALYSED_CHARS, as for the
    rules): the features of a 10 MB feed item then cost what a long article's do."""
    return normalized_words(f"{analysed_prefix(title)}\n{analysed_prefix(body)}")


def content_fingerprint(title: str, body: str) -> str:
    """Exact-copy key: equal for texts that differ only in spelling noise, spacing, markup
    or punctuation, because all of those disappear in the normalised word sequence."""
    return _fingerprint(title, body, _normalised_words(title, body))


def _fingerprint(title: str, body: str, words: list[str]) -> str:
    """Text beyond the analysed prefix is not normalised but still hashed as it is, so two
    huge items that differ only there are not taken for copies of each other."""
    key = _fingerprint_of_words(words)
    tails = [text[len(analysed_prefix(text)):] for text in (title, body)]
    if any(tails):
        data = "\n".join([key, *tails]).encode("utf-8", "surrogatepass")
        key = hashlib.blake2b(data, digest_size=16).hexdigest()
    return key


def _verbatim_fingerprint(title: str, body: str, canonical: str | None) -> str:
    """The exact-copy key of an article no watch could flag (the rules' prefilter rejected
    it): its text as published, not its normalised words. Copies of such an article are
    rejected too (the prefilter reads normalised text), so the key only links irrelevant
    articles among themselves, where a copy that differs in spelling noise may go unlinked;
    normalising was a fifth of a parse worker's time per article (bench/poll_bench.py). Its
    prefix keeps it from ever equalling a normalised key."""
    if _WORD.search(title) is None and _WORD.search(body) is None:
        return _empty_fingerprint(canonical)
    data = f"{title}\n{body}".encode("utf-8", "surrogatepass")
    return "verbatim:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def _empty_fingerprint(canonical: str | None) -> str:
    """An article without a word of text (a bare link) is keyed by its URL: otherwise every
    empty item would be a copy of the first one."""
    return "empty:" + _fingerprint_of_words([canonical or ""])


def _fingerprint_of_words(words: list[str]) -> str:
    return hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()


_U64 = np.uint64
_MIX_MULT = _U64(0x9E3779B97F4A7C15)


def _fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's finaliser: spreads polynomial n-gram codes over all 64 bits."""
    values = values ^ (values >> _U64(33))
    values = values * _U64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> _U64(33))
    values = values * _U64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> _U64(33))


def _ngram_codes(units: np.ndarray, size: int) -> np.ndarray:
    """Hash every run of `size` consecutive units at once (vectorised polynomial hash):
    stable across processes, unlike hash(), because band hashes are stored in the database."""
    count = len(units) - size + 1
    if count <= 0:
        count, size = (1, len(units)) if len(units) else (0, 0)
    codes = np.zeros(count, dtype=_U64)
    with np.errstate(over="ignore"):
        for offset in range(size):
            codes = codes * _MIX_MULT + units[offset : offset + count]
        return _fmix64(codes)


def shingle_hashes(words: list[str], config: DedupConfig) -> np.ndarray:
    """32-bit hashes of the distinct shingles of a normalised word sequence."""
    if config.shingle == "char":
        text = "".join(words)
        units = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(_U64)
    else:
        units = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=_U64, count=len(words))
    codes = _ngram_codes(units, config.shingle_size)
    return np.unique((codes >> _U64(32)).astype(np.uint32))


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations for (num_perm, seed), shaped for broadcasting: an
    odd multiplier and an offset per permutation, drawn as datasketch 2 draws them (a test
    checks the values against datasketch's own). Drawn here rather than taken from a
    datasketch MinHash: importing datasketch loads scipy, ~60 MB and ~1.6 s of CPU in every
    parse worker before its first signature."""
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a[None, :], b[None, :]


_EMPTY = np.iinfo(np.uint32).max  # every value of the signature of an empty shingle set
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))


def minhash_signature(hashes: np.ndarray, config: DedupConfig) -> np.ndarray:
    """datasketch's affine32 MinHash (MurmurHash3 pre-mix, then h -> a*h + b mod 2^32 per
    permutation) applied to already-hashed shingles in one numpy expression: the same values
    as MinHash(hashfunc=int).update_batch (a test checks it) without a Python call per shingle,
    which was 40% of the per-article cost."""
    a, b = _permutations(config.num_perm, config.seed)
    if not len(hashes):
        return np.full(config.num_perm, _EMPTY, dtype=np.uint32)
    s1, m1, s2, m2 = _FMIX32
    values = hashes.astype(np.uint32)
    with np.errstate(over="ignore"):
        values = values ^ (values >> s1)
        values = values * m1
        values = values ^ (values >> s2)
        values = values * m2
        values = (values ^ (values >> s1))[:, None]
        return (values * a + b).min(axis=0)


def band_hashes(signature: np.ndarray, config: DedupConfig) -> list[int]:
    """One signed 64-bit value per LSH band (fits a SQL BIGINT): two articles sharing any
    band value are near-duplicate candidates."""
    rows = signature.astype(_U64).reshape(config.bands, config.rows)
    with np.errstate(over="ignore"):
        codes = np.arange(1, config.bands + 1, dtype=_U64)
        for column in range(config.rows):
            codes = _fmix64(codes * _MIX_MULT + rows[:, column])
    return codes.view(np.int64).tolist()


_STOPWORDS = frozenset(
    normalize(" ".join(
        """في من على إلى الى عن مع أن ان إن التي الذي الذين هذا هذه ذلك تلك كان كانت يكون قد لقد
        ما لا لم لن أو او ثم كما بين بعد قبل خلال حول حيث عند عبر منذ حتى أي كل بعض غير أكثر
        اليوم أمس امس وقال قال وأضاف أضاف وأكد أكد وأوضح أوضح وأشار أشار مشيرا موضحا مؤكدا
        إلى ضمن نحو لدى تم يتم وكان وقد وفي ومن وعلى فيما فيها فيه به بها له لها عليه عليها
        هو هي هم نحن كما لكن بينما أيضا ايضا وذلك وهو وهي التى الذى هناك هنا""".split()
    )).split()
)
# Light clitic stripping so that «والكويت», «بالكويت» and «الكويت» count as one keyword.
_PREFIXES = ("وبال", "وال", "بال", "فال", "كال", "لل", "ال")


@lru_cache(maxsize=200_000)
def _keyword(word: str) -> str | None:
    if word.isdigit():
        return word if len(word) <= 4 else None
    if word in _STOPWORDS or len(word) < 3:
        return None
    for prefix in _PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
            word = word[len(prefix):]
            break
    else:
        # The conjunction و alone is stripped only from long words; ب/ل/ف are left alone
        # because too many names begin with them (بومبيو، بلينكن، بريطانيا).
        if word[0] == "و" and len(word) >= 5:
            word = word[1:]
    return None if word in _STOPWORDS else word


def keyword_set(words: list[str], limit: int) -> frozenset[str]:
    """The content words that characterise an article (names, places, numbers, topics):
    the most frequent first, the longer (rarer) ones breaking ties."""
    counts: Counter[str] = Counter()
    for word, count in Counter(words).items():
        keyword = _keyword(word)
        if keyword:
            counts[keyword] += count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], -len(item[0]), item[0]))
    return frozenset(word for word, _ in ranked[:limit])


# -- the features of one article ------------------------------------------------------------


@dataclass(frozen=True)
class ArticleFeatures:
    """Everything dedup needs about one article, computed once (in the parse workers) and
    stored with it, so later comparisons never re-read or re-normalise the text."""

    canonical_url: str | None
    fingerprint: str
    signature: bytes  # num_perm little-endian uint32 MinHash values
    band_hashes: tuple[int, ...]
    keywords: frozenset[str]
    published: datetime
    watch: str | None = None
    round: int | None = None
    # What joins write-ups across languages and keeps a round's happenings apart (see
    # dedup.events and dedup.decide): the text's language, the kind of happening, and its
    # subject: the topics the rules find in the headline and lead, tags that are the same
    # in every language.
    language: str | None = None
    event: str | None = None
    subject: frozenset[str] = frozenset()

    @property
    def signature_array(self) -> np.ndarray:
        return np.frombuffer(self.signature, dtype="<u4")


class _StoryFacts(NamedTuple):
    language: str | None
    event: str | None
    subject: frozenset[str]


def compute_features(
    title: str,
    body: str,
    url: str | None,
    published: datetime,
    watch: str | None = None,
    round: int | None = None,
    config: DedupConfig | None = None,
    near_duplicates: bool = True,
    language: str | None = None,
    subject: Iterable[str] = (),
) -> ArticleFeatures:
    """Everything dedup needs, from the text as published (normalisation happens here).

    An article without a word of text (a bare link) gets no band hashes and a fingerprint
    keyed by its URL: otherwise every empty item would be a copy of the first one.
    With `near_duplicates=False` (the poller passes it for articles no watch could flag)
    only the exact keys are computed, from the text as published (_verbatim_fingerprint):
    the MinHash is most of the cost of a 2 KB article, and near-copy links only matter for
    what may be announced. The kind of happening is read only for articles of a watch, the
    only ones grouped into stories by content.
    """
    config = config or DedupConfig()
    title, body = title or "", body or ""
    canonical = canonical_url(url) if url else None
    story = _StoryFacts(
        language=text_language(title, body, language),
        event=event_kind(title, body) if watch is not None else None,
        subject=frozenset(subject),
    )
    if not near_duplicates:
        # No signature at all (it resembles nothing: estimated_jaccard gives 0.0).
        fingerprint = _verbatim_fingerprint(title, body, canonical)
        return ArticleFeatures(canonical, fingerprint, b"", (), frozenset(), _aware(published), watch, round, *story)
    words = _normalised_words(title, body)
    if not words:
        fingerprint = _empty_fingerprint(canonical)
        return ArticleFeatures(canonical, fingerprint, b"", (), frozenset(), _aware(published), watch, round, *story)
    fingerprint = _fingerprint(title, body, words)
    signature = minhash_signature(shingle_hashes(words, config), config)
    return ArticleFeatures(
        canonical_url=canonical,
        fingerprint=fingerprint,
        signature=signature.astype("<u4").tobytes(),
        band_hashes=tuple(band_hashes(signature, config)),
        keywords=keyword_set(words, config.max_keywords),
        published=_aware(published),
        watch=watch,
        round=round,
        language=story.language,
        event=story.event,
        subject=story.subject,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_FEATURES_VERSION = 1


def features_to_bytes(features: ArticleFeatures) -> bytes:
    """Compact, versioned, pickle-free storage form (the store keeps it in a BLOB)."""
    if _is_bare(features):
        return _bare_features_bytes(features)
    return _general_features_bytes(features)


def _is_bare(features: ArticleFeatures) -> bool:
    return not (
        features.band_hashes or features.keywords or features.subject or features.signature
        or features.watch is not None or features.round is not None or features.event is not None
    )


_json_string = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) writes


def _bare_features_bytes(features: ArticleFeatures) -> bytes:
    """features_to_bytes of an article no watch could concern (most of a feed: only exact
    keys, nothing to sort or list), written directly: json.dumps' dict walk was a twentieth
    of a parse worker's time per entry. A test compares the bytes with the general form."""
    url, language = features.canonical_url, features.language
    header = (
        f'{{"v":{_FEATURES_VERSION},"url":{"null" if url is None else _json_string(url)},'
        f'"fp":{_json_string(features.fingerprint)},"bands":[],"kw":[],'
        f'"pub":{_json_string(features.published.isoformat())},"watch":null,"round":null,'
        f'"lang":{"null" if language is None else _json_string(language)},"event":null,"subject":[]}}'
    ).encode("utf-8")
    return struct.pack("<I", len(header)) + header


def _general_features_bytes(features: ArticleFeatures) -> bytes:
    header = json.dumps(
        {
            "v": _FEATURES_VERSION,
            "url": features.canonical_url,
            "fp": features.fingerprint,
            "bands": list(features.band_hashes),
            "kw": sorted(features.keywords),
            "pub": features.published.isoformat(),
            "watch": features.watch,
            "round": features.round,
            "lang": features.language,
            "event": features.event,
            "subject": sorted(features.subject),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return struct.pack("<I", len(header)) + header + features.signature


def features_from_bytes(data: bytes) -> ArticleFeatures:
    (length,) = struct.unpack_from("<I", data)
    header = json.loads(data[4 : 4 + length].decode("utf-8"))
    if header.get("v") != _FEATURES_VERSION:
        raise ValueError(f"unsupported features version {header.get('v')!r}")
    return ArticleFeatures(
        canonical_url=header["url"],
        fingerprint=header["fp"],
        signature=bytes(data[4 + length :]),
        band_hashes=tuple(header["bands"]),
        keywords=frozenset(header["kw"]),
        published=datetime.fromisoformat(header["pub"]),
        watch=header["watch"],
        round=header["round"],
        # Absent from features stored before stories knew languages and happenings.
        language=header.get("lang"),
        event=header.get("event"),
        subject=frozenset(header.get("subject", ())),
    )
