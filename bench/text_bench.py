"""Time to analyse one very long entry: classify, compute_features, the whole worker path.

A feed item of any size up to `[polling] max_bytes` (10 MB) reaches the parse worker, so the
analysis of one text must be bounded: a 2.6 MB item made of one dialogue sentence repeated
used to keep a worker busy for more than ten minutes. This script times, on one core, for a
dense text (a dialogue sentence repeated) and a sparse one (corpus filler with a dialogue
sentence every ~10 KB) of 10 KB, 100 KB, 1 MB and 10 MB (UTF-8 bytes of the body):

- `classify`: RuleSet.classify(title, body), decision with matches, round, topics, explanation;
- `features`: dedup.compute_features (normalised words, fingerprint, MinHash, bands, keywords);
- `worker`: monitor.pipeline.prepare_entry, what a parse worker does per entry (both of the above,
  plus the decision's JSON and the features' blob).

Each case runs in a fresh process pinned to one core, warmed on a 2 KB article first (lazy
imports), and reports CPU seconds (time.process_time) of the first call on the big text
("cold": its words are not in the tokeniser's cache yet, as for a new feed item) and the best
of `--repeat` further calls ("warm"). A case that takes longer than `--timeout` seconds is
killed and reported as "> timeout".

    .venv/bin/python bench/text_bench.py [--repeat 3] [--timeout 120] [--sizes 10k,100k,1m,10m] [--config PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_CONFIG = REPO / "config" / "monitor.toml"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"
TITLE = "الكويت والولايات المتحدة تعقدان الجولة الخامسة من الحوار الاستراتيجي"
DENSE_SENTENCE = "عقدت الكويت والولايات المتحدة الجولة الخامسة من الحوار الاستراتيجي في واشنطن. "
SPARSE_EVERY = 10_000  # bytes of filler between two dialogue sentences in the sparse text
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
KINDS = ("dense", "sparse")
FUNCTIONS = ("classify", "features", "worker")


def dense_text(size: int) -> str:
    repeat = size // len(DENSE_SENTENCE.encode("utf-8")) + 1
    return DENSE_SENTENCE * repeat


def sparse_text(size: int, corpus: Path, seed: int = 11) -> str:
    """Corpus words without Kuwait or a partner (so that only the planted sentences match),
    with the dialogue sentence first and then once every SPARSE_EVERY bytes."""
    words: list[str] = []
    if corpus.exists():
        with corpus.open(encoding="utf-8") as handle:
            for line in handle:
                article = json.loads(line)
                words.extend(article.get("body", "").split())
    banned = ("كويت", "كونا", "امريك", "أمريك", "أميرك", "واشنطن", "الولايات", "بريطان", "لندن", "حوار", "التوجيه")
    vocabulary = [w for w in words if not any(b in w for b in banned)] or ["كلمة", "عادية", "في", "نص", "طويل"]
    rng = random.Random(seed)
    parts = [DENSE_SENTENCE]
    size_now = len(DENSE_SENTENCE.encode("utf-8"))
    since = 0
    while size_now < size:
        word = rng.choice(vocabulary) if rng.random() > 0.02 else str(rng.randint(1, 10**6))
        parts.append(word + (" " if rng.random() > 0.05 else ".\n\n"))
        grown = len(word.encode("utf-8")) + 1
        size_now += grown
        since += grown
        if since >= SPARSE_EVERY:
            parts.append(DENSE_SENTENCE)
            size_now += len(DENSE_SENTENCE.encode("utf-8"))
            since = 0
    return "".join(parts)


def run_one(function: str, kind: str, size: int, repeat: int, config_path: Path, corpus: Path) -> dict[str, object]:
    """Measure one case in this process (called in a child)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from monitor import dedup
    from monitor.config import load_config
    from monitor.sources.parse import ParsedEntry
    from monitor.pipeline import prepare_entry

    config = load_config(config_path, {})
    rules, dedup_config = config.rules, config.dedup
    body = dense_text(size) if kind == "dense" else sparse_text(size, corpus)
    published = datetime(2024, 5, 1, tzinfo=UTC)

    def call(title: str, text: str) -> object:
        if function == "classify":
            return rules.classify(title, text)
        if function == "features":
            return dedup.compute_features(title, text, "https://example.org/a", published, config=dedup_config)
        entry = ParsedEntry("guid", "https://example.org/a", title, text, published, False, None, "ar")
        return prepare_entry(entry, rules, dedup_config)

    call(TITLE, dense_text(1_000) + sparse_text(1_000, corpus, seed=3))  # warm-up
    start = time.process_time()
    result = call(TITLE, body)
    cold = time.process_time() - start
    best = float("nan")
    for _ in range(repeat):
        start = time.process_time()
        call(TITLE, body)
        best = min(best, time.process_time() - start) if best == best else time.process_time() - start
    decision = getattr(result, "decision", result)
    summary = {}
    if hasattr(decision, "flagged"):
        summary = {"flagged": decision.flagged, "round": decision.round, "matches": len(decision.matches)}
    return {"seconds": cold, "warm": best, "bytes": len(body.encode("utf-8")), **summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per case, best kept (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case is killed")
    parser.add_argument("--sizes", default="10k,100k,1m,10m", help="comma-separated: " + ",".join(SIZES))
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="filler vocabulary source")
    parser.add_argument("--one", nargs=3, metavar=("FUNCTION", "KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        function, kind, size = args.one
        result = run_one(function, kind, SIZES[size], args.repeat, args.config, args.corpus)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    functions = [f.strip() for f in args.functions.split(",") if f.strip()]
    print(f"CPU seconds per text, one core: cold = first call, warm = best of {args.repeat} more; ratio = cold / cold of the 10k case")
    print(f"{'function':9} {'kind':7} {'size':>5} {'bytes':>11} {'cold s':>9} {'ratio':>8} {'warm s':>9}  decision")
    for function in functions:
        for kind in KINDS:
            base: float | None = None
            for size in sizes:
                command = [sys.executable, __file__, "--one", function, kind, size, "--repeat", str(args.repeat),
                           "--config", str(args.config), "--corpus", str(args.corpus)]
                try:
                    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=True)
                except subprocess.TimeoutExpired:
                    print(f"{function:9} {kind:7} {size:>5} {SIZES[size]:>11,} {'> ' + format(args.timeout, 'g'):>9}", flush=True)
                    continue
                except subprocess.CalledProcessError as exc:
                    print(f"{function:9} {kind:7} {size:>5} failed: {exc.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                seconds = float(result["seconds"])
                if size == "10k":
                    base = seconds
                ratio = f"{seconds / base:8.1f}" if base else f"{'':>8}"
                detail = {k: result[k] for k in ("flagged", "round", "matches") if k in result}
                warm = float(result["warm"])
                print(f"{function:9} {kind:7} {size:>5} {result['bytes']:>11,} {seconds:9.3f} {ratio} {warm:9.3f}  {detail or ''}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
