"""Arabic normalisation, offset-keeping tokenisation and ordinals."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import arabic
from monitor.arabic import Token, normalize, parse_ordinal, tokenize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # alef forms
        ("أمريكا", "امريكا"),
        ("إيران", "ايران"),
        ("آسيا", "اسيا"),
        ("ٱلحوار", "الحوار"),
        # alef maqsura and Persian yeh → yeh
        ("على", "علي"),
        ("الکویت", "الكويت"),
        # taa marbuta and Persian heh forms → heh
        ("الجولة", "الجوله"),
        ("مھم", "مهم"),
        ("ە", "ه"),
        ("ۀ", "ه"),
        # Persian kaf
        ("کونا", "كونا"),
        # digits
        ("الـ١٦", "ال16"),
        ("۲۰۲۱", "2021"),
        # diacritics: fatha, damma, kasra, tanween, shadda, sukun, superscript alef
        ("الكُوَيْتِ", "الكويت"),
        ("غداً", "غدا"),
        ("الشّرق", "الشرق"),
        ("هٰذا", "هذا"),
        # tatweel
        ("الجـــولة", "الجوله"),
        # zero-width and bidi marks
        ("الكو\u200cيت", "الكويت"),
        ("\u200fالكويت\u200e", "الكويت"),
        ("\u202bالكويت\u202c", "الكويت"),
        ("الكويت\ufeff", "الكويت"),
        # HTML entities, including double-escaped ones
        ("&laquo;الكويت&raquo;", "«الكويت»"),
        ("مع&nbsp;قطر", "مع قطر"),
        ("&amp;quot;نص&amp;quot;", '"نص"'),
        ("&#1603;&#x648;يت", "كويت"),
        # Latin case folding
        ("KUWAIT Strategic Dialogue", "kuwait strategic dialogue"),
        # NFKC: presentation forms, ligatures, full-width letters
        ("ﻻ", "لا"),
        ("ﺍﻟﻜﻮﻳﺖ", "الكويت"),
        ("ＪＳＧ", "jsg"),
        # whitespace collapsed
        ("  الكويت \n\n والولايات\tالمتحدة ", "الكويت والولايات المتحده"),
    ],
)
def test_normalize_rule(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_leaves_plain_text_alone() -> None:
    assert normalize("الحوار الاستراتيجي بين البلدين") == "الحوار الاستراتيجي بين البلدين"


def test_tokenize_offsets_point_at_original_words() -> None:
    text = "قال &laquo;الكـويت&raquo;\n\nللحوارِ  الإستراتيجي، و(واشنطن)"
    tokens = tokenize(text)
    assert [t.norm for t in tokens] == ["قال", "الكويت", "للحوار", "الاستراتيجي", "و", "واشنطن"]
    assert [text[t.start:t.end] for t in tokens] == ["قال", "الكـويت", "للحوارِ", "الإستراتيجي", "و", "واشنطن"]


def test_tokenize_splits_hyphenated_and_punctuated_words() -> None:
    text = "الكويتية-البريطانية «مجموعة التوجيه»."
    assert [(t.norm, text[t.start:t.end]) for t in tokenize(text)] == [
        ("الكويتيه", "الكويتية"),
        ("البريطانيه", "البريطانية"),
        ("مجموعه", "مجموعة"),
        ("التوجيه", "التوجيه"),
    ]


def test_tokenize_expanding_ligature_keeps_its_span() -> None:
    text = "محمد ﷺ قال"
    tokens = tokenize(text)
    assert [t.norm for t in tokens] == ["محمد", "صلي", "الله", "عليه", "وسلم", "قال"]
    assert {(t.start, t.end) for t in tokens[1:5]} == {(5, 6)}


def test_tokenize_repeated_words_get_their_own_offsets() -> None:
    text = "الكويت   الكويت\nالكويت"
    assert [(t.start, t.end) for t in tokenize(text)] == [(0, 6), (9, 15), (16, 22)]


def test_tokenize_empty_and_blank() -> None:
    assert tokenize("") == []
    assert tokenize(" \n\t ") == []
    assert tokenize("- « » .") == []


# -- ordinals: a hand-written table, both genders, عشر/عشرة, 1–30 -----------------------------

_UNITS = [
    ("الأول", "الأولى"),
    ("الثاني", "الثانية"),
    ("الثالث", "الثالثة"),
    ("الرابع", "الرابعة"),
    ("الخامس", "الخامسة"),
    ("السادس", "السادسة"),
    ("السابع", "السابعة"),
    ("الثامن", "الثامنة"),
    ("التاسع", "التاسعة"),
    ("العاشر", "العاشرة"),
]
_COMPOUND_FIRST = [("الحادي", "الحادية")] + _UNITS[1:9]


def _ordinal_cases() -> list[tuple[str, int]]:
    cases = []
    for value, (masc, fem) in enumerate(_UNITS, start=1):
        cases += [(masc, value), (fem, value)]
    for value, (masc, fem) in enumerate(_COMPOUND_FIRST, start=11):
        cases += [(f"{masc} عشر", value), (f"{fem} عشرة", value), (f"{fem} عشر", value), (f"{masc} عشرة", value)]
    cases += [("العشرون", 20), ("العشرين", 20)]
    for value, (masc, fem) in enumerate(_COMPOUND_FIRST, start=21):
        cases += [(f"{masc} والعشرون", value), (f"{fem} والعشرين", value)]
    cases += [("الثلاثون", 30), ("الثلاثين", 30)]
    return cases


@pytest.mark.parametrize(("words", "value"), _ordinal_cases())
def test_parse_ordinal(words: str, value: int) -> None:
    assert parse_ordinal(words) == value


def test_parse_ordinal_where_pyarabic_fails() -> None:
    assert parse_ordinal("الحادي عشر") == 11
    assert parse_ordinal("الحادية عشرة") == 11
    assert parse_ordinal("الأول") == 1


@pytest.mark.parametrize("words", ["للجولة", "السادسة الكبرى", "", "عشر", "الحادي"])
def test_parse_ordinal_rejects_non_ordinals(words: str) -> None:
    assert parse_ordinal(words) is None


def test_parse_ordinal_tolerates_spelling_noise() -> None:
    assert parse_ordinal("السابعه عشره") == 17
    assert parse_ordinal("الاولى") == 1
    assert parse_ordinal("التاسـع عشر") == 19


# -- properties ------------------------------------------------------------------------------------

_PIECES = [
    "ال", "كويت", "الكويت", "و", "ب", "ة", "ى", "ي", "أ", "إ", "آ", "ک", "ی", "ھ", "ە", "ۀ",
    "\u064b", "\u064e", "\u0651", "\u0652", "\u0670", "\u0640", "\u200c", "\u200d", "\u200f", "\u202b",
    "\ufeff", "&amp;", "&laquo;", "&nbsp;", "&#1603;", "&", ";", "#", "ﻻ", "ﷺ", "ＡＢ", "KUNA", "ß",
    "İ", "١٦", "16", " ", "  ", "\n", "\t", "\u00a0", "-", "«", "»", "،", ".", "(", ")", "x",
]
_messy_text = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
    st.text(max_size=60),
)


@given(_messy_text)
@settings(max_examples=400, deadline=None)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(_messy_text)
@settings(max_examples=400, deadline=None)
def test_fast_paths_give_what_the_plain_definition_gives(text: str) -> None:
    """normalize() replaces str.translate by per-character replaces and stops after one
    round when a cheap check says a second would change nothing; both must be invisible."""
    assert arabic._apply_table(text) == text.translate(arabic._TABLE)
    slow = text
    for _ in range(3):
        again = arabic._normalize_once(slow)
        if again == slow:
            break
        slow = again
    assert normalize(text) == slow
    assert arabic.normalized_words(text) == re.findall(r"\w+", slow)


@pytest.mark.parametrize(
    "text",
    [
        "ΣΑΣ ς σ", "straße ﬁne", "a¨b ´x", "\ufe70\ufe71 ﻻ ﷲ", "x＆amp;y", "x&amp;quot;y &nbsp;z",
        "أحمد\u00a0إبراهيم\u3000آخر", "e\u0301 \u0301e", "①½ ㎏ Ⅻ", "ـالـكـويـت", "١٢٣ ۴۵ foo_bar", "&", "",
    ],
)
def test_words_by_token_are_the_words_of_the_whole_normalised_text(text: str) -> None:
    """normalized_words computes and caches each token's words alone (NFKC can split a token,
    an entity can hide a space): a first and a cached second call give what the plain
    definition gives."""
    plain = re.findall(r"\w+", normalize(text))
    assert arabic.normalized_words(text) == plain
    assert arabic.normalized_words(text) == plain


@given(_messy_text)
@settings(max_examples=400, deadline=None)
def test_tokens_point_into_the_original_text(text: str) -> None:
    tokens = tokenize(text)
    previous_start = 0
    for token in tokens:
        assert isinstance(token, Token)
        assert 0 <= token.start < token.end <= len(text)
        assert token.start >= previous_start
        previous_start = token.start
        assert token.norm
        assert token.norm in normalize(text[token.start:token.end]).split()
