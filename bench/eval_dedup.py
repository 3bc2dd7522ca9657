"""Evaluate near-duplicate detection and story clustering on a labelled JSON Lines file.

    .venv/bin/python bench/eval_dedup.py [--corpus PATH] [--config PATH] [--watch-source auto|labels|none] [--sweep]

Runs exactly what `monitor cluster` runs (monitor.dedup.cluster_lines) over the file in order,
then scores pairs:
  near duplicates: gold pairs are (first article of the event, article labelled syndicated);
                   predicted pairs are (duplicate_of, id);
  stories:         gold pairs share an event_id; predicted pairs share a story key.
--watch-source: where watch/round come from: `auto` = monitor.relevance with the rules of
--config (falls back to none when monitor.relevance or the rules are missing), `labels` = the
corpus labels (isolates the dedup engine from classifier mistakes), `none` = no watch.
--sweep prints the similarity distributions the [dedup] defaults were chosen from.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor import dedup  # noqa: E402
from monitor.dedup import DedupConfig, cluster_lines  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"


@dataclass(frozen=True)
class LabelDecision:
    flagged: bool
    watch: str | None
    round: int | None
    topics: tuple[str, ...] = ()


class LabelRules:
    """Stands in for RuleSet.classify with the corpus labels (a perfect classifier)."""

    def __init__(self, rows: list[dict[str, Any]]):
        self._by_text = {(r["title"], r["body"]): r for r in rows}

    def classify(self, title: str, body: str) -> LabelDecision:
        row = self._by_text[(title, body)]
        return LabelDecision(bool(row["relevant"]), row["dialogue"], row["round"], tuple(row.get("topics", ())))


def load_rules(config_path: Path) -> Any | None:
    try:
        from monitor.relevance import compile_rules
    except ImportError as error:
        print(f"(monitor.relevance not importable: {error}; running without watch/round)")
        return None
    candidates = [config_path, REPO / "config" / "monitor.toml"]
    for path in candidates:
        if not path.exists():
            continue
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if data.get("watches"):
            print(f"rules: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
            return compile_rules(data.get("terms", {}), data.get("watches", []), data.get("topics", {}))
    print("(no [[watches]] found; running without watch/round)")
    return None


def read_corpora(paths: list[Path]) -> list[dict[str, Any]]:
    """The rows of every file, by publication date. Each row's language is what its file is
    written in; with several files, an English file's event 'ev-en-X' is the Arabic file's
    'ev-X', so a happening reported in both languages is one gold story."""
    rows = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["copy_of_event"] = row["event_id"]  # near-copies stay within one file's events
                if len(paths) > 1:
                    row["event_id"] = row["event_id"].replace("ev-en-", "ev-", 1)
                rows.append(row)
    return sorted(rows, key=lambda row: datetime.fromisoformat(row["published"])) if len(paths) > 1 else rows


def load_config(config_path: Path) -> DedupConfig:
    if config_path.exists():
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        if "dedup" in data:
            return DedupConfig.model_validate(data["dedup"])
    return DedupConfig()


def pairs_of(groups: dict[Any, list[str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for members in groups.values():
        found.update(tuple(sorted(pair)) for pair in itertools.combinations(members, 2))
    return found


def _scores(gold: set[tuple[str, str]], predicted: set[tuple[str, str]]) -> tuple[float, float]:
    hits = len(gold & predicted)
    return (hits / len(predicted) if predicted else 1.0), (hits / len(gold) if gold else 1.0)


def report(name: str, gold: set[tuple[str, str]], predicted: set[tuple[str, str]]) -> tuple[float, float]:
    hits = gold & predicted
    precision = len(hits) / len(predicted) if predicted else 1.0
    recall = len(hits) / len(gold) if gold else 1.0
    print(f"{name}: precision {precision:.3f} ({len(hits)}/{len(predicted)})  recall {recall:.3f} ({len(hits)}/{len(gold)})")
    for pair in sorted(predicted - gold):
        print(f"   wrongly merged: {pair[0]} + {pair[1]}")
    for pair in sorted(gold - predicted):
        print(f"   wrongly split:  {pair[0]} / {pair[1]}")
    return precision, recall


def evaluate(rows: list[dict[str, Any]], config: DedupConfig, rules: Any | None, quiet: bool = False) -> dict[str, float]:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    results = []
    for out, err in cluster_lines(lines, config, rules=rules):
        if err is not None:
            raise SystemExit(f"cluster error: {err}")
        results.append(json.loads(out))
    first_of_event: dict[str, str] = {}
    for row in rows:
        first_of_event.setdefault(row.get("copy_of_event", row["event_id"]), row["id"])
    gold_dups = {
        tuple(sorted((first_of_event[row.get("copy_of_event", row["event_id"])], row["id"])))
        for row in rows if row["dup_kind"] == "syndicated"
    }
    predicted_dups = {tuple(sorted((r["duplicate_of"], r["id"]))) for r in results if r["duplicate_of"] is not None}
    events: dict[str, list[str]] = defaultdict(list)
    stories: dict[str, list[str]] = defaultdict(list)
    for row, result in zip(rows, results, strict=True):
        events[row["event_id"]].append(row["id"])
        stories[result["story"]].append(row["id"])
    if quiet:
        dup_p, dup_r = _scores(gold_dups, predicted_dups)
        story_p, story_r = _scores(pairs_of(events), pairs_of(stories))
        return {"dup_p": dup_p, "dup_r": dup_r, "story_p": story_p, "story_r": story_r}
    dup_p, dup_r = report("near-duplicate pairs", gold_dups, predicted_dups)
    story_p, story_r = report("story pairs", pairs_of(events), pairs_of(stories))
    # Unflagged articles are grouped only with their copies, by design: the figures that
    # matter to a reader are the pairs among relevant articles, in one language or across.
    relevant = {row["id"] for row in rows if row["relevant"]}
    gold_relevant = {pair for pair in pairs_of(events) if set(pair) <= relevant}
    predicted_relevant = {pair for pair in pairs_of(stories) if set(pair) <= relevant}
    report("story pairs among relevant articles", gold_relevant, predicted_relevant)
    script = {row["id"]: _script(row) for row in rows}
    across = {pair for pair in gold_relevant | predicted_relevant if script[pair[0]] != script[pair[1]]}
    if across:
        report("  of which across languages", gold_relevant & across, predicted_relevant & across)
    print(f"articles {len(rows)}, events {len(events)}, stories {len(stories)}")
    mixed = mixed_rounds(rows, stories)
    print(f"stories holding two labelled rounds: {len(mixed)}" + "".join(f"\n   {m}" for m in mixed))
    return {"dup_p": dup_p, "dup_r": dup_r, "story_p": story_p, "story_r": story_r}


def _script(row: dict[str, Any]) -> str:
    from monitor.language import text_language

    return text_language(row["title"], row["body"]) or "?"


def mixed_rounds(rows: list[dict[str, Any]], stories: dict[str, list[str]]) -> list[str]:
    """Predicted stories whose articles are labelled with two different rounds: what the
    story-level round rule (dedup.story_admits) must keep at zero."""
    round_of = {row["id"]: row["round"] for row in rows}
    mixed = []
    for members in stories.values():
        rounds = sorted({round_of[m] for m in members if round_of[m] is not None})
        if len(rounds) > 1:
            mixed.append(" + ".join(f"{m} (round {round_of[m]})" for m in members))
    return mixed


def sweep(rows: list[dict[str, Any]], base: DedupConfig, rules: Any | None) -> None:
    """The figures behind the defaults: how far apart the labelled classes sit."""
    first_of_event: dict[str, str] = {}
    for row in rows:
        first_of_event.setdefault(row["event_id"], row["id"])
    syndicated = {(first_of_event[r["event_id"]], r["id"]) for r in rows if r["dup_kind"] == "syndicated"}
    print("near duplicates: estimated Jaccard (MinHash) by shingle kind")
    print("  syn = syndicated pairs; other = pairs of different events (max, median);")
    print("  edited = each article vs a copy with new headline, last paragraph cut, 5% missing spaces, 2% typos;")
    print("  cand/1M = expected false LSH candidates per look-up in a 1M archive like this corpus")
    edited = [_edited_copy(row, seed) for seed, row in enumerate(rows)]
    for kind, size in [("char", 4), ("char", 5), ("char", 6), ("char", 7), ("char", 8), ("word", 2), ("word", 3), ("word", 5)]:
        config = base.model_copy(update={"shingle": kind, "shingle_size": size})
        features = {r["id"]: _features(r, config) for r in rows}
        syn, other = [], []
        for a, b in itertools.combinations(rows, 2):
            score = dedup.estimated_jaccard(features[a["id"]], features[b["id"]])
            if (a["id"], b["id"]) in syndicated:
                syn.append(score)
            elif a["event_id"] != b["event_id"]:
                other.append(score)
        copies = [dedup.estimated_jaccard(features[r["id"]], _features(e, config)) for r, e in zip(rows, edited, strict=True)]
        false_candidates = 1e6 * statistics.fmean(
            1 - (1 - o**config.rows) ** config.bands for o in other
        )
        print(
            f"  {kind}-{size}: syn min {min(syn):.3f} | other max {max(other):.3f} median {statistics.median(other):.3f}"
            f" | edited min {min(copies):.3f} p10 {statistics.quantiles(copies, n=10)[0]:.3f} | cand/1M {false_candidates:.0f}"
        )
    features = {r["id"]: _features(r, base) for r in rows}
    same, near_in_window = [], []
    gaps_same, gaps_lookalike = [], []
    for a, b in itertools.combinations(rows, 2):
        fa, fb = features[a["id"]], features[b["id"]]
        similarity = dedup.keyword_similarity(fa, fb)
        gap = abs(fa.published - fb.published)
        if a["event_id"] == b["event_id"]:
            same.append((similarity, a["id"], b["id"]))
            gaps_same.append(gap)
        else:
            if gap <= base.story_window:
                near_in_window.append((similarity, a["id"], b["id"], a["dialogue"], b["dialogue"]))
            if a["dialogue"] and a["dialogue"] == b["dialogue"] and (a["round"] == b["round"] or None in (a["round"], b["round"])):
                gaps_lookalike.append((gap, a["id"], b["id"]))
    print("stories: keyword Jaccard of same-event pairs")
    print("  " + ", ".join(f"{s:.3f} {a}/{b}" for s, a, b in sorted(same)))
    print(f"  different events within {base.story_window}: " + ", ".join(f"{s:.3f} {a}/{b} ({da}/{db})" for s, a, b, da, db in sorted(near_in_window, reverse=True)[:6]))
    if rules is not None:
        story_grid(rows, base, rules)
    print(f"  publication gap: same event max {max(gaps_same)}; different happening, same watch and compatible round, min "
          + ", ".join(f"{g} {a}/{b}" for g, a, b in sorted(gaps_lookalike)[:4]))


def _edited_copy(row: dict[str, Any], seed: int) -> dict[str, Any]:
    """A harder syndicated copy than the corpus has: new headline, last paragraph cut,
    5% of spaces lost, 2% of words with a letter dropped."""
    rng = random.Random(seed)
    paragraphs = [p for p in row["body"].split("\n") if p.strip()]
    if len(paragraphs) > 2:
        paragraphs = paragraphs[:-1]
    words = []
    for word in "\n".join(paragraphs).split(" "):
        if len(word) > 3 and rng.random() < 0.02:
            cut = rng.randrange(len(word))
            word = word[:cut] + word[cut + 1 :]
        words.append(word)
    body = words[0] + "".join(("" if rng.random() < 0.05 else " ") + w for w in words[1:])
    return {**row, "title": "عنوان آخر للخبر نفسه", "body": body}


def _features(row: dict[str, Any], config: DedupConfig) -> dedup.ArticleFeatures:
    return dedup.compute_features(
        row["title"], row["body"], row.get("url"), datetime.fromisoformat(row["published"]),
        row["dialogue"], row["round"], config,
    )


def story_grid(rows: list[dict[str, Any]], base: DedupConfig, rules: Any) -> None:
    print("story pairs P/R by window (rows) and keyword-similarity threshold (columns), watch/round from the rules:")
    thresholds = [0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.25]
    print("  window " + " ".join(f"{t:>11}" for t in thresholds))
    for hours in (12, 24, 48, 72, 96, 120, 168):
        cells = []
        for threshold in thresholds:
            config = base.model_copy(update={"story_window": timedelta(hours=hours), "story_threshold": threshold})
            scores = evaluate(rows, config, rules, quiet=True)
            cells.append(f"{scores['story_p']:.2f}/{scores['story_r']:.2f}")
        print(f"  {hours:>4} h " + " ".join(f"{c:>11}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, nargs="+", default=[DEFAULT_CORPUS],
                        help="one or more JSON Lines files; several are merged in publication order, and event ids"
                             " 'ev-en-X' and 'ev-X' are then one event (the same happening reported in both languages)")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "monitor.toml")
    parser.add_argument("--watch-source", choices=["auto", "labels", "none"], default="auto")
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    rows = read_corpora(args.corpus)
    config = load_config(args.config)
    if args.sweep:
        sweep(rows, config, load_rules(args.config))
        return 0
    rules = {"auto": lambda: load_rules(args.config), "labels": lambda: LabelRules(rows), "none": lambda: None}[args.watch_source]()
    print(f"corpus {' + '.join(str(path) for path in args.corpus)}; watch source {args.watch_source}")
    scores = evaluate(rows, config, rules)
    targets = scores["dup_p"] >= 0.98 and scores["dup_r"] >= 0.95 and scores["story_p"] >= 0.95 and scores["story_r"] >= 0.80
    print("targets (dup P>=0.98 R>=0.95, story P>=0.95 R>=0.80):", "met" if targets else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

