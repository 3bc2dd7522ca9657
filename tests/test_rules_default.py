"""The shipped rules on hand-written articles: the dialogues flagged with partner and round,
the look-alikes (other parties' dialogues, other senses of «حوار», Kuwait–US news outside the
framework, passing mentions) not flagged."""

from __future__ import annotations

import json
import pickle
import tomllib
from pathlib import Path

import pytest

from monitor.relevance import RuleSet, WatchConfig, compile_rules

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = [json.loads(line) for line in (ROOT / "tests" / "fixtures" / "rules" / "articles.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def default_rules() -> RuleSet:
    document = tomllib.loads((ROOT / "config" / "monitor.toml").read_text(encoding="utf-8"))
    return compile_rules(document["terms"], [WatchConfig.model_validate(w) for w in document["watches"]], document["topics"])


@pytest.mark.parametrize("article", ARTICLES, ids=[a["id"] for a in ARTICLES])
def test_default_rules_on_fixture_articles(default_rules: RuleSet, article: dict) -> None:
    decision = default_rules.classify(article["title"], article["body"])
    expected = article["expect"]
    assert decision.flagged == expected["flagged"], decision.explanation
    if expected["flagged"]:
        assert decision.watch == expected["watch"], decision.explanation
        assert decision.round == expected["round"], decision.explanation
    else:
        assert decision.watch is None and decision.round is None and decision.topics == ()


def test_default_rules_tag_topics_of_a_flagged_article(default_rules: RuleSet) -> None:
    article = next(a for a in ARTICLES if a["id"] == "us-r7")
    decision = default_rules.classify(article["title"], article["body"])
    assert {"defense", "education"} <= set(decision.topics)
    assert "health" not in decision.topics


def test_default_rules_pickle_small_for_the_parse_workers(default_rules: RuleSet) -> None:
    """Each parse worker receives the compiled rules: `@list` words stay slots in the trie
    rather than one path per combination (which made this pickle 120 MB), and the surface
    forms are rebuilt from the canonical words on arrival."""
    data = pickle.dumps(default_rules)
    assert len(data) < 5_000_000
    clone = pickle.loads(data)
    assert clone.fingerprint == default_rules.fingerprint
    assert clone.vocabulary() == default_rules.vocabulary()
    for article in ARTICLES:
        assert clone.classify(article["title"], article["body"]) == default_rules.classify(article["title"], article["body"])


@pytest.mark.parametrize("pickled", [False, True], ids=["in-process", "in-a-worker"])
def test_could_concern_agrees_with_may_concern(default_rules: RuleSet, pickled: bool) -> None:
    """The poller asks could_concern(decision) instead of searching the text a second time;
    it must answer what may_concern(text) answers, also on rules pickled to a worker."""
    rules = pickle.loads(pickle.dumps(default_rules)) if pickled else default_rules
    texts = [(a["title"], a["body"]) for a in ARTICLES]
    texts += [("أخبار الطقس", "أمطار غزيرة على العاصمة"), ("", ""), ("الكويت", "زيارة رسمية إلى واشنطن")]
    answers = {rules.may_concern(title, body) for title, body in texts}
    assert answers == {True, False}  # the sample has both kinds
    for title, body in texts:
        assert rules.could_concern(rules.classify(title, body)) == rules.may_concern(title, body), title
