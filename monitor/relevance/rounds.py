"""The round or session number an article is about."""

from __future__ import annotations

import re

from monitor.arabic import ORDINALS
from monitor.relevance.english import (
    EN_CURRENT_BEFORE,
    EN_FUTURE_BEFORE,
    EN_NEXT_AFTER,
    EN_PAST_BEFORE,
)
from monitor.relevance.terms import _Cover, _Field, _Hit

# "the round the article is about": an ordinal or number right after a round word («الجولة
# الثالثة», «دورتها الـ15», «الاجتماع الوزاري التاسع عشر») or after the dialogue's own name
# («مجموعة التوجيه المشتركة الكويتية البريطانية السادسة عشرة»), bound to a dialogue term within
# a few words. Titles win; in the body a round «within» (ضمن) counts more and a round named as
# past («بعد أن عقدت») or to be held («على عقد», «المقبلة») less: those are mentions in passing.
# The patterns below are written in normalised spelling (ى→ي, ة→ه, أ→ا).

_MAX_ROUND = 60
_SKIPPABLE = re.compile(r"^(?:ال\w+(?:ي|يه|يين)|ال?مشترك[هت]?|ال?وزاري[هت]?|ال?عادي[هت]?|ال?رسمي[هت]?|ال|من|رقم)$")
_CURRENT_BEFORE = re.compile(r"(?:ضمن|خلال|فعاليات|اعمال|انطلاق|ختام|اختتام)$")
_FUTURE_BEFORE = re.compile(r"(?:علي|ان) (?:عقد|تلتئم|تعقد|تنعقد|موعد)(?: \w+)?$")
_PAST_BEFORE = re.compile(r"(?:عقدت|سبقت|سابقه|الماضيه)(?: \w+)?$")
_NEXT_AFTER = re.compile(r"^(?:\w+ )?(?:المقبله|القادمه|التاليه|المرتقبه|المنتظره)")
_ORDINAL_VOCABULARY = frozenset(w for key in ORDINALS for w in key.split())
_ORDINAL_WORDS = frozenset(key.split()[0] for key in ORDINALS)


def _parse_round_after(words: list[str], start: int) -> tuple[int, int] | None:
    """(number, index of its last word) of the ordinal at `start`, skipping up to three
    adjectives («الاجتماع الوزاري التاسع عشر»); None when no ordinal follows."""
    index = start
    for _ in range(4):
        if index >= len(words):
            return None
        token = words[index]
        digits = token[2:] if token.startswith("ال") and token[2:].isdigit() else token
        if digits.isdigit():
            value = int(digits)
            return (value, index) if 0 < value <= _MAX_ROUND else None
        first = _strip_clitics(token)
        for width in (3, 2, 1) if first in _ORDINAL_WORDS else ():
            phrase = [first] + [_strip_clitics(w) for w in words[index + 1:index + width]]
            if len(phrase) == width:
                value = ORDINALS.get(" ".join(phrase))
                if value is not None:
                    return value, index + width - 1
        if not _SKIPPABLE.match(token):
            return None
        index += 1
    return None


def _strip_clitics(word: str) -> str:
    for prefix in ("وال", "بال", "فال", "لل", "ال", "و"):
        if word.startswith(prefix) and word[len(prefix):] in _ORDINAL_VOCABULARY:
            return word[len(prefix):]
    return word


def _bound(anchor: _Hit, value_last: int, binders: _Cover, within: int) -> bool:
    """_bound_span for an Arabic round: the anchor, then its number."""
    return _bound_span(anchor.first, value_last, binders, within)


def _bound_span(first: int, last: int, binders: _Cover, within: int) -> bool:
    """Whether a binder (of the anchor's field) lies within `within` words of the span from
    the anchor to its number (Arabic: the number follows; English: it comes first): the
    binder starts at most within + 1 words after the span's end and ends at most within + 1
    words before its start."""
    return binders.reaches(last + within + 1, first - within - 1)


def _round_weight(fld: _Field, first: int, last: int, order: int) -> float:
    """Weight of one round mention spanning words first..last (round word and number)."""
    if fld.name == "title":
        return 10.0
    weight = 3.0 - min(order, 20) * 0.05
    before = " ".join(fld.words[max(0, first - 4):first])
    after = " ".join(fld.words[last + 1:last + 3])
    if _CURRENT_BEFORE.search(before) or EN_CURRENT_BEFORE.search(before):
        weight += 2.0
    if _FUTURE_BEFORE.search(before) or EN_FUTURE_BEFORE.search(before):
        weight -= 2.0
    if _PAST_BEFORE.search(before) or EN_PAST_BEFORE.search(before):
        weight -= 2.5
    if _NEXT_AFTER.match(after) or EN_NEXT_AFTER.match(after):
        weight -= 2.5
    return weight
