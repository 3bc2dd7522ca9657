"""Scale benchmark of near-duplicate detection: does checking one article stay as cheap with
1M stored articles as with 10k, and does the index fit in memory?

    .venv/bin/python bench/dedup_bench.py [--sizes 10000,100000,1000000] [--sql-max 100000]
                                          [--window 3000] [--copy-share 0.1] [--workers 2]

Synthetic Arabic-like articles (Zipf-distributed vocabulary of 40k pseudo-words, 2-5
paragraphs, ~50-240 words like feed summaries and short dispatches) are inserted in order.
The --window articles before each size go through the whole text pipeline
(monitor.dedup.compute_features) and 10% of them are planted near-copies of earlier such
originals (new headline, last paragraph cut, 2% of words replaced, Persian letters, tatweel,
3% lost spaces); the articles in between fill the archive with the exact shingle sets of
originals (same MinHash and band hashes, without normalize() and keywords), bulk-added to
the indexes so that 1M is reached in minutes. Every measured article is looked up through
the LSH band index, its candidates checked with monitor.dedup.is_near_duplicate, and added. Times are CPU time of the
measuring thread (time.thread_time), so other work on the machine does not inflate them.
Two indexes are measured side by side on the same features:
  memory: monitor.dedup.MemoryIndex (what `monitor cluster` and tests use);
  sqlite: a plain sqlite3 table article_band(band, hash, article_id) with an index on
          (band, hash), the shape the store uses on SQLite and PostgreSQL.
At each size it prints the per-article times over the measured window, index memory,
process RSS growth and the recall of planted copies, then the ratio against the first size
and against a brute-force scan of all stored signatures (the baseline without an index). It also times
rebuilding a MemoryIndex from the stored band hashes at the --rebuild-size checkpoint.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor import dedup  # noqa: E402
from monitor.dedup import ArticleFeatures, DedupConfig, MemoryIndex  # noqa: E402

LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
START = datetime(2020, 1, 1, tzinfo=UTC)


class Corpus:
    """Deterministic synthetic articles: article i is regenerated from its seed when a copy needs it."""

    def __init__(self, seed: int, vocabulary: int = 40_000):
        rng = random.Random(seed)
        words = set()
        while len(words) < vocabulary:
            words.add("".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 9))))
        self.words = sorted(words)
        rng.shuffle(self.words)
        self.cum_weights = list(accumulate(1.0 / (rank + 1) ** 1.05 for rank in range(vocabulary)))
        self.seed = seed
    def _words(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cum_weights, k=count)

    def original(self, index: int) -> tuple[str, list[str]]:
        rng = random.Random(self.seed * 1_000_003 + index)
        title = " ".join(self._words(rng, rng.randint(7, 12)))
        paragraphs = [" ".join(self._words(rng, rng.randint(20, 45))) for _ in range(rng.randint(2, 5))]
        return title, paragraphs

    def copy(self, source: int, index: int) -> tuple[str, str]:
        rng = random.Random(self.seed * 7_000_001 + index)
        _, paragraphs = self.original(source)
        if len(paragraphs) > 2:
            paragraphs = paragraphs[:-1]
        body_words = " ".join(paragraphs).split(" ")
        replaced = [self._words(rng, 1)[0] if rng.random() < 0.02 else w for w in body_words]
        body = replaced[0] + "".join(("" if rng.random() < 0.03 else " ") + w for w in replaced[1:])
        body = body.replace("ي", "ی").replace("ك", "ک").replace("ه ", "هـ ")
        return " ".join(self._words(rng, rng.randint(7, 12))), body


def filler_shingles(corpus: Corpus, index: int, config: DedupConfig) -> np.ndarray:
    """The exact shingle set of original article `index` without normalize() and keywords:
    its letters are already in normal form, so the set equals what compute_features would
    hash, at 40% of the cost. Fills the archive between measured windows."""
    title, paragraphs = corpus.original(index)
    return dedup.shingle_hashes(title.split() + " ".join(paragraphs).split(), config)


class SqliteBandIndex:
    """CandidateIndex over the table shape the store uses, with a plain sqlite3 connection."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(
            """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144;
            CREATE TABLE article_band (band INTEGER NOT NULL, hash INTEGER NOT NULL, article_id INTEGER NOT NULL);
            CREATE INDEX article_band_lookup ON article_band (band, hash);
            """
        )
        self.db.execute("BEGIN")
        self.pending = 0

    def candidates(self, features: ArticleFeatures) -> list[int]:
        # OR of (band, hash) pairs, as the store writes it: SQLite answers it with one index
        # probe per band (MULTI-INDEX OR); a row-value IN (VALUES ...) scans the whole table.
        where = " OR ".join("(band = ? AND hash = ?)" for _ in features.band_hashes)
        params = [v for band, h in enumerate(features.band_hashes) for v in (band, h)]
        query = f"SELECT DISTINCT article_id FROM article_band WHERE {where} ORDER BY article_id"
        return [row[0] for row in self.db.execute(query, params)]

    def add(self, article_id: int, features: ArticleFeatures) -> None:
        self.db.executemany(
            "INSERT INTO article_band (band, hash, article_id) VALUES (?, ?, ?)",
            [(band, h, article_id) for band, h in enumerate(features.band_hashes)],
        )
        self.pending += 1
        if self.pending >= 1000:  # the daemon commits once per polled feed
            self.db.execute("COMMIT")
            self.db.execute("BEGIN")
            self.pending = 0

    def add_many(self, article_ids: range, band_matrix: np.ndarray) -> None:
        self.db.executemany(
            "INSERT INTO article_band (band, hash, article_id) VALUES (?, ?, ?)",
            ((band, h, i) for i, row in zip(article_ids, band_matrix.tolist(), strict=True) for band, h in enumerate(row)),
        )

    def band_rows(self) -> tuple[list[int], np.ndarray]:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        # rowid order is insertion order: article by article, band by band
        hashes = np.fromiter((row[0] for row in self.db.execute("SELECT hash FROM article_band")), dtype=np.int64)
        ids = np.fromiter((row[0] for row in self.db.execute("SELECT article_id FROM article_band")), dtype=np.int64)
        return ids[::BANDS].tolist(), hashes.reshape(-1, BANDS)


BANDS = DedupConfig().bands


@dataclass
class Path_:
    """One index path (memory or sqlite) with its timings and outcomes."""

    name: str
    index: object
    seconds: np.ndarray = field(default_factory=lambda: np.empty(0))
    found: int = 0
    false_merges: int = 0


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


FILLER, ORIGINAL = -2, -1
CUTS: set[int] = set()  # checkpoint sizes
PLAN: np.ndarray = np.empty(0, dtype=np.int64)  # per article: FILLER, ORIGINAL, or the source it copies
CORPUS: Corpus | None = None
CONFIG = DedupConfig()


def plan_articles(sizes: list[int], window: int, copy_share: float, seed: int) -> np.ndarray:
    """Articles in the `window` before each checkpoint go through the whole text pipeline
    (and a share of them are planted copies of earlier such originals); the rest fill the
    archive with exact shingle sets of originals at lower cost."""
    rng = random.Random(seed)
    plan = np.full(sizes[-1], FILLER, dtype=np.int64)
    originals: list[int] = []
    for size in sizes:
        for i in range(max(0, size - window), size):
            if originals and rng.random() < copy_share:
                plan[i] = rng.choice(originals)
            else:
                plan[i] = ORIGINAL
                originals.append(i)
    return plan


def features_chunk(bounds: tuple[int, int]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Worker: featurise articles [start, stop): the real compute_features for measured ones."""
    start, stop = bounds
    assert CORPUS is not None
    signatures = np.empty((stop - start, CONFIG.num_perm), dtype=np.uint32)
    bands = np.empty((stop - start, CONFIG.bands), dtype=np.int64)
    seconds = np.zeros(stop - start)
    fingerprints = np.empty(stop - start, dtype="S32")
    for row, i in enumerate(range(start, stop)):
        if PLAN[i] == FILLER:
            signature = dedup.minhash_signature(filler_shingles(CORPUS, i, CONFIG), CONFIG)
            signatures[row] = signature
            bands[row] = dedup.band_hashes(signature, CONFIG)
            fingerprints[row] = f"filler{i:026d}".encode("ascii")
            continue
        if PLAN[i] == ORIGINAL:
            title, paragraphs = CORPUS.original(i)
            body = "\n".join(paragraphs)
        else:
            title, body = CORPUS.copy(int(PLAN[i]), i)
        began = time.thread_time()
        features = dedup.compute_features(title, body, None, START + timedelta(minutes=i), config=CONFIG)
        seconds[row] = time.thread_time() - began
        signatures[row] = features.signature_array
        bands[row] = features.band_hashes
        fingerprints[row] = features.fingerprint.encode("ascii")
    return start, signatures, bands, seconds, fingerprints


def main() -> int:
    global PLAN, CORPUS, CUTS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--sql-max", type=int, default=100_000, help="stop the sqlite path after this many articles")
    parser.add_argument("--rebuild-size", type=int, default=100_000)
    parser.add_argument("--copy-share", type=float, default=0.1)
    parser.add_argument("--window", type=int, default=3000, help="articles measured before each size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="processes generating and featurising articles")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    config = CONFIG
    total = sizes[-1]
    PLAN = plan_articles(sizes, args.window, args.copy_share, args.seed)
    CUTS = set(sizes)
    CORPUS = Corpus(args.seed)
    signatures = np.zeros((total, config.num_perm), dtype=np.uint32)
    fingerprints = np.zeros(total, dtype="S32")
    root = np.arange(total, dtype=np.int64)
    rng = random.Random(args.seed)
    tmp = tempfile.TemporaryDirectory()
    paths = [Path_("memory", MemoryIndex(config.bands), np.full(total, np.nan))]
    if args.sql_max > 0:
        paths.append(Path_("sqlite", SqliteBandIndex(os.path.join(tmp.name, "bands.db")), np.full(total, np.nan)))
    feature_seconds = np.zeros(total)
    print(f"config: {config.shingle}-{config.shingle_size} shingles, {config.num_perm} perms, "
          f"{config.bands} bands x {config.rows} rows, threshold {config.near_duplicate_threshold}; "
          f"copy share {args.copy_share}; features computed in {args.workers} processes, index work in one")
    print(f"{'size':>9} {'path':>7} {'features ms':>11} {'lookup+add ms':>13} {'total ms':>9} "
          f"{'index MB':>9} {'RSS MB':>8} {'copy recall':>11} {'false merges':>12}")
    first_total: dict[str, float] = {}
    checkpoint = 0
    rss_start = rss_bytes()
    started_all = time.perf_counter()
    chunks = [(start, min(start + 2000, total)) for start in range(0, total, 2000)]
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for start, chunk_signatures, chunk_bands, chunk_seconds, chunk_fps in pool.imap(features_chunk, chunks):
            stop = start + len(chunk_seconds)
            signatures[start:stop] = chunk_signatures
            fingerprints[start:stop] = chunk_fps
            feature_seconds[start:stop] = chunk_seconds
            for segment_start, segment_stop, filler in segments(start, stop):
                if filler:  # archive fill: bulk-added, not timed
                    rows = chunk_bands[segment_start - start : segment_stop - start]
                    for path in paths:
                        if path.name == "sqlite" and segment_start >= args.sql_max:
                            continue
                        path.index.add_many(range(segment_start, segment_stop), rows)
                else:
                    for i in range(segment_start, segment_stop):
                        row = i - start
                        features = ArticleFeatures(
                            None, chunk_fps[row].decode("ascii"), chunk_signatures[row].tobytes(),
                            tuple(chunk_bands[row].tolist()), frozenset(), START + timedelta(minutes=i),
                        )
                        for path in paths:
                            if path.name == "sqlite" and i >= args.sql_max:
                                continue
                            measure(path, i, features, signatures, fingerprints, root, config)
                if segment_stop == sizes[checkpoint]:
                    report(segment_stop, paths, feature_seconds, signatures, root, rng, rss_start, first_total, args)
                    checkpoint += 1
                    if checkpoint == len(sizes):
                        break
            if checkpoint == len(sizes):
                pool.terminate()
                break
    print(f"whole run {time.perf_counter() - started_all:.0f} s")
    tmp.cleanup()
    return 0


def segments(start: int, stop: int) -> list[tuple[int, int, bool]]:
    """Runs of filler / measured articles in [start, stop), cut at every checkpoint size."""
    kinds = PLAN[start:stop] == FILLER
    cuts = [start] + [start + k for k in range(1, stop - start) if kinds[k] != kinds[k - 1] or (start + k) in CUTS] + [stop]
    return [(a, b, bool(kinds[a - start])) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def measure(path: Path_, i: int, features: ArticleFeatures, signatures: np.ndarray, fingerprints: np.ndarray,
            root: np.ndarray, config: DedupConfig) -> None:
    began = time.thread_time()
    match = first_match(path.index, features, signatures, fingerprints, config)
    path.index.add(i, features)
    path.seconds[i] = time.thread_time() - began
    if path.name == "memory" and match is not None:
        root[i] = root[match]
    if PLAN[i] >= 0 and match is not None and root[match] == root[PLAN[i]]:
        path.found += 1
    elif PLAN[i] < 0 and match is not None:
        path.false_merges += 1


def report(size, paths, feature_seconds, signatures, root, rng, rss_start, first_total, args) -> None:  # noqa: ANN001
    window = min(args.window, size)
    feature_ms = 1000 * float(np.mean(feature_seconds[size - window : size]))
    baseline_ms = brute_force_ms(signatures[:size], rng)
    copies = int(np.count_nonzero(PLAN[:size] >= 0))
    for path in paths:
        if path.name == "sqlite" and size > args.sql_max:
            continue
        lookup_ms = 1000 * float(np.nanmean(path.seconds[size - window : size]))
        first_total.setdefault(path.name, feature_ms + lookup_ms)
        index_mb = path.index.nbytes() / 2**20 if isinstance(path.index, MemoryIndex) else sqlite_mb(path.index)
        print(f"{size:>9} {path.name:>7} {feature_ms:>11.3f} {lookup_ms:>13.3f} {feature_ms + lookup_ms:>9.3f} "
              f"{index_mb:>9.1f} {(rss_bytes() - rss_start) / 2**20:>8.0f} "
              f"{path.found / max(copies, 1):>11.4f} {path.false_merges:>12}")
        print(f"{'':>17} per-article total / at {min(first_total)}: "
              f"{(feature_ms + lookup_ms) / first_total[path.name]:.2f}x; brute-force scan baseline "
              f"{baseline_ms:.3f} ms = {baseline_ms / lookup_ms:.1f}x this look-up+add")
    if size == args.rebuild_size and len(paths) > 1 and size <= args.sql_max:
        began = time.perf_counter()
        ids, matrix = paths[1].index.band_rows()
        loaded = time.perf_counter()
        MemoryIndex.from_band_table(ids, matrix)
        built = time.perf_counter()
        print(f"{'':>17} rebuild MemoryIndex of {size} articles from the band table: "
              f"SELECT {loaded - began:.2f} s + build {built - loaded:.2f} s")
    sys.stdout.flush()


def first_match(
    index: object, features: ArticleFeatures, signatures: np.ndarray, fingerprints: np.ndarray, config: DedupConfig
) -> int | None:
    """The earliest candidate that is a near duplicate, by the engine's own decision function
    (the stored side rebuilt from the compact arrays a store would read)."""
    for candidate in index.candidates(features):
        stored = ArticleFeatures(
            None, fingerprints[candidate].decode("ascii"), signatures[candidate].tobytes(), (), frozenset(),
            features.published,
        )
        if dedup.is_near_duplicate(features, stored, config):
            return candidate
    return None


def brute_force_ms(stored: np.ndarray, rng: random.Random, queries: int = 20) -> float:
    """Baseline without an index: compare a signature with every stored one (vectorised)."""
    started = time.thread_time()
    for _ in range(queries):
        probe = stored[rng.randrange(len(stored))]
        np.flatnonzero((stored == probe).mean(axis=1) >= 0.4)
    return 1000 * (time.thread_time() - started) / queries


def sqlite_mb(index: SqliteBandIndex) -> float:
    pages = index.db.execute("PRAGMA page_count").fetchone()[0]
    size = index.db.execute("PRAGMA page_size").fetchone()[0]
    return pages * size / 2**20


if __name__ == "__main__":
    raise SystemExit(main())
