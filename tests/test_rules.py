"""The rule engine: clitic-aware matching, Boolean groups, proximity, weights, masks, rounds,
offsets, the JSON contract and the JSON Lines driver. Rules come from small fixture files."""

from __future__ import annotations

import json
import pickle
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import monitor.relevance.terms as terms_module
from monitor.relevance.classify import _Article
from monitor.relevance import Decision, Match, RuleSet, RulesError, WatchConfig, classify_lines, compile_rules

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def load(path: Path) -> tuple[dict, RuleSet]:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    watches = [WatchConfig.model_validate(w) for w in document.get("watches", [])]
    return document, compile_rules(document.get("terms", {}), watches, document.get("topics", {}))


@pytest.fixture(scope="module")
def basic() -> RuleSet:
    return load(FIXTURES / "basic.toml")[1]


def one_term_rules(term: str, *, extra_terms: dict[str, list[str]] | None = None) -> RuleSet:
    """A watch that fires on a single term anywhere (to test matching alone)."""
    terms = {"t": [term], **(extra_terms or {})}
    watch = WatchConfig(id="w", all=["t"], clauses=[{"terms": ["t"], "weight": 1.0}], threshold=1.0)
    return compile_rules(terms, [watch], {})


# -- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["الكويت", "والكويت", "بالكويت", "للكويت", "الكويتي", "الكويتية", "الكويتيين", "كويتيون", "فالكويت", "الکویت"],
)
def test_word_matches_its_clitic_and_suffixed_forms(text: str) -> None:
    assert one_term_rules("كويت").classify(f"خبر عن {text} اليوم", "").flagged


@pytest.mark.parametrize("text", ["كويتنا", "الكوي", "الكويتوالولايات", "سكويت"])
def test_word_does_not_match_other_words(text: str) -> None:
    assert not one_term_rules("الكويت").classify(text, "").flagged


def test_phrase_matches_across_clitics_hamza_and_diacritics() -> None:
    rules = one_term_rules("الحوار الاستراتيجي")
    assert rules.classify("استعدادات للحوار الإستراتيجي", "").flagged
    assert rules.classify("والحوارُ الاستراتيجيّ", "").flagged
    assert rules.classify("«الحوار» الاستراتيجي", "").flagged
    assert not rules.classify("الحوار الوطني الاستراتيجي", "").flagged


def test_word_written_with_article_requires_it() -> None:
    rules = one_term_rules("البلاد")
    assert rules.classify("زار البلاد وفد", "").flagged
    assert rules.classify("غادر للبلاد", "").flagged
    assert not rules.classify("أكد التزام بلاده", "").flagged


def test_taa_marbuta_before_a_pronoun() -> None:
    rules = one_term_rules("حكومة")
    assert rules.classify("قالت حكومتها", "").flagged
    assert rules.classify("الحكومة", "").flagged


def test_latin_terms_match_whole_words_case_insensitively() -> None:
    rules = one_term_rules("Joint Steering Group")
    assert rules.classify("the JOINT steering group met", "").flagged
    assert not rules.classify("jointsteering group", "").flagged


def test_list_reference_expands_to_each_term_of_the_list() -> None:
    rules = one_term_rules("الحوار مع @party", extra_terms={"party": ["قطر", "البحرين"]})
    assert rules.classify("الحوار مع البحرين", "").flagged
    assert rules.classify("الحوار مع قطر", "").flagged
    assert not rules.classify("الحوار مع عمان", "").flagged


@pytest.fixture(params=[1, terms_module._INLINE_PATHS], ids=["slots", "spelled-out"])
def inline_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Short `@list` lists are spelled out in the trie, longer ones are slots: both ways."""
    monkeypatch.setattr(terms_module, "_INLINE_PATHS", request.param)
    return request.param


def test_list_reference_in_any_place_and_nested(inline_paths: int) -> None:
    """A term may start or end with `@list`, and a referenced list may refer to another."""
    extra = {"party": ["قطر", "دولة @capital"], "capital": ["الدوحة", "ابو ظبي"], "name": ["الحوار الاستراتيجي", "لجنة التوجيه"]}
    rules = one_term_rules("@name مع @party", extra_terms=extra)
    assert rules.classify("وبحث الحوار الإستراتيجي مع قطر", "").flagged
    assert rules.classify("لجنة التوجيه مع دولة أبو ظبي", "").flagged
    assert not rules.classify("لجنة التوجيه مع الدوحة", "").flagged  # «دولة» is part of that term
    assert not rules.classify("الحوار مع قطر", "").flagged
    body = "عقدت لجنة التوجيه مع دولة الدوحة اجتماعها"
    assert [(m.term, body[m.start:m.end]) for m in rules.classify("", body).matches] == [("@name مع @party", "لجنة التوجيه مع دولة الدوحة")]


def test_list_reference_in_a_topic_and_as_a_mask(inline_paths: int) -> None:
    terms = {
        "kuwait": ["كويت"],
        "dialogue": ["الحوار الاستراتيجي"],
        "party": ["قطر", "المملكة العربية السعودية"],
        "other": ["@dialogue بين @party", "@dialogue @party"],
    }
    watch = WatchConfig(id="w", all=["kuwait"], any=["dialogue"], mask=["other"], clauses=[{"terms": ["dialogue"]}], threshold=1.0)
    rules = compile_rules(terms, [watch], {"gulf": ["@party والكويت"]})
    assert not rules.classify("الكويت تتابع الحوار الاستراتيجي بين المملكة العربية السعودية", "").flagged
    assert not rules.classify("الكويت تتابع الحوار الاستراتيجي القطري", "").flagged
    flagged = rules.classify("الكويت في الحوار الاستراتيجي", "المملكة العربية السعودية والكويت")
    assert flagged.flagged and flagged.topics == ("gulf",)
    assert rules.classify("الكويت في الحوار الاستراتيجي", "قطر وحدها").topics == ()


def test_list_reference_that_spells_out_too_many_phrases_is_an_error() -> None:
    many = {"many": [f"كلمه{i}" for i in range(140)]}
    assert one_term_rules("@many ثم @many", extra_terms=many).classify("كلمه3 ثم كلمه139", "").flagged  # 19,600 phrases
    with pytest.raises(RulesError, match="expands to more than"):
        one_term_rules("@many @many @many", extra_terms=many)


def test_regex_term_runs_on_normalised_text() -> None:
    rules = one_term_rules("re:الجوله \\d+")
    assert rules.classify("الجولة ٥", "").flagged
    assert not rules.classify("الجولة الخامسة", "").flagged


# -- Boolean groups, proximity, weights ------------------------------------------------------------


def test_required_and_any_groups(basic: RuleSet) -> None:
    assert basic.classify("الحوار الاستراتيجي بين الكويت وواشنطن", "").flagged
    no_partner = basic.classify("الحوار الاستراتيجي بين الكويت وباريس", "")
    assert not no_partner.flagged and "no partner" in no_partner.explanation
    no_dialogue = basic.classify("لقاء بين الكويت وواشنطن", "")
    assert not no_dialogue.flagged


def test_exclusion_vetoes_the_watch(basic: RuleSet) -> None:
    decision = basic.classify("الحوار الاستراتيجي بين الكويت وواشنطن قبل المباراة", "")
    assert not decision.flagged
    assert "excluded by blocked" in decision.explanation


def test_mask_hides_dialogue_mentions_of_another_party(basic: RuleSet) -> None:
    assert not basic.classify("الحوار الاستراتيجي القطري في الكويت بحضور واشنطن", "").flagged
    assert not basic.classify("الحوار الاستراتيجي بين قطر والكويت وواشنطن", "").flagged


def test_proximity_window(basic: RuleSet) -> None:
    filler = " ".join(["كلمة"] * 20)
    near = basic.classify("عنوان", f"{filler} الحوار الاستراتيجي بين الكويت وواشنطن {filler}")
    far = basic.classify("عنوان", f"{filler} الحوار الاستراتيجي {filler} الكويت وواشنطن")
    assert near.score == pytest.approx(2.0 + 1.0)
    assert far.score == pytest.approx(1.0)
    assert near.flagged is False  # 3 < 4: body mentions alone are not enough here


def test_title_and_lead_weigh_more_than_the_body(basic: RuleSet) -> None:
    filler = " ".join(["كلمة"] * 20)
    sentence = "الحوار الاستراتيجي بين الكويت وواشنطن"
    in_title = basic.classify(sentence, filler)
    in_lead = basic.classify("عنوان", f"{sentence} {filler}")
    in_body = basic.classify("عنوان", f"{filler} {sentence}")
    assert in_title.score == pytest.approx(3.0 * (2.0 + 1.0))
    assert in_lead.score == pytest.approx(2.0 * (2.0 + 1.0))
    assert in_body.score == pytest.approx(2.0 + 1.0)
    assert in_title.flagged and in_lead.flagged and not in_body.flagged
    assert in_title.threshold == 4.0


def test_best_watch_is_the_highest_score() -> None:
    document, rules = load(Path(__file__).resolve().parent.parent / "config" / "monitor.toml")
    decision = rules.classify(
        "مجموعة التوجيه المشتركة الكويتية البريطانية تجتمع في لندن",
        "وحضر الاجتماع السفير الأمريكي بصفة مراقب.",
    )
    assert decision.flagged and decision.watch == "kw-uk"


# -- rounds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("الكويت وواشنطن في الجولة الثالثة من الحوار الاستراتيجي", 3),
        ("الكويت وواشنطن في الدورة السابعة عشرة من الحوار الاستراتيجي", 17),
        ("الكويت وواشنطن في الجولة الثانية والعشرين من الحوار الاستراتيجي", 22),
        ("الكويت وواشنطن في الجولة الـ 16 من الحوار الاستراتيجي", 16),
        ("الكويت وواشنطن في الجولة الـ16 من الحوار الاستراتيجي", 16),
        ("الكويت وواشنطن في الجولة ٥ من الحوار الاستراتيجي", 5),
        ("الحوار الاستراتيجي الثاني بين الكويت وواشنطن", 2),
        ("الكويت وواشنطن تبحثان الحوار الاستراتيجي", None),
    ],
)
def test_round_number_forms(basic: RuleSet, title: str, expected: int | None) -> None:
    decision = basic.classify(title, "")
    assert decision.flagged
    assert decision.round == expected


def test_round_word_far_from_the_dialogue_is_ignored(basic: RuleSet) -> None:
    filler = " ".join(["كلمة"] * 10)
    decision = basic.classify("الحوار الاستراتيجي بين الكويت وواشنطن", f"{filler} الدورة الثالثة للجمعية العامة")
    assert decision.flagged and decision.round is None


def test_round_in_the_lead_counts_when_the_title_names_the_dialogue(basic: RuleSet) -> None:
    decision = basic.classify("تأجيل الحوار الاستراتيجي بين الكويت وواشنطن", "أعلنت السفارة تأجيل الجولة السابعة")
    assert decision.round == 7
    assert "dialogue named in the title" in decision.explanation


def test_round_in_passing_loses_to_the_current_one(basic: RuleSet) -> None:
    decision = basic.classify(
        "الكويت وواشنطن تختتمان الحوار الاستراتيجي",
        "واتفق الجانبان على عقد الجولة الخامسة من الحوار الاستراتيجي العام المقبل، "
        "وذلك في ختام الجولة الرابعة من الحوار الاستراتيجي التي استضافتها الكويت.",
    )
    assert decision.round == 4
    assert "الجولة الرابعة" in decision.explanation


def test_no_round_when_not_flagged(basic: RuleSet) -> None:
    decision = basic.classify("الجولة الثالثة من الحوار الاستراتيجي بين الكويت وباريس", "")
    assert not decision.flagged and decision.round is None


# -- offsets, explanation, topics ---------------------------------------------------------------------


def test_match_offsets_point_into_the_original_fields(basic: RuleSet) -> None:
    title = "&laquo;الكـويت&raquo; و«واشنطن»: الحوارُ الإستراتيجي"
    body = "نص\n\nعن الكويت"
    decision = basic.classify(title, body)
    assert decision.flagged
    texts = {"title": title, "body": body}
    found = {(m.field, texts[m.field][m.start:m.end]) for m in decision.matches}
    assert ("title", "الكـويت") in found
    assert ("title", "واشنطن") in found
    assert ("title", "الحوارُ الإستراتيجي") in found
    assert ("body", "الكويت") in found
    for match in decision.matches:
        assert isinstance(match, Match)
        assert 0 <= match.start < match.end <= len(texts[match.field])


def test_topics_are_tagged_only_for_flagged_articles(basic: RuleSet) -> None:
    flagged = basic.classify("الحوار الاستراتيجي بين الكويت وواشنطن", "بحث التعاون الدفاعي والتعليم")
    assert flagged.topics == ("defense", "education")
    not_flagged = basic.classify("الكويت وواشنطن", "بحث التعاون الدفاعي")
    assert not_flagged.topics == ()


def test_explanation_names_the_evidence(basic: RuleSet) -> None:
    decision = basic.classify("الجولة الثالثة من الحوار الاستراتيجي بين الكويت وواشنطن", "")
    assert decision.explanation.startswith("kw-us: score")
    assert "near(dialogue, kuwait, partner; 8)" in decision.explanation
    assert "round 3 from «الجولة الثالثة» (title)" in decision.explanation


# -- prefilter never loses an article ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kuwait",
    ["الكويت", "الكُوَيْت", "الكـويت", "الـكويت", "بالـــكويت", "الکویت", "ﺍﻟﻜﻮﻳﺖ", "الكو\u200cيت", "&#1603;ويت", "لِلكويت"],
)
def test_prefilter_keeps_every_spelling(basic: RuleSet, kuwait: str) -> None:
    assert basic.classify(f"الحوار الاستراتيجي بين {kuwait} وواشنطن", "").flagged


def test_article_without_kuwait_is_rejected_cheaply(basic: RuleSet) -> None:
    decision = basic.classify("الحوار الاستراتيجي بين قطر وواشنطن", "نص " * 500)
    assert not decision.flagged
    assert "prefilter" in decision.explanation


# -- JSON contract, persistence, fingerprint -----------------------------------------------------------


def test_decision_json_round_trip(basic: RuleSet) -> None:
    decision = basic.classify("الجولة الثالثة من الحوار الاستراتيجي بين الكويت وواشنطن", "نص")
    data = decision.to_json_dict()
    assert list(data)[:6] == ["flagged", "watch", "score", "round", "topics", "matches"]
    assert data["flagged"] is True and data["watch"] == "kw-us" and data["round"] == 3
    assert all(set(m) == {"term", "field", "start", "end"} for m in data["matches"])
    restored = Decision.from_json_dict(json.loads(json.dumps(data, ensure_ascii=False)))
    assert restored.flagged == decision.flagged
    assert restored.matches == decision.matches
    assert restored.round == decision.round and restored.topics == decision.topics


def test_fingerprint_is_stable_and_tracks_changes() -> None:
    document, first = load(FIXTURES / "basic.toml")
    _, second = load(FIXTURES / "basic.toml")
    assert first.fingerprint == second.fingerprint
    changed = dict(document["terms"], partner=["واشنطن"])
    watches = [WatchConfig.model_validate(w) for w in document["watches"]]
    third = compile_rules(changed, watches, document["topics"])
    assert third.fingerprint != first.fingerprint


def test_ruleset_survives_pickling_for_worker_processes(basic: RuleSet) -> None:
    article = ("الجولة الثالثة من الحوار الاستراتيجي بين الكويت وواشنطن", "نص")
    clone = pickle.loads(pickle.dumps(basic))
    assert clone.classify(*article) == basic.classify(*article)


def test_classify_lines_contract(basic: RuleSet) -> None:
    lines = [
        json.dumps({"id": "a", "title": "الحوار الاستراتيجي بين الكويت وواشنطن", "body": "نص"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": "c", "title": "عنوان"}),
        "",
        json.dumps({"id": 4, "title": "الحوار الاستراتيجي بين الكويت وواشنطن", "summary": "ملخص"}, ensure_ascii=False),
        json.dumps(["list"]),
    ]
    results = list(classify_lines(lines, basic))
    assert len(results) == 5  # the blank line produces nothing
    out_a, err_a = results[0]
    assert err_a is None and out_a is not None
    record = json.loads(out_a)
    assert list(record)[:7] == ["id", "flagged", "watch", "score", "round", "topics", "matches"]
    assert record["id"] == "a" and record["flagged"] is True
    assert results[1][0] is None and json.loads(results[1][1])["line"] == 2
    assert results[2][0] is None and json.loads(results[2][1])["id"] == "c"
    assert json.loads(results[3][0])["id"] == 4 and json.loads(results[3][0])["flagged"] is True
    assert results[4][0] is None and "object" in json.loads(results[4][1])["error"]


_NOISY_PIECES = [
    "ال", "و", "ب", "ل", "لل", "ف", "ك", "كويت", "الكويت", "کویت", "كونا", "مكونات", "واشنطن", "الولايات", "المتحدة",
    "أمريكي", "الحوار", "الاستراتيجي", "الإستراتيجي", "ية", "ين", "قطر", "مباراة", "\u0640", "\u064e", "\u0651",
    "\u200c", "\u200f", "&amp;", "&nbsp;", "&#1603;", "ﻻ", "ﺍﻟﻜﻮﻳﺖ", " ", " ", " ", "\n", "-", "«", "»", "،", ".",
    "لندن", "بريطانيا", "مجموعة", "التوجيه", "المشتركة", "التوجيهية", "اللجنة", "الجولة", "السابعة", "Kuwait",
    "strategic dialogue", "ستراتيجي",
]
DEFAULT_RULES = load(Path(__file__).resolve().parent.parent / "config" / "monitor.toml")[1]


@pytest.mark.parametrize("rules_name", ["basic", "default"])
@given(text=st.lists(st.sampled_from(_NOISY_PIECES), min_size=1, max_size=60).map("".join))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_prefilter_never_changes_a_decision(basic: RuleSet, rules_name: str, text: str) -> None:
    """The raw-text prefilter is only a shortcut: without it every decision is the same."""
    rules = basic if rules_name == "basic" else DEFAULT_RULES
    assert rules.prefilter is not None
    unfiltered = replace(rules, prefilter=None)
    title, _, body = text.partition("\n")
    with_prefilter = rules.classify(title, body)
    without = unfiltered.classify(title, body)
    assert with_prefilter.flagged == without.flagged
    if "prefilter" in with_prefilter.explanation:
        # rejected early only if every watch really misses one of its required groups
        article = _Article(title, body)
        for watch in rules.watches:
            evaluation = rules._evaluate(watch, article)
            assert evaluation.reasons and evaluation.reasons[0].startswith(("no ", "none of ")), evaluation.reasons
