"""A cheap necessary condition on the raw text, checked before any Arabic analysis."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from monitor.arabic import normalize
from monitor.relevance.model import WatchConfig

_LETTER_VARIANTS = {
    "ا": "اأإآ", "ي": "يىی", "ه": "هةھ", "ك": "كک",
    **{str(d): f"{d}{chr(0x0660 + d)}{chr(0x06F0 + d)}" for d in range(10)},
}
_NOISE = "[\u064b-\u065f\u0670\u0640\u200b-\u200f\u202a-\u202e\u2066-\u2069\u00ad\u061c\u0610-\u061a\u06d6-\u06ed]*"
_UNSAFE_RAW = re.compile("[\ufb00-\ufdff\ufe70-\ufefe\uff00-\uffef]")


def _needle_pattern(word: str) -> list[str] | None:
    """Raw-text regex branches for the core of a normalised rule word.

    Every branch starts with a literal character, which lets the regex engine skip quickly
    through text that cannot match; letter variants and noise between letters are tolerated.
    """
    if len(word) < 2:
        return None
    if word.isascii():
        return [re.escape(v) for v in sorted({word, word.upper(), word.capitalize()})]
    guard = f"(?<!{_NON_CLITIC_LETTER}.)"
    # A long core may drop its first letters when they are the commonest ones (the engine
    # then tries fewer places); any piece of the core is still a necessary condition.
    while len(word) > 5 and word[0] in _COMMON_LETTERS:
        word, guard = word[1:], ""
    rest = _NOISE.join(
        "[" + _LETTER_VARIANTS[c] + "]" if c in _LETTER_VARIANTS else re.escape(c) for c in word[1:]
    )
    # A core can only follow a non-letter or a clitic letter (و ف ب ك ل ا): «كونا» inside
    # «المكونات» is no match. Checked after the first letter, so every branch still begins
    # with a literal (which keeps the regex engine's fast scan).
    return [f"{re.escape(first)}{guard}{_NOISE}{rest}" for first in _LETTER_VARIANTS.get(word[0], word[0])]


_COMMON_LETTERS = "اليمونه"
_NON_CLITIC_LETTER = "[" + "".join(chr(c) for c in range(0x0621, 0x064B) if chr(c) not in "اوفبكلـ") + "ی]"


def _core(word: str) -> str:
    if word.startswith("ال") and len(word) >= 4:
        word = word[2:]
    return word[:-1] if word.endswith("ه") else word


# Cores too frequent in news text to make good needles («مجموعة من», «اللجنة», «المشتركة»).
_COMMON_CORES = frozenset(
    "مجموع لجن مشترك فريق حوار دول وزير مجلس اجتماع جول دور عمل تعاون علاقات بين مع رئيس حكوم".split()
)


def _list_pattern(lists: dict[str, list[str]], names: Sequence[str]) -> re.Pattern[str] | None:
    """Needles for a group of lists: per term, the word the group's terms share most
    («التوجيه» for the steering-group names, not the common «المشتركة»), longest on ties."""
    terms = [t for name in names for t in lists[name]]
    if any(t.startswith("re:") for t in terms):
        return None  # a regex term has no literal core
    # `@list` and `~N` words are left out: a literal word of the same term is enough as a needle.
    worded = [[_core(normalize(w)) for w in t.split() if not w.startswith(("@", "~")) and normalize(w)] for t in terms]
    sharing = {core: sum(core in cores for cores in worded) for cores in worded for core in cores}
    branches: list[str] = []
    for cores in worded:
        candidates = [c for c in cores if _needle_pattern(c)]
        if not candidates:
            return None
        best = max(candidates, key=lambda c: (c not in _COMMON_CORES, sharing[c], len(c)))
        branches.extend(_needle_pattern(best) or ())
    return re.compile("|".join(dict.fromkeys(branches)))


class _Prefilter:
    """Raw-text necessary condition: some watch has a core match for each of its checked lists.

    Most of a feed is not about Kuwait at all, and even tokenising 2 KB costs more than the
    budget per article, so this runs first, on the raw text, in the regex engine's C loop.
    `stages` are the unions over watches of their first and second checked lists: an article
    failing a stage fails every watch, in one search. Text with presentation forms (only NFKC
    reveals their letters) is never rejected.
    """

    def __init__(self, stages: list[re.Pattern[str]], per_watch: list[list[re.Pattern[str]]]):
        self.stages = stages
        self.per_watch = per_watch

    def may_match(self, title: str, body: str) -> bool:
        text = title + "\n" + body
        if "&" in text:
            text = html.unescape(text)
        if self._passes(text):
            return True
        return _hides_letters(text)

    def _passes(self, text: str) -> bool:
        for stage in self.stages:
            if stage.search(text) is None:
                return False
        if len(self.per_watch) == 1:
            return True
        found: dict[re.Pattern[str], bool] = {}
        for patterns in self.per_watch:
            for pattern in patterns:
                hit = found.get(pattern)
                if hit is None:
                    hit = found[pattern] = pattern.search(text) is not None
                if not hit:
                    break
            else:
                return True
        return False


def _hides_letters(text: str) -> bool:
    """Presentation forms and full-width letters only show their letters after NFKC, so text
    holding them is never rejected. Their UTF-16 high bytes are FB..FF: a memchr over the
    encoded text rules them out three times faster than a character-class search."""
    data = text.encode("utf-16-le", "surrogatepass")
    if not any(byte in data for byte in (b"\xfb", b"\xfc", b"\xfd", b"\xfe", b"\xff")):
        return False
    return _UNSAFE_RAW.search(text) is not None


def _build_prefilter(watches: Sequence[WatchConfig], lists: dict[str, list[str]]) -> _Prefilter | None:
    """Per watch: its first `all` list, then its `any` lists together (the lists most likely
    to be absent; the other `all` lists usually co-occur with the first, so searching for
    them would cost more than it saves)."""
    if not watches:
        return None
    keys_per_watch = [
        ([(w.all[0],)] if w.all else []) + ([tuple(w.any)] if w.any else []) for w in watches
    ]
    if any(len(keys) == 0 for keys in keys_per_watch):
        return None
    patterns: dict[tuple[str, ...], re.Pattern[str] | None] = {}
    for keys in keys_per_watch:
        for key in keys:
            if key not in patterns:
                patterns[key] = _list_pattern(lists, key)
    if any(patterns[key] is None for keys in keys_per_watch for key in keys):
        return None  # some watch cannot be prefiltered, so nothing can be rejected early
    per_watch = [[patterns[key] for key in keys] for keys in keys_per_watch]  # type: ignore[misc]
    stages = []
    for depth in range(min(len(keys) for keys in keys_per_watch)):
        union_keys = tuple(dict.fromkeys(name for keys in keys_per_watch for name in keys[depth]))
        stages.append(_list_pattern(lists, union_keys))
    return _Prefilter([s for s in stages if s is not None], per_watch)
