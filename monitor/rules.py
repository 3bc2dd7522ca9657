"""Relevance rules: named Arabic term lists combined into weighted, explainable watches.

The rules are the analyst's main lever, so they are written in plain Arabic in TOML and
compiled once at start-up; every mistake in them (unknown list, empty group, bad regex,
duplicate id) is a `RulesError` naming the key path, never a rule that silently matches
nothing. The model is the one of the better keyword-alert systems (EMM's weighted patterns
with Boolean combinations and proximity): required term lists, exclusions, weighted clauses
that may require several lists within a window of words, and a score threshold, with matches
in the title and the lead counting more than matches deep in the body, where passing
mentions live.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import accumulate, product
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.arabic import ORDINALS, TokenizedText, analysed_prefix, chunk_words, normalize

__all__ = [
    "ClauseConfig",
    "RulesConfig",
    "Decision",
    "Match",
    "RuleSet",
    "RulesError",
    "WatchConfig",
    "classify_lines",
    "compile_rules",
]

# Bump when matching semantics change, so stored decisions are recomputed.
ENGINE_VERSION = "2"

FieldName = Literal["title", "body"]

# At most this many hits of one term in one field are counted (scored, used to find the
# round, listed in the decision): a text made of one sentence repeated would otherwise list
# thousands of matches. No news article repeats a term this often; it equals the largest
# `max_count`, so a one-list clause still scores its best occurrences. Masks are applied
# before the cap, so a masked mention never reappears because its mask was capped away.
MAX_HITS_PER_TERM = 50


class RulesError(ValueError):
    """A rule that cannot be compiled, with the TOML key path of the culprit."""

    def __init__(self, key_path: str, message: str):
        super().__init__(message)
        self.key_path = key_path

    def __str__(self) -> str:
        return f"{self.key_path}: {self.args[0]}"


# -- configuration models (TOML sections, keys exactly as written) ---------------------------


class ClauseConfig(BaseModel):
    """A weighted piece of evidence.

    With one term list it scores each match of that list; with several it scores each place
    where all of them occur within `within` words of each other (proximity). A negative weight
    makes it a soft exclusion.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: list[str]
    weight: float = 1.0
    within: int = Field(default=10, ge=1, le=200)
    max_count: int = Field(default=2, ge=1, le=50)


class WatchConfig(BaseModel):
    """One thing the analysts want flagged (e.g. the Kuwait–US Strategic Dialogue)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = ""
    all: list[str] = []
    any: list[str] = []
    none: list[str] = []
    mask: list[str] = []
    clauses: list[ClauseConfig] = []
    threshold: float = 1.0
    title_weight: float = Field(default=3.0, ge=0)
    lead_words: int = Field(default=60, ge=0)
    lead_weight: float = Field(default=2.0, ge=0)
    round_after: list[str] = []
    round_within: int = Field(default=6, ge=0, le=50)

    @field_validator("title")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class RulesConfig(BaseModel):
    """The three rule sections together, for callers that validate them on their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: dict[str, list[str]] = {}
    watches: list[WatchConfig] = []
    topics: dict[str, list[str]] = {}


# -- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """A term found in the article; start/end are offsets into the original field text."""

    term: str
    field: FieldName
    start: int
    end: int


@dataclass(frozen=True)
class Decision:
    """What the engine decided about one article, and why."""

    flagged: bool
    watch: str | None
    score: float
    threshold: float
    round: int | None
    topics: tuple[str, ...]
    matches: tuple[Match, ...]
    explanation: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """The `monitor classify` contract (the caller puts "id" first), plus two extensions."""
        return {
            "flagged": self.flagged,
            "watch": self.watch,
            "score": round(self.score, 3),
            "round": self.round,
            "topics": list(self.topics),
            "matches": [{"term": m.term, "field": m.field, "start": m.start, "end": m.end} for m in self.matches],
            "threshold": self.threshold,
            "explanation": self.explanation,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Decision:
        return cls(
            flagged=bool(data["flagged"]),
            watch=data.get("watch"),
            score=float(data.get("score", 0.0)),
            threshold=float(data.get("threshold", 0.0)),
            round=data.get("round"),
            topics=tuple(data.get("topics", ())),
            matches=tuple(Match(m["term"], m["field"], int(m["start"]), int(m["end"])) for m in data.get("matches", ())),
            explanation=str(data.get("explanation", "")),
        )


# -- term compilation ------------------------------------------------------------------------
# A term is a sequence of words matched on consecutive normalised words of the article. Each
# Arabic word may carry the clitics news text glues to it (و ف ب ك ل, the article) and
# nisba/plural/pronoun suffixes, so «كويت» finds الكويت، والكويتي، للكويتيين. A word written
# with the article («البلاد») requires it, which keeps «بلاده» (his country, often the
# partner's) from matching «البلاد». The surface forms are expanded once at load time, so
# matching an article is a set intersection and a few dictionary look-ups.

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
        return frozenset({word})
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

    def original_span(self, first: int, last: int) -> tuple[int, int]:
        return self.tokens.span(first)[0], self.tokens.span(last)[1]


class _Node:
    """A word of one or more terms; `ends` lists the terms that end here.

    `slots` are `@list` words: (list name, root of that list's own trie, node after it). A
    slot matches wherever any term of the list does, so a term like «@dialogue بين @party»
    costs a few nodes instead of one path per combination of the two lists' terms.

    A node pickles without `next`, which holds hundreds of surface forms per child word and
    is rebuilt from `by_word` in the same order: the parse workers receive the canonical
    words only.
    """

    __slots__ = ("ends", "next", "by_word", "slots")

    def __init__(self) -> None:
        self.ends: list[tuple[str, int]] = []
        self.next: dict[str, tuple[_Node, ...]] = {}  # surface form of the next word -> nodes
        self.by_word: dict[str, _Node] = {}  # canonical next word -> node (to share prefixes)
        self.slots: tuple[tuple[str, _Node, _Node], ...] = ()

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
        return self.ends, self.by_word, self.slots

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.ends, self.by_word, self.slots = state
        self.next = {}
        for word, child in self.by_word.items():
            self._link(word, child)


_MAX_EXPANSIONS = 20_000
_INLINE_PATHS = 32  # a term spells out `@list` words up to this many paths


class _Slot(NamedTuple):
    """An `@name` word of a term: any term of the list `name` at this place."""

    name: str


_Part = str | _Slot
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
                if node.next or node.slots:
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
    result = memo[key] = tuple(sorted(ends))
    return result


def _check_expansion(term: str, references: dict[str, list[str]], key: str, stack: tuple[str, ...]) -> int:
    """How many phrases a term stands for, with `@list` words replaced by that list's terms;
    raises on unknown or cyclic references, regex terms behind a reference, terms without
    letters and too many phrases. Counts, never spells the phrases out."""
    phrases = 1
    has_words = False
    for raw in term.split():
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


# -- compiled watches --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clause:
    lists: tuple[str, ...]
    weight: float
    within: int
    max_count: int

    def describe(self) -> str:
        if len(self.lists) == 1:
            return self.lists[0]
        return "near(" + ", ".join(self.lists) + f"; {self.within})"


@dataclass(frozen=True)
class _Watch:
    config: WatchConfig
    clauses: tuple[_Clause, ...]

    @property
    def id(self) -> str:
        return self.config.id


@dataclass
class _Evaluation:
    watch: _Watch
    passed: bool
    score: float
    reasons: list[str]
    hits: list[_Hit]
    round: int | None = None
    round_reason: str = ""


class _Article:
    """Both fields of one article and the hits found so far (computed once per article)."""

    __slots__ = ("fields", "_hits", "_pending_regex", "_masked")

    def __init__(self, title: str, body: str):
        self.fields = (_Field("title", title), _Field("body", body))
        self._hits: dict[str, list[_Hit]] | None = None
        self._pending_regex: set[str] = set()
        self._masked: dict[tuple[str, tuple[str, ...]], list[_Hit]] = {}

    def _list_hits(self, index: _TermIndex, name: str) -> list[_Hit]:
        if self._hits is None:
            found: dict[str, list[_Hit]] = {}
            for fld in self.fields:
                for list_name, hits in index.find_all(fld).items():
                    found.setdefault(list_name, []).extend(hits)
            for list_name in index.regexes:
                found.setdefault(list_name, [])
            self._hits = {list_name: _outermost(hits) for list_name, hits in found.items()}
            self._pending_regex = set(index.regexes)
        if name in self._pending_regex:
            self._pending_regex.discard(name)
            regex_hits = [h for fld in self.fields for h in index.find_regex(name, fld)]
            if regex_hits:
                self._hits[name] = _outermost(self._hits[name] + regex_hits)
        return self._hits.get(name, [])

    def field(self, name: FieldName) -> _Field:
        return self.fields[0] if name == "title" else self.fields[1]

    def hits(self, index: _TermIndex, name: str, mask: Sequence[str] = ()) -> list[_Hit]:
        """Hits of a term list, minus those inside a hit of a `mask` list (another party's
        «الحوار الاستراتيجي القطري» is not a mention of this watch's dialogue), at most
        MAX_HITS_PER_TERM of each term per field."""
        key = (name, tuple(mask))
        kept = self._masked.get(key)
        if kept is None:
            kept = self._list_hits(index, name)
            if mask and kept and name not in mask:
                masks = [m for mask_name in mask for m in self._list_hits(index, mask_name)]
                if masks:
                    covers = {fld.name: _Cover([m for m in masks if m.field == fld.name]) for fld in self.fields}
                    kept = [h for h in kept if not covers[h.field].reaches(h.first, h.last)]
            kept = self._masked[key] = _capped(kept)
        return kept


def _capped(hits: list[_Hit]) -> list[_Hit]:
    """The first MAX_HITS_PER_TERM hits of each term in each field, in their order."""
    if len(hits) <= MAX_HITS_PER_TERM:
        return hits
    seen: dict[tuple[str, str], int] = {}
    kept = []
    for hit in hits:
        key = (hit.field, hit.term)
        number = seen.get(key, 0)
        if number < MAX_HITS_PER_TERM:
            seen[key] = number + 1
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


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules: classify articles and say why."""

    watches: tuple[_Watch, ...]
    index: _TermIndex = field(repr=False)
    topic_index: _TermIndex = field(repr=False)
    fingerprint: str
    prefilter: _Prefilter | None = field(repr=False, default=None)

    def classify(self, title: str, body: str) -> Decision:
        """Decide one article: flagged or not, best watch, score, round, topics, matches.

        Only the first ANALYSED_CHARS characters of each field are read (monitor.arabic), and
        every step after the tokeniser is linear (or n log n) in the hits, so that one huge
        feed item cannot stall a worker."""
        title = analysed_prefix(title or "")
        body = analysed_prefix(body or "")
        if not self.watches or (self.prefilter is not None and not self.prefilter.may_match(title, body)):
            return self._rejected
        article = _Article(title, body)
        evaluations = [self._evaluate(watch, article) for watch in self.watches]
        passed = [e for e in evaluations if e.passed]
        best = max(passed or evaluations, key=lambda e: (e.score, len(e.hits)))
        flagged = bool(passed)
        if flagged:
            self._find_round(best, article)
        return Decision(
            flagged=flagged,
            watch=best.watch.id if flagged else None,
            score=best.score,
            threshold=best.watch.config.threshold,
            round=best.round if flagged else None,
            topics=self._topics(article) if flagged else (),
            matches=_to_matches(best.hits, article),
            explanation=_explain(best, evaluations, flagged),
        )

    def may_concern(self, title: str, body: str) -> bool:
        """False only when no watch could match (the cheap raw-text prefilter says so)."""
        if not self.watches:
            return False
        return self.prefilter is None or self.prefilter.may_match(analysed_prefix(title or ""), analysed_prefix(body or ""))

    def could_concern(self, decision: Decision) -> bool:
        """may_concern() for an article classify() has already decided: False exactly when
        classify() stopped at the prefilter (or there is no watch), without a second search."""
        return decision is not self._rejected

    @cached_property
    def _rejected(self) -> Decision:
        """The (immutable) decision for the bulk of a feed, which the prefilter rejects."""
        threshold = self.watches[0].config.threshold if self.watches else 0.0
        return Decision(False, None, 0.0, threshold, None, (), (), "no watch's required terms (prefilter)")

    def vocabulary(self) -> frozenset[str]:
        """Every normalised word form the watch terms react to (for tools and benchmarks)."""
        return self.index.vocabulary()

    def _evaluate(self, watch: _Watch, article: _Article) -> _Evaluation:
        config = watch.config
        mask = config.mask
        hits: list[_Hit] = []
        for name in config.all:
            found = article.hits(self.index, name, mask)
            if not found:
                return _Evaluation(watch, False, 0.0, [f"no {name}"], hits)
            hits.extend(found)
        if config.any:
            found_any = [h for name in config.any for h in article.hits(self.index, name, mask)]
            if not found_any:
                return _Evaluation(watch, False, 0.0, ["none of " + "/".join(config.any)], hits)
            hits.extend(found_any)
        for name in config.none:
            vetoes = article.hits(self.index, name, mask)
            if vetoes:
                return _Evaluation(watch, False, 0.0, [f"excluded by {name} «{vetoes[0].term}»"], hits + vetoes)
        score = 0.0
        reasons: list[str] = []
        for clause in watch.clauses:
            gained, where, clause_hits = self._score_clause(clause, config, article)
            if gained:
                score += gained
                reasons.append(f"{clause.describe()} {gained:+.1f} ({where})")
                hits.extend(clause_hits)
        return _Evaluation(watch, score >= config.threshold, score, reasons, hits)

    def _score_clause(self, clause: _Clause, config: WatchConfig, article: _Article) -> tuple[float, str, list[_Hit]]:
        per_list = [article.hits(self.index, name, config.mask) for name in clause.lists]
        if any(not hits for hits in per_list):
            return 0.0, "", []
        occurrences: list[tuple[float, str, list[_Hit]]] = []
        for fld in article.fields:
            in_field = [[h for h in hits if h.field == fld.name] for hits in per_list]
            if any(not hits for hits in in_field):
                continue
            if len(in_field) == 1:
                for hit in in_field[0]:
                    multiplier, where = _position_weight(config, hit)
                    occurrences.append((multiplier, where, [hit]))
            else:
                occurrences.extend(_proximity_occurrences(config, in_field, clause.within))
        if not occurrences:
            return 0.0, "", []
        occurrences.sort(key=lambda o: -o[0])
        top = occurrences[: clause.max_count]
        gained = clause.weight * sum(o[0] for o in top)
        return gained, ", ".join(o[1] for o in top), [h for o in top for h in o[2]]

    def _find_round(self, evaluation: _Evaluation, article: _Article) -> None:
        """The round the article is about, from the ordinals that follow a round word."""
        config = evaluation.watch.config
        if not config.round_after:
            return
        mask = config.mask
        binders = [h for name in (config.any or config.all) for h in article.hits(self.index, name, mask)]
        near_binder = {fld.name: _Cover([b for b in binders if b.field == fld.name]) for fld in article.fields}
        anchors = [(name, h) for name in config.round_after for h in article.hits(self.index, name, mask)]
        anchors.sort(key=lambda pair: (pair[1].field != "title", pair[1].first))
        candidates: dict[int, float] = {}
        evidence: dict[int, str] = {}
        order = 0
        fallback: tuple[int, str] | None = None
        title_names_dialogue = any(h.field == "title" for h in binders)
        for name, anchor in anchors:
            fld = article.field(anchor.field)
            parsed = _parse_round_after(fld.words, anchor.last + 1)
            if parsed is None:
                continue
            value, value_last = parsed
            if name not in config.any and not _bound(anchor, value_last, near_binder[anchor.field], config.round_within):
                # «تأجيل الجولة السابعة» in the lead of an article whose title names the
                # dialogue is about that dialogue too; kept as a fallback only.
                if fallback is None and title_names_dialogue and fld.name == "body" and anchor.first < config.lead_words:
                    start, end = fld.original_span(anchor.first, value_last)
                    fallback = (value, f"«{fld.tokens.original[start:end]}» (lead, dialogue named in the title)")
                continue
            order += 1
            candidates[value] = candidates.get(value, 0.0) + _round_weight(fld, anchor, value_last, order)
            if value not in evidence:
                start, end = fld.original_span(anchor.first, value_last)
                evidence[value] = f"«{fld.tokens.original[start:end]}» ({fld.name})"
        if candidates:
            best = max(candidates, key=lambda v: candidates[v])
            evaluation.round = best
            evaluation.round_reason = evidence[best]
        elif fallback is not None:
            evaluation.round, evaluation.round_reason = fallback

    def _topics(self, article: _Article) -> tuple[str, ...]:
        found: set[str] = set()
        for fld in article.fields:
            found.update(self.topic_index.lists_present(fld))
            found.update(name for name in self.topic_index.regexes if name not in found and self.topic_index.find_regex(name, fld))
        return tuple(name for name in self.topic_index.terms if name in found)


def _position_weight(config: WatchConfig, hit: _Hit) -> tuple[float, str]:
    if hit.field == "title":
        return config.title_weight, "title"
    if hit.first < config.lead_words:
        return config.lead_weight, "lead"
    return 1.0, "body"


def _proximity_occurrences(
    config: WatchConfig, per_list: list[list[_Hit]], within: int
) -> list[tuple[float, str, list[_Hit]]]:
    """Each hit of the first list that has a hit of every other list within `within` words:
    with each other list, the nearest hit that does not overlap the anchor (the one before it
    on a tie). Found by binary search, so the work is n log n in the hits, not their pairs."""
    found = []
    neighbours = [_Neighbours(others) for others in per_list[1:]]
    for anchor in per_list[0]:
        group = [anchor]
        for others in neighbours:
            nearest = others.nearest(anchor, within)
            if nearest is None:
                break
            group.append(nearest)
        else:
            multiplier, where = _position_weight(config, anchor)
            found.append((multiplier, where, group))
    return found


class _Neighbours:
    """One list's hits of one field, ordered to find the nearest one before or after a place."""

    __slots__ = ("by_last", "lasts", "by_first", "firsts")

    def __init__(self, hits: list[_Hit]):
        self.by_last = sorted(hits, key=lambda h: h.last)
        self.lasts = [h.last for h in self.by_last]
        self.by_first = sorted(hits, key=lambda h: h.first)
        self.firsts = [h.first for h in self.by_first]

    def nearest(self, anchor: _Hit, within: int) -> _Hit | None:
        """The hit closest to `anchor` that does not overlap it, if within `within` words."""
        best: _Hit | None = None
        gap = within + 1
        before = bisect_left(self.lasts, anchor.first) - 1  # the last hit ending before it
        if before >= 0:
            candidate = self.by_last[before]
            if anchor.first - candidate.last - 1 < gap:
                best, gap = candidate, anchor.first - candidate.last - 1
        after = bisect_right(self.firsts, anchor.last)  # the first hit starting after it
        if after < len(self.by_first):
            candidate = self.by_first[after]
            if candidate.first - anchor.last - 1 < gap:
                best = candidate
        return best


# -- round / session number ------------------------------------------------------------------
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
    """Whether a binder (of the anchor's field) lies within `within` words of the span from
    the anchor to its number: the binder starts at most
    within + 1 words after the span's end and ends at most within + 1 words before its start."""
    return binders.reaches(value_last + within + 1, anchor.first - within - 1)


def _round_weight(fld: _Field, anchor: _Hit, value_last: int, order: int) -> float:
    if fld.name == "title":
        return 10.0
    weight = 3.0 - min(order, 20) * 0.05
    before = " ".join(fld.words[max(0, anchor.first - 4):anchor.first])
    after = " ".join(fld.words[value_last + 1:value_last + 3])
    if _CURRENT_BEFORE.search(before):
        weight += 2.0
    if _FUTURE_BEFORE.search(before):
        weight -= 2.0
    if _PAST_BEFORE.search(before):
        weight -= 2.5
    if _NEXT_AFTER.match(after):
        weight -= 2.5
    return weight


# -- output ---------------------------------------------------------------------------------------


def _to_matches(hits: Iterable[_Hit], article: _Article) -> tuple[Match, ...]:
    seen: set[tuple[str, int, int]] = set()
    matches = []
    for hit in hits:
        key = (hit.field, hit.first, hit.last)
        if key in seen:
            continue
        seen.add(key)
        start, end = article.field(hit.field).original_span(hit.first, hit.last)
        matches.append(Match(hit.term, hit.field, start, end))
    matches.sort(key=lambda m: (m.field != "title", m.start, m.end))
    return tuple(matches)


def _explain(best: _Evaluation, evaluations: Sequence[_Evaluation], flagged: bool) -> str:
    config = best.watch.config
    parts = [f"{best.watch.id}: score {best.score:.1f} {'>=' if flagged else '<'} {config.threshold:g}"]
    if best.reasons:
        parts.append("; ".join(best.reasons))
    if flagged and best.round is not None:
        parts.append(f"round {best.round} from {best.round_reason}")
    others = [f"{e.watch.id} {e.score:.1f}" + (f" ({'; '.join(e.reasons)})" if e.reasons and not e.score else "") for e in evaluations if e is not best]
    if others:
        parts.append("others: " + ", ".join(others))
    return " | ".join(parts)


# -- prefilter -----------------------------------------------------------------------------------

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
    # `@list` words are left out: a literal word of the same term is enough as a needle.
    worded = [[_core(normalize(w)) for w in t.split() if not w.startswith("@") and normalize(w)] for t in terms]
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


# -- compile ------------------------------------------------------------------------------------


def compile_rules(
    terms: dict[str, list[str]], watches: Sequence[WatchConfig], topics: dict[str, list[str]]
) -> RuleSet:
    """Validate and compile the rule sections; raise RulesError with the key path on problems."""
    terms = dict(terms or {})
    topics = dict(topics or {})
    watches = [w if isinstance(w, WatchConfig) else _validate_watch(w, i) for i, w in enumerate(watches or [])]
    index = _TermIndex(terms, "terms")
    topic_index = _TermIndex(topics, "topics", references={**terms, **topics})
    compiled = []
    seen_ids: set[str] = set()
    for number, watch in enumerate(watches):
        key = f"watches[{number}]"
        if watch.id in seen_ids:
            raise RulesError(f"{key}.id", f"duplicate watch id {watch.id!r}")
        seen_ids.add(watch.id)
        for group in ("all", "any", "none", "mask", "round_after"):
            for position, name in enumerate(getattr(watch, group)):
                _check_list(terms, name, f"{key}.{group}[{position}]")
        if not watch.all and not watch.any:
            raise RulesError(f"{key}", "a watch needs at least one required list in `all` or `any`")
        clauses = []
        for position, clause in enumerate(watch.clauses):
            clause_key = f"{key}.clauses[{position}]"
            if not clause.terms:
                raise RulesError(f"{clause_key}.terms", "empty group")
            for term_position, name in enumerate(clause.terms):
                _check_list(terms, name, f"{clause_key}.terms[{term_position}]")
            clauses.append(_Clause(tuple(clause.terms), clause.weight, clause.within, clause.max_count))
        if not clauses:
            raise RulesError(f"{key}.clauses", "empty group: a watch needs at least one weighted clause")
        compiled.append(_Watch(watch, tuple(clauses)))
    return RuleSet(
        watches=tuple(compiled),
        index=index,
        topic_index=topic_index,
        fingerprint=_fingerprint(terms, watches, topics),
        prefilter=_build_prefilter(watches, terms),
    )


def _validate_watch(raw: Any, number: int) -> WatchConfig:
    try:
        return WatchConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        raise RulesError(f"watches[{number}]{path}", error["msg"]) from None


def _check_list(terms: dict[str, list[str]], name: str, key: str) -> None:
    if name not in terms:
        known = ", ".join(sorted(terms)) or "none defined"
        raise RulesError(key, f"unknown term list {name!r} (known: {known})")


def _fingerprint(terms: dict[str, list[str]], watches: Sequence[WatchConfig], topics: dict[str, list[str]]) -> str:
    payload = {
        "engine": ENGINE_VERSION,
        "terms": terms,
        "watches": [w.model_dump(mode="json") for w in watches],
        "topics": topics,
    }
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- JSON Lines (the `monitor classify` contract) --------------------------------------------------


def classify_lines(lines: Iterable[str], ruleset: RuleSet) -> Iterator[tuple[str | None, str | None]]:
    """For each input line: (output line, None) or (None, error line). Blank lines are skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            article = json.loads(line)
        except json.JSONDecodeError as exc:
            yield None, json.dumps({"line": number, "error": f"invalid JSON: {exc.msg}"}, ensure_ascii=False)
            continue
        problem = _article_problem(article)
        if problem:
            ident = article.get("id") if isinstance(article, dict) else None
            yield None, json.dumps({"id": ident, "line": number, "error": problem}, ensure_ascii=False)
            continue
        body = article.get("body")
        if body is None:
            body = article.get("summary") or ""
        decision = ruleset.classify(article["title"], body)
        out = {"id": article["id"], **decision.to_json_dict()}
        yield json.dumps(out, ensure_ascii=False), None


def _article_problem(article: Any) -> str | None:
    if not isinstance(article, dict):
        return "not a JSON object"
    if "id" not in article or not isinstance(article["id"], (str, int)) or isinstance(article["id"], bool):
        return "missing or invalid id"
    if not isinstance(article.get("title"), str):
        return "missing or invalid title"
    body = article.get("body", article.get("summary"))
    if body is not None and not isinstance(body, str):
        return "body/summary must be a string"
    if "body" not in article and "summary" not in article:
        return "missing body or summary"
    return None
