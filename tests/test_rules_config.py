"""Invalid rules are start-up errors naming the key path, never silent non-matches."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.relevance import RulesError, WatchConfig, compile_rules

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "config" / "monitor.toml"

TERMS = {"kuwait": ["كويت"], "partner": ["واشنطن"], "dialogue": ["الحوار الاستراتيجي"]}


def watch(**overrides) -> dict:
    base = {"id": "w", "all": ["kuwait"], "any": ["dialogue"], "clauses": [{"terms": ["dialogue"]}]}
    base.update(overrides)
    return base


def compile_one(terms: dict | None = None, watches: list[dict] | None = None, topics: dict | None = None):
    return compile_rules(terms if terms is not None else TERMS, [WatchConfig.model_validate(w) for w in (watches or [watch()])], topics or {})


@pytest.mark.parametrize(
    ("overrides", "key_path"),
    [
        ({"all": ["kuwait", "nope"]}, "watches[0].all[1]"),
        ({"any": ["nope"]}, "watches[0].any[0]"),
        ({"none": ["nope"]}, "watches[0].none[0]"),
        ({"mask": ["nope"]}, "watches[0].mask[0]"),
        ({"round_after": ["nope"]}, "watches[0].round_after[0]"),
        ({"clauses": [{"terms": ["dialogue", "nope"]}]}, "watches[0].clauses[0].terms[1]"),
    ],
)
def test_unknown_term_list(overrides: dict, key_path: str) -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(watches=[watch(**overrides)])
    assert caught.value.key_path == key_path
    assert "unknown term list 'nope'" in str(caught.value)
    assert str(caught.value).startswith(key_path + ": ")


def test_empty_term_list() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "empty": []})
    assert caught.value.key_path == "terms.empty"


def test_empty_term() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "partner": ["واشنطن", "  "]})
    assert caught.value.key_path == "terms.partner[1]"


def test_term_without_letters() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "partner": ["واشنطن", "« »"]})
    assert caught.value.key_path == "terms.partner[1]"


def test_empty_clause_group() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(watches=[watch(clauses=[{"terms": ["dialogue"]}, {"terms": []}])])
    assert caught.value.key_path == "watches[0].clauses[1].terms"
    assert "empty group" in str(caught.value)


def test_watch_without_clauses() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(watches=[watch(clauses=[])])
    assert caught.value.key_path == "watches[0].clauses"


def test_watch_without_required_lists() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(watches=[watch(all=[], any=[])])
    assert caught.value.key_path == "watches[0]"


def test_bad_regex() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "partner": ["واشنطن", "re:(unclosed"]})
    assert caught.value.key_path == "terms.partner[1]"
    assert "bad regex" in str(caught.value)


def test_bad_regex_in_topics() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(topics={"cyber": ["سيبراني", "re:[z-a]"]})
    assert caught.value.key_path == "topics.cyber[1]"


def test_duplicate_watch_ids() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(watches=[watch(), watch(title="again")])
    assert caught.value.key_path == "watches[1].id"


def test_duplicate_terms_once_normalised() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "partner": ["أمريكا", "امريكا"]})
    assert caught.value.key_path == "terms.partner[1]"
    assert "duplicate" in str(caught.value)


def test_unknown_list_reference_inside_a_term() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "partner": ["واشنطن", "سفير @nowhere"]})
    assert caught.value.key_path == "terms.partner[1]"


def test_list_references_in_a_cycle() -> None:
    with pytest.raises(RulesError) as caught:
        compile_one(terms={**TERMS, "a": ["x @b"], "b": ["y @a"]})
    assert "cycle" in str(caught.value)


def test_watch_keys_are_validated_by_the_model() -> None:
    with pytest.raises(ValidationError):
        WatchConfig.model_validate(watch(treshold=3))
    with pytest.raises(ValidationError):
        WatchConfig.model_validate(watch(id="Not An Id"))


def test_default_rules_compile_with_both_watches() -> None:
    document = tomllib.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    rules = compile_rules(document["terms"], [WatchConfig.model_validate(w) for w in document["watches"]], document["topics"])
    assert [w.id for w in rules.watches] == ["kw-us", "kw-uk"]
    assert set(document["topics"]) == {
        "defense", "security", "counter_terrorism", "cyber", "trade_investment", "education",
        "health", "consular", "culture", "environment", "energy", "political",
    }
