"""Compiling the rule sections into a RuleSet, and the JSON Lines driver of `monitor classify`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pydantic import ValidationError

from monitor.jsonl import BadLine, read_article
from monitor.relevance.classify import RuleSet, _Clause, _Watch
from monitor.relevance.model import DISPLAY_ONLY_KEYS, ENGINE_VERSION, RulesError, WatchConfig
from monitor.relevance.prefilter import _build_prefilter
from monitor.relevance.terms import _TermIndex

def compile_rules(
    terms: dict[str, list[str]], watches: Sequence[WatchConfig], topics: dict[str, list[str]]
) -> RuleSet:
    """Validate and compile the rule sections; raise RulesError with the key path on problems."""
    terms = dict(terms or {})
    topics = dict(topics or {})
    watches = [w if isinstance(w, WatchConfig) else _validate_watch(w, i) for i, w in enumerate(watches or [])]
    index = _TermIndex(terms, "terms")
    topic_index = _TermIndex(topics, "topics", references={**terms, **topics})
    compiled = []
    seen_ids: set[str] = set()
    for number, watch in enumerate(watches):
        key = f"watches[{number}]"
        if watch.id in seen_ids:
            raise RulesError(f"{key}.id", f"duplicate watch id {watch.id!r}")
        seen_ids.add(watch.id)
        for group in ("all", "any", "none", "mask", "round_after"):
            for position, name in enumerate(getattr(watch, group)):
                _check_list(terms, name, f"{key}.{group}[{position}]")
        if not watch.all and not watch.any:
            raise RulesError(f"{key}", "a watch needs at least one required list in `all` or `any`")
        clauses = []
        for position, clause in enumerate(watch.clauses):
            clause_key = f"{key}.clauses[{position}]"
            if not clause.terms:
                raise RulesError(f"{clause_key}.terms", "empty group")
            for term_position, name in enumerate(clause.terms):
                _check_list(terms, name, f"{clause_key}.terms[{term_position}]")
            clauses.append(_Clause(tuple(clause.terms), clause.weight, clause.within, clause.max_count))
        if not clauses:
            raise RulesError(f"{key}.clauses", "empty group: a watch needs at least one weighted clause")
        compiled.append(_Watch(watch, tuple(clauses)))
    return RuleSet(
        watches=tuple(compiled),
        index=index,
        topic_index=topic_index,
        fingerprint=_fingerprint(terms, watches, topics),
        prefilter=_build_prefilter(watches, terms),
    )


def _validate_watch(raw: Any, number: int) -> WatchConfig:
    try:
        return WatchConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        raise RulesError(f"watches[{number}]{path}", error["msg"]) from None


def _check_list(terms: dict[str, list[str]], name: str, key: str) -> None:
    if name not in terms:
        known = ", ".join(sorted(terms)) or "none defined"
        raise RulesError(key, f"unknown term list {name!r} (known: {known})")


def _fingerprint(terms: dict[str, list[str]], watches: Sequence[WatchConfig], topics: dict[str, list[str]]) -> str:
    payload = {
        "engine": ENGINE_VERSION,
        "terms": terms,
        "watches": [w.model_dump(mode="json", exclude=set(DISPLAY_ONLY_KEYS)) for w in watches],
        "topics": topics,
    }
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- JSON Lines (the `monitor classify` contract) --------------------------------------------------


def classify_lines(lines: Iterable[str], ruleset: RuleSet) -> Iterator[tuple[str | None, str | None]]:
    """For each input line: (output line, None) or (None, error line). Blank lines are skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            article = read_article(line)
        except BadLine as bad:
            yield None, bad.error_line(number)
            continue
        body = article.get("body")
        if body is None:
            body = article.get("summary") or ""
        decision = ruleset.classify(article["title"], body)
        out = {"id": article["id"], **decision.to_json_dict()}
        yield json.dumps(out, ensure_ascii=False), None
