"""Evaluate the relevance rules on a labelled JSON Lines corpus (the format of dev.jsonl).

Prints flag precision/recall/F1, partner accuracy on true positives, round accuracy on the
relevant articles that state a round, topic precision/recall, and every misclassified id with
the engine's explanation, so that whoever tunes the rules sees what to change.

    .venv/bin/python bench/eval_relevance.py [CORPUS ...] [--corpus PATH ...] [--config PATH] [--verbose]

Without --corpus it evaluates the Arabic (dev.jsonl) and the English (dev-en.jsonl)
development corpora in turn; --corpus may be given several times.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.relevance import Decision, RuleSet, RulesConfig, compile_rules  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"
DEFAULT_ENGLISH_CORPUS = REPO.parent / "shared" / "corpus" / "dev-en.jsonl"
DEFAULT_CONFIG = REPO / "config" / "monitor.toml"


@dataclass(frozen=True)
class Labelled:
    id: str
    title: str
    body: str
    relevant: bool
    dialogue: str | None
    round: int | None
    topics: frozenset[str]
    borderline: bool


def load_rules(path: Path) -> RuleSet:
    """Read the rule sections from a rules fragment or a whole monitor.toml."""
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    sections = RulesConfig.model_validate({key: document[key] for key in ("terms", "watches", "topics") if key in document})
    return compile_rules(sections.terms, sections.watches, sections.topics)


def load_corpus(path: Path) -> list[Labelled]:
    articles = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            d = json.loads(line)
            articles.append(
                Labelled(
                    id=d["id"],
                    title=d.get("title") or "",
                    body=d.get("body") or d.get("summary") or "",
                    relevant=bool(d["relevant"]),
                    dialogue=d.get("dialogue"),
                    round=d.get("round"),
                    topics=frozenset(d.get("topics") or ()),
                    borderline=bool(d.get("borderline")),
                )
            )
    return articles


def ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate(articles: list[Labelled], rules: RuleSet, verbose: bool) -> int:
    decisions: dict[str, Decision] = {a.id: rules.classify(a.title, a.body) for a in articles}
    tp = [a for a in articles if a.relevant and decisions[a.id].flagged]
    fp = [a for a in articles if not a.relevant and decisions[a.id].flagged]
    fn = [a for a in articles if a.relevant and not decisions[a.id].flagged]
    precision = ratio(len(tp), len(tp) + len(fp))
    recall = ratio(len(tp), len(tp) + len(fn))
    f1 = ratio(int(2 * precision * recall * 1_000_000), int((precision + recall) * 1_000_000))

    partner_wrong = [a for a in tp if decisions[a.id].watch != a.dialogue]
    with_round = [a for a in articles if a.relevant and a.round is not None]
    round_wrong = [a for a in with_round if decisions[a.id].round != a.round]
    null_round_wrong = [a for a in articles if a.relevant and a.round is None and decisions[a.id].round is not None]

    topic_tp = topic_fp = topic_fn = 0
    for a in tp:
        predicted = set(decisions[a.id].topics)
        topic_tp += len(predicted & a.topics)
        topic_fp += len(predicted - a.topics)
        topic_fn += len(a.topics - predicted)

    print(f"corpus: {len(articles)} articles, {sum(a.relevant for a in articles)} relevant")
    print(f"flag     precision {precision:.3f}  recall {recall:.3f}  F1 {f1:.3f}  (tp {len(tp)}, fp {len(fp)}, fn {len(fn)})")
    print(f"partner  correct on {len(tp) - len(partner_wrong)}/{len(tp)} true positives = {ratio(len(tp) - len(partner_wrong), len(tp)):.3f}")
    print(
        f"round    correct on {len(with_round) - len(round_wrong)}/{len(with_round)} relevant articles that state one"
        f" = {ratio(len(with_round) - len(round_wrong), len(with_round)):.3f}"
        f"  (round given where label is null: {len(null_round_wrong)})"
    )
    print(
        f"topics   precision {ratio(topic_tp, topic_tp + topic_fp):.3f}  recall {ratio(topic_tp, topic_tp + topic_fn):.3f}"
        f"  (on true positives; tp {topic_tp}, fp {topic_fp}, fn {topic_fn})"
    )

    def show(label: str, items: list[Labelled], detail) -> None:
        if not items:
            return
        print(f"\n{label}:")
        for a in items:
            mark = " [borderline]" if a.borderline else ""
            print(f"  {a.id}{mark}: {detail(a)}")
            print(f"      {decisions[a.id].explanation}")

    show("false positives", fp, lambda a: f"flagged {decisions[a.id].watch}")
    show("false negatives", fn, lambda a: f"expected {a.dialogue}")
    show("wrong partner", partner_wrong, lambda a: f"expected {a.dialogue}, got {decisions[a.id].watch}")
    show("wrong round", round_wrong + null_round_wrong, lambda a: f"expected {a.round}, got {decisions[a.id].round}")
    if verbose:
        print("\nall decisions:")
        for a in articles:
            d = decisions[a.id]
            print(f"  {a.id} rel={a.relevant} flag={d.flagged} score={d.score:.1f} watch={d.watch} round={d.round} topics={list(d.topics)}")
            print(f"      {d.explanation}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, nargs="*", help="labelled JSON Lines (same as --corpus)")
    parser.add_argument(
        "--corpus", type=Path, action="append", help=f"labelled JSON Lines, repeatable (default: {DEFAULT_CORPUS} and {DEFAULT_ENGLISH_CORPUS.name})"
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="rules fragment or monitor.toml (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="print every decision")
    args = parser.parse_args(argv)
    corpora = [*args.corpora, *(args.corpus or [])] or [c for c in (DEFAULT_CORPUS, DEFAULT_ENGLISH_CORPUS) if c.exists() or c == DEFAULT_CORPUS]
    rules = load_rules(args.config)
    for number, corpus in enumerate(corpora):
        if len(corpora) > 1:
            print(("\n" if number else "") + f"== {corpus.name}")
        evaluate(load_corpus(corpus), rules, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
