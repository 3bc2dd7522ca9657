"""Term lists compiled into one word trie, and the hits found with it in an article field.

A term is a sequence of words matched on consecutive normalised words of the article. Each
Arabic word may carry the clitics news text glues to it (و ف ب ك ل, the article) and
nisba/plural/pronoun suffixes, so «كويت» finds الكويت، والكويتي، للكويتيين. A word written
with the article («البلاد») requires it, which keeps «بلاده» (his country, often the
partner's) from matching «البلاد». The surface forms are expanded once at load time, so
matching an article is a set intersection and a few dictionary look-ups.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import accumulate, product
from typing import Any, NamedTuple

from monitor.arabic import TokenizedText, chunk_words, normalize
from monitor.relevance.english import english_forms, mark_lowercase_names
from monitor.relevance.model import FieldName, RulesError

_ARABIC_LETTER = re.compile(r"[\u0621-\u064a]")
_CONJUNCTIONS = ("", "و", "ف")
_ARTICLE_PREFIXES = ("ال", "بال", "كال", "لل")
_PREPOSITIONS = ("ب", "ل", "ك")
_NISBA_PLURAL = ("", "ي", "يه", "يين", "يون", "يات", "يتين", "يتان", "ين", "ون", "ان", "ات")
_PRONOUNS = ("ه", "ها", "هما", "هم", "هن", "ك", "كما", "كم", "نا")
_TAA_ARTICLE = ("ه", "ات", "تين", "تان")
_TAA_FREE = ("ه", "ات", "تين", "تان", *("ت" + p for p in (*_PRONOUNS, "ي", "ين", "ان")), *("ات" + p for p in _PRONOUNS))


@lru_cache(maxsize=4096)
def surface_forms(word: str) -> frozenset[str]:
    """Every spelling of a normalised rule word that counts as that word in running text.

    Cached: the same words recur across lists, the lists named by `@list` words and the
    topics, and every parse worker rebuilds its trie from the words when it unpickles it.
    """
    if not _ARABIC_LETTER.search(word):
        return english_forms(word)
    has_article = word.startswith("ال") and len(word) >= 4
    core = word[2:] if has_article else word
    if core.endswith("ه") and len(core) >= 3:
        stem, suffixes = core[:-1], (_TAA_ARTICLE if has_article else _TAA_FREE)
    else:
        stem, suffixes = core, (_NISBA_PLURAL if has_article else _NISBA_PLURAL + _PRONOUNS)
    prefixes = _ARTICLE_PREFIXES if has_article else ("", *_ARTICLE_PREFIXES, *_PREPOSITIONS)
    return frozenset(map("".join, product(_CONJUNCTIONS, prefixes, (stem,), suffixes)))


class _Hit(NamedTuple):
    """A term found in one field, as a range of word indices (inclusive)."""

    list_name: str
    term: str
    field: FieldName
    first: int
    last: int


class _Field:
    """One article field: its normalised words and, on demand, their original spans."""

    __slots__ = ("name", "tokens", "_joined", "_word_starts")

    def __init__(self, name: FieldName, text: str):
        self.name = name
        self.tokens = TokenizedText(text)
        mark_lowercase_names(self.tokens.words, self._original_word)
        self._joined: str | None = None
        self._word_starts: list[int] | None = None

    @property
    def words(self) -> list[str]:
        return self.tokens.words

    def joined(self) -> str:
        if self._joined is None:
            self._joined = " ".join(self.words)
        return self._joined

    def word_at(self, char_index: int) -> int:
        """Index of the word containing position `char_index` of `joined()` (a binary search:
        counting the spaces before it made a regex with many hits quadratic)."""
        if self._word_starts is None:
            self._word_starts = list(accumulate((len(w) + 1 for w in self.words[:-1]), initial=0))
        return bisect_right(self._word_starts, char_index) - 1

    def _original_word(self, index: int) -> str:
        start, end = self.tokens.span(index)
        return self.tokens.original[start:end]

    def original_span(self, first: int, last: int) -> tuple[int, int]:
        return self.tokens.span(first)[0], self.tokens.span(last)[1]


class _Node:
    """A word of one or more terms; `ends` lists the terms that end here.

    `gaps` are `~N` words: up to N words of any kind («قطر وواشنطن تعقدان ~3 @dialogue»).
    `slots` are `@list` words: (list name, root of that list's own trie, node after it). A
    slot matches wherever any term of the list does, so a term like «@dialogue بين @party»
    costs a few nodes instead of one path per combination of the two lists' terms.

    A node pickles without `next`, which holds hundreds of surface forms per child word and
    is rebuilt from `by_word` in the same order: the parse workers receive the canonical
    words only.
    """

    __slots__ = ("ends", "next", "by_word", "slots", "gaps")

    def __init__(self) -> None:
        self.ends: list[tuple[str, int]] = []
        self.next: dict[str, tuple[_Node, ...]] = {}  # surface form of the next word -> nodes
        self.by_word: dict[str, _Node] = {}  # canonical next word -> node (to share prefixes)
        self.slots: tuple[tuple[str, _Node, _Node], ...] = ()
        self.gaps: tuple[tuple[int, _Node], ...] = ()  # `~N`: (N, node after up to N words)

    def add_child(self, word: str) -> _Node:
        """The node for `word` after this one, reachable by each of its surface forms."""
        child = self.by_word.get(word)
        if child is None:
            child = self.by_word[word] = _Node()
            self._link(word, child)
        return child

    def _link(self, word: str, child: _Node) -> None:
        forms = surface_forms(word)
        shared = frozenset(filter(self.next.__contains__, forms)) if self.next else ()
        self.next.update(dict.fromkeys(forms - shared if shared else forms, (child,)))
        for form in shared:  # a form of two words («كويت» and «الكويت»): both, in order
            self.next[form] = (*self.next[form], child)

    def __getstate__(self) -> tuple[Any, ...]:
        return self.ends, self.by_word, self.slots, self.gaps

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.ends, self.by_word, self.slots, self.gaps = state
        self.next = {}
        for word, child in self.by_word.items():
            self._link(word, child)


_MAX_EXPANSIONS = 20_000
_INLINE_PATHS = 32  # a term spells out `@list` words up to this many paths


class _Slot(NamedTuple):
    """An `@name` word of a term: any term of the list `name` at this place."""

    name: str


class _Gap(NamedTuple):
    """A `~N` word of a term: up to N words of any kind at this place."""

    words: int


_MAX_GAP = 8
_GAP_WORD = re.compile(r"^~(\d+)$")
_Part = str | _Slot | _Gap
# (id of a list's trie root, first word index) -> last word indices of that list's matches
_SlotMemo = dict[tuple[int, int], tuple[int, ...]]


class _TermIndex:
    """Every term of every list in one word trie keyed by surface forms; regex terms apart.

    A term may name another term list as one of its words with `@name`: «الحوار الاستراتيجي
    بين @other_parties» stands for one phrase per term of `other_parties`. The named list gets
    a trie of its own, shared by every term that refers to it, and matching descends into it
    at that word: the phrases are never spelled out one by one (a few lists of dialogue names
    and parties would otherwise make tens of thousands of paths, seconds to build and a
    hundred megabytes to send to each parse worker).
    """

    def __init__(self, lists: dict[str, list[str]], key_prefix: str, references: dict[str, list[str]] | None = None):
        self.root = _Node()
        self.regexes: dict[str, list[tuple[int, re.Pattern[str]]]] = {}
        self.terms: dict[str, list[str]] = {}
        references = lists if references is None else references
        self._references = references
        self._list_roots: dict[str, _Node] = {}
        for name, terms in lists.items():
            if not terms:
                raise RulesError(f"{key_prefix}.{name}", "empty term list")
            self.terms[name] = list(terms)
            seen: dict[str, int] = {}
            for term_index, term in enumerate(terms):
                key = f"{key_prefix}.{name}[{term_index}]"
                if not isinstance(term, str) or not term.strip() or term.strip() == "re:":
                    raise RulesError(key, "empty term")
                canonical = term if term.startswith("re:") else normalize(term)
                if canonical in seen:
                    raise RulesError(key, f"duplicate term {term!r} (same as {key_prefix}.{name}[{seen[canonical]}] once normalised)")
                seen[canonical] = term_index
                if term.startswith("re:"):
                    try:
                        pattern = re.compile(term[3:])
                    except re.error as exc:
                        raise RulesError(key, f"bad regex {term[3:]!r}: {exc}") from None
                    self.regexes.setdefault(name, []).append((term_index, pattern))
                    continue
                _check_expansion(term, references, key, (name,))
                self._insert(self.root, _parts(term), (name, term_index))
        del self._references
        self._derive_first_forms()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without `first_forms`, which is derived from the trie (and large)."""
        return {key: value for key, value in self.__dict__.items() if key not in ("first_forms", "slot_first_forms")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._derive_first_forms()

    def _derive_first_forms(self) -> None:
        self.slot_first_forms = _first_forms(self.root, slots_only=True)
        self.first_forms = self.slot_first_forms.union(self.root.next)

    def _list_root(self, name: str) -> _Node:
        """The trie of one referenced list's terms (built once, validated by the caller)."""
        root = self._list_roots.get(name)
        if root is None:
            root = self._list_roots[name] = _Node()
            for term_index, term in enumerate(self._references[name]):
                self._insert(root, _parts(term), (name, term_index))
        return root

    def _insert(self, node: _Node, parts: Sequence[_Part], end: tuple[str, int], paths: int = 1) -> None:
        """Add one term to a trie. A short list named by `@list` is spelled out in place
        while the term keeps to a few dozen paths («@dialogue_name» of five names: the
        paths share their nodes with the dialogue lists, as if written out); a longer one
        becomes a slot."""
        for position, part in enumerate(parts):
            if isinstance(part, _Gap):
                after = next((a for n, a in node.gaps if n == part.words), None)
                if after is None:
                    after = _Node()
                    node.gaps = (*node.gaps, (part.words, after))
                node = after
                continue
            if isinstance(part, _Slot):
                options = self._references[part.name]
                if len(options) * paths <= _INLINE_PATHS:
                    rest = parts[position + 1:]
                    for option in options:
                        self._insert(node, [*_parts(option), *rest], end, len(options) * paths)
                    return
                after = next((a for name, _, a in node.slots if name == part.name), None)
                if after is None:
                    after = _Node()
                    node.slots = (*node.slots, (part.name, self._list_root(part.name), after))
                node = after
                continue
            node = node.add_child(part)
        node.ends.append(end)

    def find_all(self, fld: _Field) -> dict[str, list[_Hit]]:
        """Hits of every list in one field, by list name.

        One C-level set intersection tells whether any term can start in this field; only
        the words that can start a term are then walked through the trie.
        """
        words = fld.words
        present = self.first_forms.intersection(words)
        if not present:
            return {}
        found: dict[str, list[_Hit]] = {}
        root = self.root
        root_next = root.next
        terms = self.terms
        count = len(words)
        memo: _SlotMemo = {}
        slot_starts = self.slot_first_forms.intersection(present) if self.slot_first_forms else ()
        for first in [i for i, word in enumerate(words) if word in present]:
            stack = [(node, first) for node in root_next.get(words[first], ())]
            if slot_starts and words[first] in slot_starts:
                stack.extend(_after_slots(root, words, first, memo))
            while stack:
                node, last = stack.pop()
                for list_name, term_index in node.ends:
                    found.setdefault(list_name, []).append(_Hit(list_name, terms[list_name][term_index], fld.name, first, last))
                if node.next and last + 1 < count:
                    stack.extend((child, last + 1) for child in node.next.get(words[last + 1], ()))
                if node.slots and last + 1 < count:
                    stack.extend(_after_slots(node, words, last + 1, memo))
                if node.gaps:
                    stack.extend(_after_gaps(node, last, count))
        return found

    def lists_present(self, fld: _Field) -> set[str]:
        """Names of the (non-regex) lists with a hit in this field; cheaper than `find_all`
        because single-word terms need no positions."""
        words = fld.words
        present = self.first_forms.intersection(words)
        names: set[str] = set()
        phrase_starts = set()
        root = self.root
        for form in present:
            for node in root.next.get(form, ()):
                names.update(list_name for list_name, _ in node.ends)
                if node.next or node.slots or node.gaps:
                    phrase_starts.add(form)
        if self.slot_first_forms:
            phrase_starts.update(self.slot_first_forms.intersection(present))  # terms starting with `@list`
        if phrase_starts:
            memo: _SlotMemo = {}
            for first in [i for i, word in enumerate(words) if word in phrase_starts]:
                stack = _after_slots(root, words, first, memo) if root.slots else []
                stack.extend((node, first) for node in root.next.get(words[first], ()))
                while stack:
                    node, last = stack.pop()
                    names.update(list_name for list_name, _ in node.ends)
                    if last + 1 < len(words):
                        if node.slots:
                            stack.extend(_after_slots(node, words, last + 1, memo))
                        if node.next:
                            stack.extend((child, last + 1) for child in node.next.get(words[last + 1], ()))
                        if node.gaps:
                            stack.extend(_after_gaps(node, last, len(words)))
        return names

    def vocabulary(self) -> frozenset[str]:
        """Every surface form of every word of every (non-regex) term."""
        forms: set[str] = set()
        pending = [self.root]
        visited: set[int] = set()
        while pending:
            node = pending.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            forms.update(node.next)
            pending.extend(node.by_word.values())
            for _, list_root, after in node.slots:
                pending.extend((list_root, after))
            pending.extend(after for _, after in node.gaps)
        return frozenset(forms)

    def find_regex(self, name: str, fld: _Field) -> list[_Hit]:
        """Hits of the regex terms of one list (run only when a watch asks for that list)."""
        hits = []
        for term_index, pattern in self.regexes.get(name, ()):
            for match in pattern.finditer(fld.joined()):
                if match.end() == match.start():
                    continue
                first, last = fld.word_at(match.start()), fld.word_at(match.end() - 1)
                hits.append(_Hit(name, self.terms[name][term_index], fld.name, first, last))
        return hits


def _parts(term: str) -> list[_Part]:
    """The words of a term, tokenised exactly like article text, with `@list` words as slots."""
    parts: list[_Part] = []
    for raw in term.split():
        if raw.startswith("@"):
            parts.append(_Slot(raw[1:]))
        elif _GAP_WORD.match(raw):
            parts.append(_Gap(int(raw[1:])))
        else:
            parts.extend(chunk_words(raw))
    return parts


def _first_forms(root: _Node, slots_only: bool = False) -> frozenset[str]:
    """Surface forms a term can start with, including those of lists named by a leading slot
    (or only those)."""
    forms = set() if slots_only else set(root.next)
    pending = [list_root for _, list_root, _ in root.slots]
    visited: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) not in visited:
            visited.add(id(node))
            forms.update(node.next)
            pending.extend(list_root for _, list_root, _ in node.slots)
    return frozenset(forms)


def _after_slots(node: _Node, words: list[str], start: int, memo: _SlotMemo) -> list[tuple[_Node, int]]:
    """(node after the slot, last word index) for each match of each slot list of `node`
    that starts at word `start`."""
    return [
        (after, last)
        for _, list_root, after in node.slots
        if list_root.slots or words[start] in list_root.next  # most often no term starts here
        for last in _list_ends(list_root, words, start, memo)
    ]


def _after_gaps(node: _Node, last: int, count: int) -> list[tuple[_Node, int]]:
    """(node after the gap, last word index) for each length a `~N` gap after word `last`
    may take (0 to N words, within the field): the next word is matched from there."""
    return [(after, last + skipped) for words, after in node.gaps for skipped in range(words + 1) if last + skipped + 1 < count]


def _list_ends(list_root: _Node, words: list[str], start: int, memo: _SlotMemo) -> tuple[int, ...]:
    """Last word indices of the matches of one referenced list that start at word `start`."""
    key = (id(list_root), start)
    cached = memo.get(key)
    if cached is not None:
        return cached
    ends: set[int] = set()
    count = len(words)
    stack = _after_slots(list_root, words, start, memo) if list_root.slots else []
    stack.extend((node, start) for node in list_root.next.get(words[start], ()))
    while stack:
        node, last = stack.pop()
        if node.ends:
            ends.add(last)
        if last + 1 < count:
            if node.slots:
                stack.extend(_after_slots(node, words, last + 1, memo))
            if node.next:
                stack.extend((child, last + 1) for child in node.next.get(words[last + 1], ()))
            if node.gaps:
                stack.extend(_after_gaps(node, last, count))
    result = memo[key] = tuple(sorted(ends))
    return result


def _check_expansion(term: str, references: dict[str, list[str]], key: str, stack: tuple[str, ...]) -> int:
    """How many phrases a term stands for, with `@list` words replaced by that list's terms;
    raises on unknown or cyclic references, regex terms behind a reference, terms without
    letters and too many phrases. Counts, never spells the phrases out."""
    phrases = 1
    has_words = False
    raws = term.split()
    for position, raw in enumerate(raws):
        gap = _GAP_WORD.match(raw)
        if gap is not None:
            if not 1 <= int(gap.group(1)) <= _MAX_GAP:
                raise RulesError(key, f"{raw!r} in {term!r}: a gap is ~1 to ~{_MAX_GAP} words")
            if position == 0 or position == len(raws) - 1:
                raise RulesError(key, f"{term!r} starts or ends with a gap ({raw!r}); a gap stands between words")
            continue
        if raw.startswith("@"):
            name = raw[1:]
            if name not in references:
                raise RulesError(key, f"unknown term list {name!r} in {term!r}")
            if name in stack:
                raise RulesError(key, f"term lists refer to each other in a cycle: {' -> '.join((*stack, name))}")
            options = 0
            for index, other in enumerate(references[name]):
                if other.startswith("re:"):
                    raise RulesError(key, f"{term!r} refers to {name!r}, which holds a regex term ({name}[{index}])")
                options += _check_expansion(other, references, key, (*stack, name))
            has_words = True
        else:
            if not chunk_words(raw):
                continue
            options = 1
            has_words = True
        phrases *= options
        if phrases > _MAX_EXPANSIONS:
            raise RulesError(key, f"{term!r} expands to more than {_MAX_EXPANSIONS} phrases")
    if not phrases or not has_words:
        raise RulesError(key, f"term {term!r} has no letters or digits")
    return phrases


def _outermost(hits: list[_Hit]) -> list[_Hit]:
    """One hit per place: «حوار استراتيجي» inside «الحوار الاستراتيجي المشترك», or «التوجيه
    المشتركة» overlapping «مجموعة التوجيه», is the same mention (the earlier, longer one)."""
    hits.sort(key=lambda h: (h.field, h.first, h.first - h.last, -len(h.term)))  # most specific term first
    kept: list[_Hit] = []
    for hit in hits:
        if kept and kept[-1].field == hit.field and hit.first <= kept[-1].last:
            continue
        kept.append(hit)
    return kept


class _Cover:
    """The hits of one field, for the question "does one of them start at or before word
    `first` and end at or after word `last`?" in O(log n): the hits sorted by first word and
    the running maximum of their last words. Masks (is a hit inside one?) and round binding
    (is a dialogue term near?) asked it of every pair of hits, which is quadratic in a long
    text."""

    __slots__ = ("firsts", "reach")

    def __init__(self, hits: Iterable[_Hit]):
        ordered = sorted(hits, key=lambda h: h.first)
        self.firsts = [h.first for h in ordered]
        self.reach = list(accumulate((h.last for h in ordered), max))

    def reaches(self, first: int, last: int) -> bool:
        position = bisect_right(self.firsts, first)
        return position > 0 and self.reach[position - 1] >= last
