"""What English text needs beyond the shared tokeniser: ordinals written before the noun they
number ("the fifth round", "16th JSG", "twenty-first session"), inflected rule words
("dialogues", "Americans"), and "US" told apart from the pronoun "us".

The tokeniser (monitor.arabic) already folds case and splits "U.S.-Kuwait" into u, s, kuwait
and "Kuwait's" into kuwait, s, so rule terms written "U.S." or "Kuwait" match those forms. All
tables are in normalised (case-folded) spelling.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_UNITS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"]
_TEENS = [
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth",
]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}
_TENTHS = {"twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60}


def _ordinal_table() -> dict[str, int]:
    table = {word: value for value, word in enumerate(_UNITS, start=1)}
    table.update({word: value for value, word in enumerate(_TEENS, start=10)})
    table.update(_TENTHS)
    return table


# One-word ordinals; "twenty-first" is the two words twenty, first once tokenised.
EN_ORDINALS: dict[str, int] = _ordinal_table()
_DIGIT_ORDINAL = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")

# Words that may stand between an ordinal and the noun it numbers: "the fifth U.S.-Kuwait
# Strategic Dialogue", "the 16th annual Joint Steering Group". Partner names come from the
# watch's own lists (the caller passes them as covered words).
_BETWEEN_ORDINAL_AND_NOUN = frozenset((
    "joint", "annual", "ministerial", "bilateral", "high", "level", "senior", "officials", "formal",
    "regular", "plenary", "full", "s", "round", "session", "meeting", "edition", "and",
))
_MAX_SKIPPED = 4


def english_ordinal(words: list[str], index: int) -> tuple[int, int] | None:
    """(number, index of the ordinal's first word) when the ordinal ends at `index`:
    "fifth", "5th", "twenty first" (twenty-first); None otherwise."""
    if index < 0:
        return None
    word = words[index]
    value = EN_ORDINALS.get(word)
    if value is not None:
        if value < 10 and index > 0 and words[index - 1] in _TENS:
            return _TENS[words[index - 1]] + value, index - 1
        return value, index
    digits = _DIGIT_ORDINAL.match(word)
    if digits is not None and 0 < int(digits.group(1)):
        return int(digits.group(1)), index
    return None


def parse_round_before(words: list[str], anchor_first: int, covered: frozenset[int] | set[int]) -> tuple[int, int] | None:
    """(number, index of its first word) of an English ordinal before a round word or a
    dialogue name, skipping up to four words that are partner names (`covered`: indices
    inside hits of the watch's required lists) or the usual adjectives; None otherwise."""
    index = anchor_first - 1
    for _ in range(_MAX_SKIPPED + 1):
        if index < 0:
            return None
        parsed = english_ordinal(words, index)
        if parsed is not None:
            return parsed
        if index not in covered and words[index] not in _BETWEEN_ORDINAL_AND_NOUN:
            return None
        index -= 1
    return None


def may_hold_english_ordinal(words: list[str], anchor_first: int) -> bool:
    """A cheap test before parse_round_before: is any of the few words before the anchor an
    English ordinal at all? (Arabic text never has one.)"""
    for word in words[max(0, anchor_first - _MAX_SKIPPED - 1):anchor_first]:
        if word in EN_ORDINALS or (word[:1].isdigit() and _DIGIT_ORDINAL.match(word)):
            return True
    return False


# How an English sentence places a round in time, read in the few words before the ordinal
# and after the noun: "as part of the 16th JSG", "under the fourth round" (this round);
# "ahead of the next", "will hold" (to come: a preview's own round still counts, less);
# "the previous round", "since the fourth round" (past).
EN_CURRENT_BEFORE = re.compile(r"(?:^| )(?:under|during|at|as part of|within|of)(?: the)?$")
EN_FUTURE_BEFORE = re.compile(r"(?:^| )(?:next|upcoming|forthcoming|coming|will hold|to hold)(?: the)?$")
EN_PAST_BEFORE = re.compile(r"(?:^| )(?:since|previous|last|after|following|earlier)(?: the)?$")
EN_NEXT_AFTER = re.compile(r"^(?:next|scheduled|planned|due|will|would|is (?:scheduled|expected|due|planned))\b")


# -- case: "US" the country and "us" the pronoun -----------------------------------------------

# Normalised words that are a name only when written in capitals in the original text.
CAPITALS_ONLY: dict[str, str] = {"us": "US"}
NOT_A_NAME = "\u2063"  # appended to such a word written in lower case, so no term matches it


def mark_lowercase_names(words: list[str], original_of: Callable[[int], str]) -> None:
    """Replace in place each `CAPITALS_ONLY` word whose original spelling is not the capital
    one ("let us" is not the United States). Costs one scan of the word list per name."""
    for word, capitals in CAPITALS_ONLY.items():
        if word not in words:
            continue
        for index, candidate in enumerate(words):
            if candidate == word and original_of(index) != capitals:
                words[index] = word + NOT_A_NAME


# -- inflection of English rule words ---------------------------------------------------------

_LATIN_WORD = re.compile(r"^[a-z][a-z]+$")


def english_forms(word: str) -> frozenset[str]:
    """A rule word in English also matches its plural ("dialogue" finds "dialogues",
    "American" "Americans", "visa" "visas"). Words under four letters (us, uk, gcc) and
    non-letters stay exact."""
    if len(word) < 4 or not _LATIN_WORD.match(word):
        return frozenset({word})
    if word.endswith(("s", "x", "ch", "sh")):
        return frozenset({word, word + "es"})
    if word.endswith("y") and word[-2] not in "aeiou":
        return frozenset({word, word[:-1] + "ies"})
    return frozenset({word, word + "s"})
