"""Changing rules safely (#10, part 5): `monitor rules diff` and `monitor rules test`.

Users edit `[terms]` and `[[watches]]` by hand, and a rule that looks right can silently
flag a thousand book fairs or drop a round. These two commands show the effect of an edit
on the user's own stored articles before the daemon runs with it:

- `rules diff NEW_CONFIG` classifies the stored articles with the new rules and lists what
  would change (newly flagged, no longer flagged, partner changed, round changed), each with
  the matches that decide. It stores nothing: the diff is a preview, `monitor reclassify`
  (or a daemon restarted on the new file) applies it.
- `rules test [CONFIG]` scores rules on the articles the analyst has labelled (`monitor
  label`): precision, recall and F1 of the flag, partner and round accuracy, and every
  disagreement, so rules are tuned on the user's articles as they accumulate.

"Before" is what the running config's rules decide: the stored decision when it was made
under exactly those rules (same fingerprint), else a fresh classification with them, so a
diff shows the effect of the edit and not of a daemon that has not reclassified yet (or of
a new engine version). Articles are classified exactly as the poller does (`RuleSet.classify`
on the stored title and text, monitor.pipeline.prepare_entry). Both commands read the archive
in id-ordered batches (monitor.store.labels) and write each result as it is found, so memory
stays flat whatever the archive's size (bench/rules_diff_bench.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import structlog
from sqlalchemy import Engine

from monitor.config import Config, load_config
from monitor.export import ExportError, iso_utc, parse_since
from monitor.models import utcnow
from monitor.relevance import Decision, Match, RuleSet
from monitor.store.labels import (
    BATCH_ROWS,
    Label,
    LabelError,
    StoredArticle,
    article_batches,
    check_label,
    set_label,
)

log = structlog.get_logger(__name__)

# The kinds of change, in the order the summary lists them; one per article, the first that applies.
KINDS = ("newly_flagged", "no_longer_flagged", "watch_changed", "round_changed")
KIND_TEXT = {
    "newly_flagged": "newly flagged",
    "no_longer_flagged": "no longer flagged",
    "watch_changed": "partner changed",
    "round_changed": "round changed",
}
MAX_MATCHES_SHOWN = 8  # in the text output; --json lists them all


def decision_before(article: StoredArticle, rules: RuleSet) -> Decision:
    """What `rules` decide about the article: the stored decision when it was made under these
    very rules (the usual case: the daemon runs them), else classified now."""
    if article.rules_fingerprint == rules.fingerprint and article.decision:
        try:
            return Decision.from_json_dict(json.loads(article.decision))
        except (ValueError, KeyError, TypeError):
            log.debug("stored decision unreadable; classifying again", article_id=article.id)
    return classify(article, rules)


def classify(article: StoredArticle, rules: RuleSet) -> Decision:
    """As the poller does: the title and the text stored are exactly what it classified."""
    return rules.classify(article.title, article.summary)


# -- rules diff ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    article: StoredArticle
    kind: str
    before: Decision
    after: Decision


@dataclass
class DiffSummary:
    compared: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def line(self, since: datetime | None) -> str:
        scope = f"first seen since {iso_utc(since)}" if since is not None else "all stored"
        kinds = ", ".join(f"{self.counts[kind]} {KIND_TEXT[kind]}" for kind in KINDS)
        return f"rules diff: {self.compared} articles compared ({scope}): {kinds}"


def change_kind(before: Decision, after: Decision) -> str | None:
    """Which of KINDS the step from `before` to `after` is, or None (score and topics alone
    are not a change: they move with every edit and decide nothing the user sees)."""
    if after.flagged != before.flagged:
        return "newly_flagged" if after.flagged else "no_longer_flagged"
    if not after.flagged:
        return None
    if after.watch != before.watch:
        return "watch_changed"
    if after.round != before.round:
        return "round_changed"
    return None


def diff_rules(
    engine: Engine, current: RuleSet, new: RuleSet, since: datetime | None, summary: DiffSummary,
    batch: int = BATCH_ROWS,
) -> Iterator[Change]:
    """The changes `new` makes to the decisions of `current`, in article id order; `summary`
    counts the articles compared and the changes of each kind as they go by."""
    for rows in article_batches(engine, since, batch):
        for article in rows:
            summary.compared += 1
            after = classify(article, new)
            # Most articles do not change: when the row's decision is the running rules', its
            # columns tell, and the stored decision is read whole only for a change.
            before: Decision | None = None
            if article.rules_fingerprint != current.fingerprint:
                before = classify(article, current)
            elif change_kind(Decision(article.flagged, article.watch, 0.0, 0.0, article.round, (), ()), after):
                before = decision_before(article, current)
            kind = change_kind(before, after) if before is not None else None
            if before is not None and kind is not None:
                summary.counts[kind] += 1
                yield Change(article, kind, before, after)


def run_diff(
    engine: Engine, current: RuleSet, new: RuleSet, since: datetime | None, out: IO[str], err: IO[str],
    *, as_json: bool = False, batch: int = BATCH_ROWS,
) -> DiffSummary:
    """Write each change as it is found (text, or one JSON object per line), then the summary
    line (on stderr with --json, so stdout holds only the changes)."""
    summary = DiffSummary()
    for change in diff_rules(engine, current, new, since, summary, batch):
        out.write(change_json_line(change) if as_json else change_text(change))
    out.flush()
    (err if as_json else out).write(summary.line(since) + "\n")
    return summary


def change_record(change: Change) -> dict[str, Any]:
    """The --json object of one change (a contract: new keys may be added, none change
    meaning). `matches` are the new rules' (what decides now); `before_matches` the old ones
    (for no_longer_flagged, what made it flagged)."""
    article = change.article
    return {
        "id": article.id,
        "kind": change.kind,
        "title": article.title,
        "first_seen": iso_utc(article.first_seen_at),
        "before": decision_summary(change.before),
        "after": decision_summary(change.after),
        "matches": [match_record(m, article) for m in change.after.matches],
        "before_matches": [match_record(m, article) for m in change.before.matches],
        "explanation": change.after.explanation,
    }


def change_json_line(change: Change) -> str:
    return json.dumps(change_record(change), ensure_ascii=False) + "\n"


def change_text(change: Change) -> str:
    article, before, after = change.article, change.before, change.after
    lines = [f"{KIND_TEXT[change.kind]:<17} {article.id:>8}  {verdict_text(before)} -> {verdict_text(after)}  {one_line(article.title)}"]
    deciding = before if change.kind == "no_longer_flagged" else after
    label = "matched before" if change.kind == "no_longer_flagged" else "matches"
    lines.append(f"    {label}: {matches_text(deciding.matches, article)}")
    lines.append(f"    now: {after.explanation}")
    return "\n".join(lines) + "\n"


# -- the commands (monitor.cli parses the arguments) --------------------------------------------------


def open_review_engine(config: Config) -> Engine:
    """The database at the latest schema, with the feed table left as the daemon has it
    (unlike open_store, which applies the config's feeds): reviewing rules writes nothing but
    labels."""
    from monitor.store import make_engine, upgrade

    engine = make_engine(config.database_url)
    upgrade(engine)
    return engine


def rules_diff_command(config: Config, new_config: str, since: str | None, as_json: bool, out: IO[str], err: IO[str]) -> int:
    """`monitor rules diff NEW_CONFIG [--since 30d] [--json]`. NEW_CONFIG is validated as any
    config is (a bad one is one line naming file, key and problem: ConfigError, exit 2); only
    its rules are used, the database is the running config's."""
    try:
        start = parse_since(since, utcnow()) if since is not None else None
    except ExportError as exc:
        err.write(f"monitor: rules diff {exc}\n")
        return 2
    new = load_config(Path(new_config)).rules
    with _reader_may_leave(out):
        run_diff(open_review_engine(config), config.rules, new, start, out, err, as_json=as_json)
    return 0


def rules_test_command(config: Config, rules_config: str | None, as_json: bool, out: IO[str]) -> int:
    """`monitor rules test [CONFIG] [--json]`: the rules of CONFIG (default the running one)
    on the labelled articles of the running config's database."""
    rules = load_config(Path(rules_config)).rules if rules_config else config.rules
    from monitor.rules_score import run_test

    with _reader_may_leave(out):
        run_test(open_review_engine(config), rules, out, as_json=as_json)
    return 0


@contextmanager
def _reader_may_leave(out: IO[str]) -> Iterator[None]:
    """`monitor rules diff … | head` stops quietly when the reader leaves (as `export` does):
    the rest of the output, and the interpreter's flush at exit, go nowhere."""
    try:
        yield
    except BrokenPipeError:
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def label_command(
    config: Config, article_id: int, verdict: str, watch: str | None, round: int | None, note: str | None,
    out: IO[str], err: IO[str],
) -> int:
    """`monitor label ARTICLE_ID relevant|irrelevant [--watch ID] [--round N]`."""
    known = [w.id for w in config.watches]
    try:
        check_label(verdict, watch, round, known)
        label, previous = set_label(
            open_review_engine(config), article_id, verdict, watch=watch, round=round, known_watches=known,
            now=utcnow(), note=note,
        )
    except LabelError as exc:
        err.write(f"monitor: label: {exc}\n")
        return 2
    replaced = f" (was {_label_text(previous)})" if previous is not None and _label_text(previous) != _label_text(label) else ""
    out.write(f"article {article_id}: {_label_text(label)}{replaced}\n")
    return 0


def _label_text(label: Label) -> str:
    if label.verdict != "relevant":
        return label.verdict
    return f"relevant {label.watch}" + (f" round {label.round}" if label.round is not None else "")


# -- shared formatting ------------------------------------------------------------------------------


def decision_summary(decision: Decision) -> dict[str, Any]:
    return {
        "flagged": decision.flagged,
        "watch": decision.watch,
        "round": decision.round,
        "score": round(decision.score, 3),
        "topics": list(decision.topics),
    }


def match_record(match: Match, article: StoredArticle) -> dict[str, Any]:
    return {"term": match.term, "field": match.field, "start": match.start, "end": match.end,
            "text": _matched_text(match, article)}


def _matched_text(match: Match, article: StoredArticle) -> str:
    source = article.title if match.field == "title" else article.summary
    return source[match.start:match.end]


def matches_text(matches: Iterable[Match], article: StoredArticle) -> str:
    """The matches as published, once each per field with a count («الكويت» ×2), the term
    that matched when it reads differently; --json lists every match with its offsets."""
    counts: Counter[tuple[str, str, str]] = Counter(
        (one_line(_matched_text(match, article)), match.field, match.term) for match in matches
    )
    shown = [
        f"«{text}» ({field}{'' if text == term else ', term «' + term + '»'})" + (f" ×{count}" if count > 1 else "")
        for (text, field, term), count in list(counts.items())[:MAX_MATCHES_SHOWN]
    ]
    if len(counts) > MAX_MATCHES_SHOWN:
        shown.append(f"… {len(counts) - MAX_MATCHES_SHOWN} more")
    return ", ".join(shown) or "none"


def verdict_text(decision: Decision) -> str:
    if not decision.flagged:
        return "not flagged"
    return (decision.watch or "flagged") + (f" round {decision.round}" if decision.round is not None else "")


def one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"



