"""Deduplication and story clustering: one story, one entry, however many outlets.

Three layers, cheapest first:

* exact duplicates: the same canonical URL, or the same fingerprint of the normalised text;
* near duplicates (a syndicated dispatch with a new headline, a trimmed paragraph, other
  spelling): MinHash over character shingles of the normalised text, found through LSH band
  hashes so that checking a new article costs the same with 10 thousand or 10 million stored;
* stories (independent write-ups of one happening): same watch and round where known, close
  in time, and similar enough in content and named entities to one member, and admitted by
  the story as a whole (one stated round, its time span, delivered or not: `story_admits`),
  so that membership never chains across rounds.

Everything here is pure: the store (SQL band table) and the in-memory engine below
(`Clusterer`, used by `monitor cluster`, the evaluation and the tests) share the same
features and decision functions, so they cannot drift apart.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import struct
import sys
import zlib
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlencode, urlsplit, urlunsplit

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.arabic import analysed_prefix, normalize, normalized_words
from monitor.durations import Duration

ArticleId = Hashable

# -- configuration ----------------------------------------------------------------------------


class DedupConfig(BaseModel):
    """The `[dedup]` TOML section.

    The defaults come from bench/eval_dedup.py on ../shared/corpus/dev.jsonl (see the
    figures quoted per field and in bench/README.md, section "Dedup").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Character 6-grams of the normalised text with the spaces removed (`--sweep`): syndicated
    # pairs score >= 0.71, pairs of different events <= 0.19 (median 0.02), and a harsher copy
    # (new headline, last paragraph cut, 5% lost spaces, 2% typos) >= 0.59, where word 3-grams
    # fall to 0.34 and word 5-grams to 0.21. Shorter char n-grams raise the background
    # similarity (char-4: median 0.09, 17x the false LSH candidates), longer ones lose copies.
    shingle: Literal["char", "word"] = "char"
    shingle_size: int = Field(6, ge=2, le=12)
    # 32 bands of 4 rows: a pair at Jaccard 0.59 (the harsh copy above) is a candidate with
    # probability 0.98, at 0.71 with 0.9999; a dev-like archive of 1M yields ~300 false
    # candidates per look-up, each a 128-value comparison. 128 permutations estimate J with
    # a standard error of at most 0.044.
    num_perm: int = Field(128, ge=16, le=1024)
    bands: int = Field(32, ge=1, le=512)
    seed: int = 1
    # Estimated Jaccard at or above which two texts are one dispatch: midway between the
    # highest pair of different events (0.19) and the harsh copies (0.59).
    near_duplicate_threshold: float = Field(0.4, gt=0.0, le=1.0)
    # Stories. On dev every write-up of one event is published within 22 h of the first,
    # and different happenings of one watch and round are >= 88 h apart; story P/R is 1.00/1.00
    # for any window from 24 h to 72 h (the default) and falls to 0.82 precision at 96 h.
    story_window: Duration = timedelta(hours=72)
    # Keyword-set Jaccard floor for two articles of the same watch and compatible round.
    # Same-event pairs on dev score 0.12-0.35, but different happenings of one round also
    # 0.08-0.26, so time and round do most of the separating. Any floor in 0.00-0.12 gives
    # P/R 1.00/1.00 at 72 h; 0.11 also keeps precision 1.00 if the window is stretched to 96 h
    # (it excludes the 88-94 h look-alikes at 0.08 and 0.10), and 0.16 starts losing pairs.
    story_threshold: float = Field(0.11, ge=0.0, le=1.0)
    # When either watch is unknown (pure-function callers only; the store and Clusterer
    # group only articles of one watch): above every in-window pair of different events (0.16).
    story_threshold_unknown_watch: float = Field(0.30, ge=0.0, le=1.0)
    max_keywords: int = Field(64, ge=8, le=1024)

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> DedupConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm})")
        return self

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands


# -- URL canonicalisation -------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ocid",
        "cmpid", "ref_src", "ref_url", "spm", "at_medium", "at_campaign", "xtor", "ito",
        "__twitter_impression", "s_cid", "wt.mc_id", "oly_enc_id", "oly_anon_id", "vero_id",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "hmb_")
# Query switches that only select the AMP rendering of the same page.
_AMP_PARAMS = {"amp": None, "outputtype": "amp", "output": "amp", "_amp": None}
_MOBILE_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
_AMP_CACHE = re.compile(r"\.cdn\.ampproject\.org$")
# RFC 3986 characters that need no escaping inside a path segment.
_PATH_SAFE = "!$&'()*+,;=:@-._~"
_QUERY_SAFE = "!$'()*,;:@/?-._~"


def canonical_url(url: str) -> str:
    """One spelling per page, so the same article reached by two links is stored once.

    The variants folded together are those feeds really produce: scheme/host case, `www.`
    and mobile/AMP hosts, default ports, http vs https, a trailing slash, fragments,
    tracking parameters, parameter order, AMP paths and switches, Google's AMP cache, and
    percent-encoded vs raw (or lower- vs upper-hex) non-ASCII paths. Path case is kept:
    servers may treat it as significant.
    """
    text = url.strip()
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        return text
    scheme = parts.scheme.lower()
    if scheme == "http":
        scheme = "https"  # news sites serve the same page on both; https is what survives
    host, port = _host_and_port(parts)
    path = parts.path
    if _AMP_CACHE.search(host):
        return _amp_cache_origin(path) or text
    host = _strip_host_prefixes(host)
    path = _strip_amp_path(path)
    netloc = host if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, _canonical_path(path), _canonical_query(parts.query), ""))


def _host_and_port(parts: Any) -> tuple[str, int | None]:
    host = (parts.hostname or "").rstrip(".")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        host = host.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port


def _strip_host_prefixes(host: str) -> str:
    for prefix in _MOBILE_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            return host[len(prefix):]
    return host


def _amp_cache_origin(path: str) -> str | None:
    """`https://www-x-com.cdn.ampproject.org/c/s/www.x.com/a/amp` is `https://x.com/a`."""
    match = re.match(r"^/[a-z]/(s/)?(.+)$", path)
    if not match:
        return None
    return canonical_url(("https://" if match.group(1) else "http://") + match.group(2))


def _strip_amp_path(path: str) -> str:
    if path.startswith("/amp/"):
        path = path[4:]
    for suffix in ("/amp/", "/amp", ".amp"):
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)]
    return path


def _canonical_segment(segment: str, safe: str) -> str:
    raw = unquote_to_bytes(segment)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8 (a legacy windows-1256 link): keep the bytes, only normalise hex case.
        return re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), segment)
    return quote(raw, safe=safe)


def _canonical_path(path: str) -> str:
    path = "/".join(_canonical_segment(segment, _PATH_SAFE) for segment in path.split("/"))
    path = path.rstrip("/")
    return path


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    kept = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        lowered = key.lower()
        if lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES):
            continue
        if lowered in _AMP_PARAMS and _AMP_PARAMS[lowered] in (None, value.lower()):
            continue
        kept.append((key, value))
    kept.sort()
    return urlencode(kept, quote_via=lambda s, safe="", *a: quote(s, safe=_QUERY_SAFE))


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
    """datasketch's affine32 permutations for (num_perm, seed), shaped for broadcasting.
    Imported here, on first use: the datasketch package pulls in scipy (~60 MB and half a
    second at start-up) for a process that may never compute a MinHash (the daemon's main
    process, most CLI commands)."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32)[None, :], b.astype(np.uint32)[None, :]


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

    @property
    def signature_array(self) -> np.ndarray:
        return np.frombuffer(self.signature, dtype="<u4")


def compute_features(
    title: str,
    body: str,
    url: str | None,
    published: datetime,
    watch: str | None = None,
    round: int | None = None,
    config: DedupConfig | None = None,
    near_duplicates: bool = True,
) -> ArticleFeatures:
    """Everything dedup needs, from the text as published (normalisation happens here).

    An article without a word of text (a bare link) gets no band hashes and a fingerprint
    keyed by its URL: otherwise every empty item would be a copy of the first one.
    With `near_duplicates=False` (the poller passes it for articles no watch could flag)
    only the exact keys are computed: the MinHash is most of the cost of a 2 KB article,
    and near-copy links only matter for what may be announced.
    """
    config = config or DedupConfig()
    words = _normalised_words(title or "", body or "")
    canonical = canonical_url(url) if url else None
    fingerprint = _fingerprint(title or "", body or "", words) if words else "empty:" + _fingerprint_of_words([canonical or ""])
    if not near_duplicates or not words:
        # No signature at all (it resembles nothing: estimated_jaccard gives 0.0).
        return ArticleFeatures(canonical, fingerprint, b"", (), frozenset(), _aware(published), watch, round)
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
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_FEATURES_VERSION = 1


def features_to_bytes(features: ArticleFeatures) -> bytes:
    """Compact, versioned, pickle-free storage form (the store keeps it in a BLOB)."""
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
    )


# -- decisions --------------------------------------------------------------------------------


def estimated_jaccard(a: ArticleFeatures, b: ArticleFeatures) -> float:
    left, right = a.signature_array, b.signature_array
    if len(left) != len(right) or not len(left) or left.min() == _EMPTY or right.min() == _EMPTY:
        return 0.0  # an empty text resembles nothing
    return float(np.count_nonzero(left == right)) / len(left)


def is_near_duplicate(a: ArticleFeatures, b: ArticleFeatures, config: DedupConfig) -> bool:
    """Same dispatch: same content fingerprint, or estimated shingle Jaccard over the threshold.

    Agencies reuse one template for every round ("... the fifth round ..." / "... the sixth
    round ..."), so two texts that say different rounds or watches are never copies,
    however alike."""
    if _known_and_different(a.watch, b.watch) or _known_and_different(a.round, b.round):
        return False
    if a.fingerprint == b.fingerprint:
        return True
    return estimated_jaccard(a, b) >= config.near_duplicate_threshold


def _known_and_different(left: object, right: object) -> bool:
    return left is not None and right is not None and left != right


def keyword_similarity(a: ArticleFeatures, b: ArticleFeatures) -> float:
    """Jaccard of the two keyword sets (the `max_keywords` most frequent content words)."""
    if not a.keywords or not b.keywords:
        return 0.0
    shared = len(a.keywords & b.keywords)
    return shared / (len(a.keywords) + len(b.keywords) - shared)


def story_score(a: ArticleFeatures, b: ArticleFeatures, config: DedupConfig) -> float | None:
    """Similarity of two articles as write-ups of one happening, or None when they cannot be
    (different watch, different stated round, or too far apart in time)."""
    if _known_and_different(a.watch, b.watch) or _known_and_different(a.round, b.round):
        return None
    if abs(a.published - b.published) > config.story_window:
        return None
    return keyword_similarity(a, b)


def same_story(a: ArticleFeatures, b: ArticleFeatures, config: DedupConfig) -> bool:
    score = story_score(a, b, config)
    if score is None:
        return False
    known = a.watch is not None and b.watch is not None
    return score >= (config.story_threshold if known else config.story_threshold_unknown_watch)


# -- stories as a whole -------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryExtent:
    """What a story has said so far, as far as membership goes.

    Deciding membership pair by pair made it transitive: a round-5 article, then a write-up
    stating no round (similar to it), then a round-6 announcement (similar to the write-up)
    became one story, and once the round-5 story had been sent the round-6 news reached no
    digest. Membership is therefore checked against the story as a whole: its one watch and
    one stated round, the span of its independent write-ups, and whether it was already
    delivered. The store keeps the same things in the story row."""

    round: int | None = None
    first_published: datetime | None = None  # None: no span yet (no member, or copies only)
    last_published: datetime | None = None
    delivered: bool = False  # a digest or an alert carried it
    watch: str | None = None  # the watch of its flagged members

    def with_member(self, features: ArticleFeatures, *, copy: bool = False) -> StoryExtent:
        """The extent once `features` has joined. A copy repeats its original's dispatch, so
        its date (a late re-publication) does not stretch the span; its round still counts."""
        round_ = self.round if self.round is not None else features.round
        watch = self.watch if self.watch is not None else features.watch
        if copy or (self.first_published is not None and self.last_published is not None
                    and self.first_published <= features.published <= self.last_published):
            return replace(self, round=round_, watch=watch) if (round_, watch) != (self.round, self.watch) else self
        first = features.published if self.first_published is None else min(self.first_published, features.published)
        last = features.published if self.last_published is None else max(self.last_published, features.published)
        return replace(self, round=round_, watch=watch, first_published=first, last_published=last)


def story_admits(story: StoryExtent, features: ArticleFeatures, config: DedupConfig, *, copy: bool = False) -> bool:
    """Whether an article may join a story, given that it resembles one of its members
    (`same_story`, or `is_near_duplicate` for a `copy`).

    * a story has at most one stated round and one watch: an article stating another never
      joins, so an article stating none (or not flagged) can join but never bridge two;
    * an independent write-up must fall within `story_window` of every member's date, so a
      story never spans more than the window however its members chain;
    * a delivered story takes only what it already said: a later write-up of its round, or
      of no round, is the same news and joins silently (never sent twice); one stating a
      round the story never stated is news and starts a story of its own (never missed),
      even if it reuses a member's wording (an agency template);
    * otherwise copies of a member join whatever their date: they are the same dispatch."""
    if _known_and_different(features.round, story.round) or _known_and_different(features.watch, story.watch):
        return False
    if story.delivered and features.round is not None and story.round is None:
        return False
    if copy:
        return True
    if story.first_published is not None and story.last_published is not None:
        window = config.story_window
        if features.published > story.first_published + window or features.published < story.last_published - window:
            return False
    return True


# -- candidate indexes ------------------------------------------------------------------------


class CandidateIndex(Protocol):
    """Where near-duplicate candidates come from: band hashes shared with a stored article.
    MemoryIndex serves the CLI, the evaluation and the tests; the store implements the same
    look-up as an indexed SQL table `(band, hash) -> article_id`."""

    def candidates(self, features: ArticleFeatures) -> Iterable[ArticleId]: ...

    def add(self, article_id: ArticleId, features: ArticleFeatures) -> None: ...


class MemoryIndex:
    """LSH band index in numpy arrays rather than dicts of Python ints.

    Band hashes are band-specific (the band number is hashed in), so all bands share one
    sorted int64 array of hashes with a parallel int32 array of article positions: 12 bytes
    per band per article (~400 MB for 1M articles with 32 bands, where a dict-of-lists
    index takes several GB), and a look-up is two vectorised binary searches. Additions go
    to a small dict first and are merged into the arrays in batches, so inserting stays
    cheap on average.

    Restarts: the daemon's index is the store's band table, which survives restarts by
    construction; `from_band_table` rebuilds this in-memory form from those rows (100k
    articles in about 0.3 s after reading them, see bench/README.md).
    """

    def __init__(self, bands: int, merge_every: int = 16384):
        self.bands = bands
        self.merge_every = merge_every
        self._ids: list[ArticleId] = []
        self._keys = np.empty(0, dtype=np.int64)
        self._positions = np.empty(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}
        self._recent_count = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, article_id: ArticleId, features: ArticleFeatures) -> None:
        position = len(self._ids)
        self._ids.append(article_id)
        for value in features.band_hashes:
            self._recent.setdefault(value, []).append(position)
        self._recent_count += 1
        if self._recent_count >= self.merge_every:
            self._merge_recent()

    def add_many(self, article_ids: Iterable[ArticleId], band_matrix: np.ndarray) -> None:
        """Bulk load (one row of band hashes per article, in arrival order) with one sort."""
        ids = list(article_ids)
        matrix = np.asarray(band_matrix, dtype=np.int64).reshape(len(ids), self.bands)
        self._merge_recent()
        first = len(self._ids)
        self._ids.extend(ids)
        flat = matrix.ravel()
        order = np.argsort(flat, kind="stable")
        keys = flat[order]
        positions = (first + order // self.bands).astype(np.int32)
        at = np.searchsorted(self._keys, keys, side="right")
        self._keys = np.insert(self._keys, at, keys)
        self._positions = np.insert(self._positions, at, positions)

    def candidates(self, features: ArticleFeatures) -> list[ArticleId]:
        """Stored articles sharing at least one band, oldest first."""
        found: set[int] = set()
        if len(self._keys):
            values = np.asarray(features.band_hashes, dtype=np.int64)
            starts = np.searchsorted(self._keys, values, side="left")
            stops = np.searchsorted(self._keys, values, side="right")
            for start, stop in zip(starts[starts < stops].tolist(), stops[starts < stops].tolist(), strict=True):
                found.update(self._positions[start:stop].tolist())
        for value in features.band_hashes:
            found.update(self._recent.get(value, ()))
        return [self._ids[position] for position in sorted(found)]

    def _merge_recent(self) -> None:
        if self._recent:
            keys = np.fromiter((key for key, plist in self._recent.items() for _ in plist), dtype=np.int64)
            positions = np.fromiter((p for plist in self._recent.values() for p in plist), dtype=np.int32)
            order = np.argsort(keys, kind="stable")
            at = np.searchsorted(self._keys, keys[order], side="right")
            self._keys = np.insert(self._keys, at, keys[order])
            self._positions = np.insert(self._positions, at, positions[order])
        self._recent = {}
        self._recent_count = 0

    @classmethod
    def from_band_table(
        cls, article_ids: Iterable[ArticleId], band_matrix: np.ndarray, merge_every: int = 16384
    ) -> MemoryIndex:
        """Rebuild at start-up from stored band hashes (one row per article, in id order)."""
        matrix = np.asarray(band_matrix, dtype=np.int64)
        index = cls(matrix.shape[1] if matrix.ndim == 2 else 0, merge_every)
        index.add_many(article_ids, matrix)
        return index

    def nbytes(self) -> int:
        """Approximate bytes held: the arrays, the recent-additions dict and the id list."""
        recent = sys.getsizeof(self._recent) + len(self._recent) * 120  # key int + list + position int
        return self._keys.nbytes + self._positions.nbytes + recent + sys.getsizeof(self._ids)


# -- the in-memory engine -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterResult:
    duplicate_of: ArticleId | None
    story: str


@dataclass
class _Seen:
    article_id: ArticleId
    features: ArticleFeatures
    duplicate_of: ArticleId | None
    story: str


class Clusterer:
    """Assigns each arriving article its earliest near copy and its story.

    Articles arrive in order; the first of each story names it. As in the store, only
    articles of a watch are grouped with independent write-ups (an unflagged article joins
    only the story of what it copies): story candidates are the originals of the same watch
    published within the window, kept per watch in time order, so the cost follows the
    traffic of one watch in one window, not the archive.
    """

    def __init__(self, config: DedupConfig | None = None, index: CandidateIndex | None = None):
        self.config = config or DedupConfig()
        self.index: CandidateIndex = index if index is not None else MemoryIndex(self.config.bands)
        self._seen: dict[ArticleId, _Seen] = {}
        self._by_url: dict[str, ArticleId] = {}
        self._by_fingerprint: dict[str, ArticleId] = {}
        # Originals of each watch by publication time: the story candidates.
        self._timelines: dict[str, list[tuple[datetime, int, _Seen]]] = defaultdict(list)
        self._stories: dict[str, StoryExtent] = {}

    def add(self, article_id: ArticleId, features: ArticleFeatures) -> ClusterResult:
        if article_id in self._seen:  # the same item polled twice: same answer, no new entry
            seen = self._seen[article_id]
            return ClusterResult(seen.duplicate_of, seen.story)
        original = self._earliest_copy(features)
        if original is not None:
            story = original.story
        else:
            story = self._matching_story(features) or _story_key(article_id)
        self._stories[story] = self._stories.get(story, StoryExtent()).with_member(features, copy=original is not None)
        seen = _Seen(article_id, features, original.article_id if original else None, story)
        self._seen[article_id] = seen
        if features.canonical_url:
            self._by_url.setdefault(features.canonical_url, article_id)
        self._by_fingerprint.setdefault(features.fingerprint, article_id)
        self.index.add(article_id, features)
        if original is None and features.watch is not None:
            timeline = self._timelines[features.watch]
            bisect.insort(timeline, (features.published, len(self._seen), seen), key=lambda t: (t[0], t[1]))
        return ClusterResult(seen.duplicate_of, story)

    def _root(self, article_id: ArticleId) -> _Seen:
        seen = self._seen[article_id]
        return self._seen[seen.duplicate_of] if seen.duplicate_of is not None else seen

    def _earliest_copy(self, features: ArticleFeatures) -> _Seen | None:
        for exact in (self._by_url.get(features.canonical_url or ""), self._by_fingerprint.get(features.fingerprint)):
            if exact is not None and self._admits(self._root(exact), features, copy=True):
                return self._root(exact)
        for candidate in self.index.candidates(features):
            seen = self._seen.get(candidate)
            if seen is not None and is_near_duplicate(features, seen.features, self.config):
                if self._admits(seen, features, copy=True):
                    return self._root(candidate)
        return None

    def _admits(self, member: _Seen, features: ArticleFeatures, *, copy: bool = False) -> bool:
        return story_admits(self._stories[member.story], features, self.config, copy=copy)

    def _matching_story(self, features: ArticleFeatures) -> str | None:
        """The story of the most similar earlier original within the window whose story as a
        whole admits this article, if any."""
        if features.watch is None:
            return None
        timeline = self._timelines[features.watch]
        window = self.config.story_window
        start = bisect.bisect_left(timeline, features.published - window, key=lambda t: t[0])
        stop = bisect.bisect_right(timeline, features.published + window, key=lambda t: t[0])
        best: tuple[float, str] | None = None
        for _, _, other in timeline[start:stop]:
            if not same_story(features, other.features, self.config) or not self._admits(other, features):
                continue
            score = story_score(features, other.features, self.config) or 0.0
            if best is None or score > best[0]:
                best = (score, other.story)
        return best[1] if best else None


def _story_key(article_id: ArticleId) -> str:
    return f"story:{article_id}"


# -- `monitor cluster` -------------------------------------------------------------------------


class _Classifier(Protocol):
    def classify(self, title: str, body: str) -> Any: ...


@dataclass(frozen=True)
class ClusterInput:
    """One line of `monitor cluster` input, validated."""

    id: Any
    title: str
    body: str
    url: str | None
    published: datetime | None


def parse_cluster_line(line: str) -> ClusterInput:
    """Raise ValueError with a message fit for the error line."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    if data.get("id") is None or isinstance(data["id"], (dict, list)):
        raise ValueError("missing or invalid id")
    title = data.get("title") or ""
    body = data.get("body") or data.get("summary") or ""
    if not isinstance(title, str) or not isinstance(body, str):
        raise ValueError("title and body/summary must be strings")
    if not title and not body:
        raise ValueError("empty title and body")
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise ValueError("url must be a string")
    published = None
    if data.get("published") is not None:
        try:
            published = _aware(datetime.fromisoformat(str(data["published"])))
        except ValueError:
            raise ValueError(f"invalid published date {data['published']!r}") from None
    return ClusterInput(data["id"], title, body, url, published)


def cluster_lines(
    lines: Iterable[str], config: DedupConfig | None = None, rules: _Classifier | None = None
) -> Iterator[tuple[str | None, str | None]]:
    """`monitor cluster`: one output line (or one error line) per non-blank input line.

    `rules` (a RuleSet) supplies watch and round; without it stories rest on time and
    content alone. An article without `published` is dated like the previous one, since
    the input is in arrival order.
    """
    config = config or DedupConfig()
    clusterer = Clusterer(config)
    last_published = datetime(1970, 1, 1, tzinfo=UTC)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = parse_cluster_line(line)
        except ValueError as error:
            yield None, json.dumps({"line": number, "error": str(error)}, ensure_ascii=False)
            continue
        published = item.published or last_published
        last_published = published
        watch, round_ = _watch_and_round(rules, item)
        features = compute_features(item.title, item.body, item.url, published, watch, round_, config)
        result = clusterer.add(item.id, features)
        out = {"id": item.id, "duplicate_of": result.duplicate_of, "story": result.story}
        yield json.dumps(out, ensure_ascii=False), None


def _watch_and_round(rules: _Classifier | None, item: ClusterInput) -> tuple[str | None, int | None]:
    if rules is None:
        return None, None
    # As the poll pipeline does: a watch only for flagged articles, the round always.
    decision = rules.classify(item.title, item.body)
    return (decision.watch if decision.flagged else None), decision.round
