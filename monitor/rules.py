"""The relevance engine's former home, kept as a name: it lives in the `monitor.relevance`
package now (model, terms, prefilter, rounds, classify, compile), split when the module
outgrew 1,200 lines. Everything imported from `monitor.rules` keeps working."""

from __future__ import annotations

from monitor.relevance import (
    ENGINE_VERSION,
    MAX_HITS_PER_TERM,
    ClauseConfig,
    Decision,
    Match,
    RuleSet,
    RulesConfig,
    RulesError,
    WatchConfig,
    classify_lines,
    compile_rules,
)
from monitor.relevance.compile import _article_problem

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
    "_article_problem",
    "classify_lines",
    "compile_rules",
]
