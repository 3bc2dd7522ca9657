"""English articles under the shipped rules (#10 part 1) and the kinds of article the first
round missed (#10 part 4), in both languages. Every text here is invented for the test."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import pytest

from monitor.relevance import RulesError, RuleSet, WatchConfig, compile_rules
from monitor.relevance.english import english_forms, english_ordinal, parse_round_before

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    document = tomllib.loads((ROOT / "config" / "monitor.toml").read_text(encoding="utf-8"))
    return compile_rules(document["terms"], [WatchConfig.model_validate(w) for w in document["watches"]], document["topics"])


def flagged(rules: RuleSet, title: str, body: str, watch: str, round_: int | None) -> None:
    decision = rules.classify(title, body)
    assert decision.flagged, decision.explanation
    assert decision.watch == watch, decision.explanation
    assert decision.round == round_, decision.explanation


def not_flagged(rules: RuleSet, title: str, body: str) -> None:
    decision = rules.classify(title, body)
    assert not decision.flagged, decision.explanation


# -- English normalisation and ordinals --------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("the fifth round", 5), ("the 5th round", 5), ("the 16th jsg", 16), ("the sixteenth session", 16),
        ("the twenty first session", 21), ("the 22nd meeting", 22), ("the 1st round", 1), ("the twentieth round", 20),
    ],
)
def test_english_ordinals_in_words_and_digits(words: str, expected: int) -> None:
    tokens = list(words.split(" "))
    assert english_ordinal(tokens, len(tokens) - 2) is not None
    assert parse_round_before(tokens, len(tokens) - 1, set())[0] == expected


def test_an_ordinal_is_read_across_partner_names_and_adjectives_only() -> None:
    tokens = ["the", "second", "u", "s", "kuwait", "strategic", "dialogue"]
    assert parse_round_before(tokens, 5, {2, 3, 4}) == (2, 1)
    tokens = ["first", "deputy", "prime", "minister", "strategic", "dialogue"]
    assert parse_round_before(tokens, 4, set()) is None


def test_english_rule_words_match_their_plurals_and_short_words_stay_exact() -> None:
    assert english_forms("dialogue") == {"dialogue", "dialogues"}
    assert english_forms("visa") == {"visa", "visas"}
    assert english_forms("economy") == {"economy", "economies"}
    assert english_forms("us") == {"us"}


@pytest.mark.parametrize(
    "title",
    [
        "Joint Statement on the Fifth U.S.-Kuwait Strategic Dialogue",
        "Kuwait, US hold fifth round of Strategic Dialogue",
        "Kuwait-US Strategic Dialogue Round 5 opens in Washington",
        "KUWAIT'S FM in Washington for 5th US-Kuwait strategic dialogue",
        "United States and Kuwait open the fifth session of their Strategic Dialogue",
    ],
)
def test_english_titles_of_a_us_round(rules: RuleSet, title: str) -> None:
    body = (
        "Kuwait's foreign minister and the U.S. Secretary of State opened the talks on Monday. "
        "The two sides discussed defense, trade and education, the State Department said."
    )
    flagged(rules, title, body, "kw-us", 5)


@pytest.mark.parametrize(
    "title",
    [
        "UK and Kuwait hold 16th Joint Steering Group",
        "Kuwaiti-British JSG meets for the sixteenth time: 16th session in London",
        "UK-Kuwait Joint Steering Group: sixteenth session concludes",
    ],
)
def test_english_titles_of_a_jsg_session(rules: RuleSet, title: str) -> None:
    body = (
        "Officials of the United Kingdom and the State of Kuwait met in London for the Joint "
        "Steering Group, which reviewed cooperation in health, culture and cyber security."
    )
    flagged(rules, title, body, "kw-uk", 16)


def test_twenty_first_session_in_words(rules: RuleSet) -> None:
    flagged(
        rules,
        "Kuwait and Britain open twenty-first session of Joint Steering Group",
        "The Kuwaiti and British delegations met in Kuwait City for the joint steering group between the two countries.",
        "kw-uk",
        21,
    )


def test_the_pronoun_us_is_not_the_united_states(rules: RuleSet) -> None:
    not_flagged(
        rules,
        "Kuwait and France hold strategic dialogue",
        "\"The strategic dialogue gives us a framework,\" the Kuwaiti minister said after meeting "
        "the French foreign minister; it lets us plan together, he told reporters in Kuwait.",
    )


def test_english_topics(rules: RuleSet) -> None:
    decision = rules.classify(
        "Kuwait, US conclude fifth Strategic Dialogue",
        "Kuwait and the United States concluded the strategic dialogue, agreeing on military training, "
        "counter-terrorism, cybersecurity, visas for students and investment, and discussed Iran.",
    )
    assert decision.flagged, decision.explanation
    assert {"defense", "counter_terrorism", "cyber", "consular", "education", "trade_investment", "political"} <= set(decision.topics)
    assert "security" not in decision.topics  # "counter-terrorism" and "cybersecurity" are their own tags
    assert "health" not in decision.topics


# -- other parties' dialogues (masks) -----------------------------------------------------------

PASSING_KUWAIT = " Kuwait's foreign minister attended a reception in the evening."


@pytest.mark.parametrize(
    ("title", "body"),
    [
        ("US and Qatar hold strategic dialogue", "Washington and Doha held the strategic dialogue on Tuesday."),
        ("Qatar, US conclude second round of Strategic Dialogue in Doha", "The Qatar-US Strategic Dialogue ended."),
        ("Saudi-US Strategic Dialogue opens", "The inaugural Saudi-US strategic dialogue opened in Riyadh."),
        ("GCC-US strategic dialogue meets in New York", "The GCC-US strategic dialogue met on the sidelines."),
        ("UK-Bahrain strategic dialogue held in London", "British and Bahraini ministers held the UK-Bahrain strategic dialogue."),
        ("Doha and Washington hold first strategic dialogue", "Doha's first strategic dialogue with Washington covered security."),
        ("Bahrain's first strategic dialogue with Washington", "The strategic dialogue between the US and Bahrain opened."),
    ],
)
def test_other_gulf_states_dialogues_with_the_partners_are_not_flagged(rules: RuleSet, title: str, body: str) -> None:
    not_flagged(rules, title, body + PASSING_KUWAIT)


def test_arabic_another_gulf_states_first_dialogue_with_washington_named_by_its_capital(rules: RuleSet) -> None:
    not_flagged(
        rules,
        "الدوحة وواشنطن تعقدان أول حوار استراتيجي بينهما",
        "عقدت الدوحة وواشنطن أمس الحوار الاستراتيجي الأول بين الدوحة وواشنطن بمشاركة وزيري خارجية البلدين. "
        "وحضر سفير الكويت لدى الولايات المتحدة حفل الاستقبال.",
    )


def test_a_gap_in_a_term_is_bounded_and_validated() -> None:
    watch = WatchConfig(id="w", all=["a"], clauses=[{"terms": ["a"]}], threshold=1.0)
    rules = compile_rules({"a": ["alpha ~2 omega"]}, [watch], {})
    assert rules.classify("alpha omega", "").flagged
    assert rules.classify("alpha one two omega", "").flagged
    assert not rules.classify("alpha one two three omega", "").flagged
    assert pickle.loads(pickle.dumps(rules)).classify("alpha one omega", "").flagged
    for bad in ("~2 omega", "alpha ~2", "alpha ~9 omega", "alpha ~0 omega"):
        with pytest.raises(RulesError):
            compile_rules({"a": [bad]}, [watch], {})


def test_many_gap_matches_stay_bounded() -> None:
    watch = WatchConfig(id="w", all=["a"], clauses=[{"terms": ["a"]}], threshold=1.0)
    rules = compile_rules({"a": ["alpha ~8 omega"]}, [watch], {})
    decision = rules.classify("", "alpha " * 15_000 + "omega")
    assert decision.flagged


# -- #10 part 4: the kinds the first round missed ------------------------------------------------


def test_preparatory_meeting_whose_partner_is_named_only_in_the_body(rules: RuleSet) -> None:
    flagged(
        rules,
        "Preparatory meeting held for sixth round of the Strategic Dialogue",
        "Senior officials of the Kuwaiti foreign ministry met a delegation from Washington on Sunday "
        "to prepare the agenda. The American delegation was led by an assistant secretary of state.",
        "kw-us",
        6,
    )
    flagged(
        rules,
        "اجتماع تحضيري للجولة السادسة من الحوار الاستراتيجي",
        "عقد مسؤولون في وزارة الخارجية الكويتية اجتماعا مع وفد من الولايات المتحدة الأمريكية أمس "
        "لإعداد جدول الأعمال، وترأس الوفد الأمريكي مساعد وزير الخارجية.",
        "kw-us",
        6,
    )


def test_working_group_reported_by_its_subject_with_the_framework_named_later(rules: RuleSet) -> None:
    flagged(
        rules,
        "Kuwait, US hold talks on counter-terrorism cooperation",
        "The Kuwaiti-American working group on counter-terrorism met in Kuwait on Tuesday and reviewed "
        "information sharing and terror financing. Officials from both countries discussed border "
        "controls and training programmes for the coming year, and agreed to meet again in the spring. "
        "Delegates also toured a training centre and met students of the police academy. "
        "The meeting comes within the framework of the Strategic Dialogue between Kuwait and the United States.",
        "kw-us",
        None,
    )
    flagged(
        rules,
        "الكويت والولايات المتحدة تبحثان التعاون في مكافحة الإرهاب",
        "عقد فريق العمل الكويتي الأمريكي المعني بمكافحة الإرهاب اجتماعه أمس في الكويت وبحث تبادل المعلومات "
        "وتمويل الإرهاب. وناقش المسؤولون من البلدين ضبط الحدود وبرامج التدريب للعام المقبل واتفقوا على "
        "الاجتماع مجددا في الربيع. وزار الوفد مركز تدريب والتقى طلبة أكاديمية الشرطة. "
        "ويأتي الاجتماع في إطار الحوار الاستراتيجي بين الكويت والولايات المتحدة.",
        "kw-us",
        None,
    )


def test_foreign_ministry_statement_on_a_rounds_outcome(rules: RuleSet) -> None:
    flagged(
        rules,
        "Foreign Ministry: fifth round of strategic dialogue with Washington achieved its goals",
        "The Ministry of Foreign Affairs said in a statement on Thursday that the round had produced "
        "agreements on trade and education. Kuwait thanked the American side.",
        "kw-us",
        5,
    )
    flagged(
        rules,
        "الخارجية: الجولة الخامسة من الحوار الاستراتيجي مع واشنطن حققت أهدافها",
        "قالت وزارة الخارجية في بيان أمس إن الجولة أسفرت عن اتفاقات في التجارة والتعليم، "
        "وشكرت الكويت الجانب الأمريكي.",
        "kw-us",
        5,
    )


def test_a_subject_talk_without_the_framework_is_not_flagged(rules: RuleSet) -> None:
    not_flagged(
        rules,
        "Kuwait, US hold talks on counter-terrorism cooperation",
        "The Kuwaiti-American working group on counter-terrorism met in Kuwait on Tuesday and reviewed "
        "information sharing and terror financing.",
    )


def test_a_round_announced_for_later_does_not_displace_the_one_reported(rules: RuleSet) -> None:
    flagged(
        rules,
        "Kuwait, US strategic dialogue concludes",
        "The strategic dialogue between Kuwait and the United States concluded its sixth round on "
        "Wednesday, officials said. The seventh round will be held in Washington next year, the two "
        "sides said in a statement on the strategic dialogue.",
        "kw-us",
        6,
    )
