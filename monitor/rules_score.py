"""`monitor rules test`: rules scored against the analyst's labels (`monitor label`).

The scores are those bench/eval_relevance.py gives on the development corpus, so a user's
figures and the project's read the same: the flag's precision, recall and F1; partner
accuracy on the true positives; round accuracy on the articles labelled relevant with a
round (a label without a round says nothing about it). Every disagreement is listed with
the matches and the engine's explanation, which is what the user edits the rules from.
The labelled articles are read in id-ordered batches like `rules diff` reads the archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import Engine

from monitor.relevance import Decision, RuleSet
from monitor.rules_review import (
    decision_before,
    decision_summary,
    match_record,
    matches_text,
    one_line,
    verdict_text,
)
from monitor.store.labels import BATCH_ROWS, Label, StoredArticle, labelled_batches


@dataclass(frozen=True)
class Disagreement:
    article: StoredArticle
    label: Label
    decision: Decision
    problems: tuple[str, ...]  # false_positive | false_negative | wrong_partner | wrong_round


@dataclass
class Scores:
    """The rules against the labels, as bench/eval_relevance.py scores the development corpus:
    the flag's precision, recall and F1; the partner on true positives; the round on the
    articles labelled relevant with a round."""

    labelled: int = 0
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0
    partner_right: int = 0
    rounds_labelled: int = 0
    rounds_right: int = 0

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float | None:
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    @property
    def partner_accuracy(self) -> float | None:
        return _ratio(self.partner_right, self.true_positives)

    @property
    def round_accuracy(self) -> float | None:
        return _ratio(self.rounds_right, self.rounds_labelled)

    def record(self) -> dict[str, Any]:
        return {
            "labelled": self.labelled,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "precision": _rounded(self.precision),
            "recall": _rounded(self.recall),
            "f1": _rounded(self.f1),
            "partner_accuracy": _rounded(self.partner_accuracy),
            "partner_checked": self.true_positives,
            "round_accuracy": _rounded(self.round_accuracy),
            "rounds_checked": self.rounds_labelled,
        }

    def lines(self) -> list[str]:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        return [
            (f"labelled {self.labelled}: {tp} true positives, {fp} false positives, {fn} false negatives, "
             f"{self.true_negatives} true negatives"),
            f"flag     precision {_shown(self.precision)}  recall {_shown(self.recall)}  F1 {_shown(self.f1)}",
            f"partner  {self.partner_right}/{tp} true positives = {_shown(self.partner_accuracy)}",
            f"round    {self.rounds_right}/{self.rounds_labelled} labelled rounds = {_shown(self.round_accuracy)}",
        ]


def judge(label: Label, decision: Decision, scores: Scores) -> tuple[str, ...]:
    """Count one labelled article into `scores`; what the rules got wrong about it."""
    scores.labelled += 1
    relevant = label.verdict == "relevant"
    problems: list[str] = []
    if relevant and decision.flagged:
        scores.true_positives += 1
        if decision.watch == label.watch:
            scores.partner_right += 1
        else:
            problems.append("wrong_partner")
    elif decision.flagged:
        scores.false_positives += 1
        problems.append("false_positive")
    elif relevant:
        scores.false_negatives += 1
        problems.append("false_negative")
    else:
        scores.true_negatives += 1
    if relevant and label.round is not None:
        scores.rounds_labelled += 1
        if decision.round == label.round:
            scores.rounds_right += 1
        else:
            problems.append("wrong_round")
    return tuple(problems)


def test_rules(engine: Engine, rules: RuleSet, scores: Scores, batch: int = BATCH_ROWS) -> Iterator[Disagreement]:
    """Every labelled article where `rules` disagree with the analyst, in id order; `scores`
    fills as they go by."""
    for rows in labelled_batches(engine, batch):
        for article, label in rows:
            decision = decision_before(article, rules)
            problems = judge(label, decision, scores)
            if problems:
                yield Disagreement(article, label, decision, problems)


test_rules.__test__ = False  # type: ignore[attr-defined]  (not a pytest test)


def run_test(engine: Engine, rules: RuleSet, out: IO[str], *, as_json: bool = False, batch: int = BATCH_ROWS) -> Scores:
    """Text: each disagreement as it is found, then the scores. --json: one object, the scores
    and the list of disagreements (as many as there are labels, at most)."""
    scores = Scores()
    disagreements = test_rules(engine, rules, scores, batch)
    if as_json:
        found = [disagreement_record(d) for d in disagreements]
        out.write(json.dumps({**scores.record(), "disagreements": found}, ensure_ascii=False) + "\n")
        return scores
    for disagreement in disagreements:
        out.write(disagreement_text(disagreement))
    for line in scores.lines():
        out.write(line + "\n")
    return scores


def disagreement_record(item: Disagreement) -> dict[str, Any]:
    label, decision = item.label, item.decision
    return {
        "id": item.article.id,
        "title": item.article.title,
        "problems": list(item.problems),
        "label": {"verdict": label.verdict, "watch": label.watch, "round": label.round, "note": label.note},
        "rules": decision_summary(decision),
        "matches": [match_record(m, item.article) for m in decision.matches],
        "explanation": decision.explanation,
    }


def disagreement_text(item: Disagreement) -> str:
    label, decision, article = item.label, item.decision, item.article
    wanted = label.verdict if label.verdict == "irrelevant" else f"relevant {label.watch}" + (
        f" round {label.round}" if label.round is not None else ""
    )
    lines = [
        (f"{', '.join(p.replace('_', ' ') for p in item.problems):<17} {article.id:>8}  "
         f"label: {wanted}; rules: {verdict_text(decision)}  {one_line(article.title)}"),
        f"    matches: {matches_text(decision.matches, article)}",
        f"    rules: {decision.explanation}",
    ]
    if label.note:
        lines.append(f"    note: {one_line(label.note)}")
    return "\n".join(lines) + "\n"


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
