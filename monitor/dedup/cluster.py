"""The in-memory engine behind `monitor cluster`, the evaluation and the tests: candidate
indexes and the clusterer, with the same features and decisions as the store."""

from __future__ import annotations

import bisect
import json
import sys
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from monitor.jsonl import BadLine, read_article
from monitor.dedup.config import DedupConfig
from monitor.dedup.decide import StoryExtent, is_near_duplicate, same_story, story_admits, story_score
from monitor.dedup.events import happening_subject
from monitor.dedup.features import ArticleFeatures, _aware, compute_features

ArticleId = Hashable

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
    language: str | None = None


def parse_cluster_line(line: str) -> ClusterInput:
    """Raise ValueError with a message fit for the error line (BadLine for what `classify`
    rejects too)."""
    data = read_article(line)
    title = data["title"]
    body = data.get("body") or data.get("summary") or ""
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
    language = data.get("language")
    return ClusterInput(data["id"], title, body, url, published, language if isinstance(language, str) else None)


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
        except BadLine as bad:
            yield None, bad.error_line(number)
            continue
        except ValueError as error:
            yield None, json.dumps({"line": number, "error": str(error)}, ensure_ascii=False)
            continue
        published = item.published or last_published
        last_published = published
        watch, round_, subject = _watch_round_subject(rules, item)
        features = compute_features(item.title, item.body, item.url, published, watch, round_, config,
                                    language=item.language, subject=subject)
        result = clusterer.add(item.id, features)
        out = {"id": item.id, "duplicate_of": result.duplicate_of, "story": result.story}
        yield json.dumps(out, ensure_ascii=False), None


def _watch_round_subject(rules: _Classifier | None, item: ClusterInput) -> tuple[str | None, int | None, tuple[str, ...]]:
    if rules is None:
        return None, None, ()
    # As the poll pipeline does: a watch only for flagged articles, the round always, and
    # the subject of what may join a story.
    decision = rules.classify(item.title, item.body)
    if not decision.flagged:
        return None, decision.round, ()
    return decision.watch, decision.round, tuple(happening_subject(rules.classify, item.title, item.body))
