"""Deduplication and story clustering: one story, one entry, however many outlets.

Three layers, cheapest first:

* exact duplicates: the same canonical URL, or the same fingerprint of the normalised text;
* near duplicates (a syndicated dispatch with a new headline, a trimmed paragraph, other
  spelling): MinHash over character shingles of the normalised text, found through LSH band
  hashes so that checking a new article costs the same with 10 thousand or 10 million stored;
* stories (independent write-ups of one happening): same watch, round and kind of happening
  where known, close in time, and similar enough in content and named entities to one member
  (across languages, where no word is shared: the same stated round and happening), and admitted by
  the story as a whole (one stated round, its time span, delivered or not: `story_admits`),
  so that membership never chains across rounds.

Everything here is pure: the store (SQL band table) and the in-memory engine below
(`Clusterer`, used by `monitor cluster`, the evaluation and the tests) share the same
features and decision functions, so they cannot drift apart.

    config    [dedup] settings
    urls      canonical URLs
    events    the kind of happening an article reports (preview, arrival, session...)
    features  fingerprints, MinHash and LSH bands, keywords, language, kind of happening
    decide    near-copy, same story, and what a story as a whole admits
    cluster   the in-memory engine of `monitor cluster`
"""

from monitor.dedup.config import DedupConfig
from monitor.dedup.urls import canonical_url
from monitor.dedup.events import event_kind, happening_subject
from monitor.dedup.features import (
    ArticleFeatures,
    band_hashes,
    compute_features,
    content_fingerprint,
    features_from_bytes,
    features_to_bytes,
    keyword_set,
    minhash_signature,
    shingle_hashes,
)
from monitor.dedup.decide import (
    StoryExtent,
    estimated_jaccard,
    is_near_duplicate,
    keyword_similarity,
    same_story,
    story_admits,
    story_score,
)
from monitor.dedup.cluster import (
    CandidateIndex,
    ClusterInput,
    ClusterResult,
    Clusterer,
    MemoryIndex,
    cluster_lines,
    parse_cluster_line,
)

__all__ = [
    "ArticleFeatures",
    "CandidateIndex",
    "ClusterInput",
    "ClusterResult",
    "Clusterer",
    "DedupConfig",
    "MemoryIndex",
    "StoryExtent",
    "band_hashes",
    "canonical_url",
    "cluster_lines",
    "compute_features",
    "content_fingerprint",
    "estimated_jaccard",
    "event_kind",
    "features_from_bytes",
    "features_to_bytes",
    "happening_subject",
    "is_near_duplicate",
    "keyword_set",
    "keyword_similarity",
    "minhash_signature",
    "parse_cluster_line",
    "same_story",
    "shingle_hashes",
    "story_admits",
    "story_score",
]
