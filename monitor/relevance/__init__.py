"""Relevance rules: named Arabic term lists combined into weighted, explainable watches.

The rules are the analyst's main lever, so they are written in plain Arabic in TOML and
compiled once at start-up; every mistake in them (unknown list, empty group, bad regex,
duplicate id) is a `RulesError` naming the key path, never a rule that silently matches
nothing. The model is the one of the better keyword-alert systems (EMM's weighted patterns
with Boolean combinations and proximity): required term lists, exclusions, weighted clauses
that may require several lists within a window of words, and a score threshold, with matches
in the title and the lead counting more than matches deep in the body, where passing
mentions live.
"""

from monitor.relevance.classify import MAX_HITS_PER_TERM, RuleSet
from monitor.relevance.compile import classify_lines, compile_rules
from monitor.relevance.model import (
    ENGINE_VERSION,
    ClauseConfig,
    Decision,
    Match,
    RulesConfig,
    RulesError,
    WatchConfig,
)

__all__ = [
    "ENGINE_VERSION",
    "MAX_HITS_PER_TERM",
    "ClauseConfig",
    "Decision",
    "Match",
    "RuleSet",
    "RulesConfig",
    "RulesError",
    "WatchConfig",
    "classify_lines",
    "compile_rules",
]
