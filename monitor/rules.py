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
import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.arabic import ORDINALS, NormalizedText, normalize, normalize_aligned

__all__ = [
    "ClauseConfig",
    "Decision",
    "Match",
    "RuleSet",
    "RulesError",
    "WatchConfig",
    "classify_lines",
    "compile_rules",
]

# Bump when matching semantics change, so stored decisions are recomputed.
ENGINE_VERSION = "1"

FieldName = Literal["title", "body"]


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
# A term is matched on normalised text as a sequence of words. Each Arabic word may carry the
# clitics news text glues to it (و ف ب ك ل, the article) and nisba/plural/pronoun suffixes, so
# «كويت» finds الكويت، والكويتي، للكويتيين. A word written with the article («البلاد») requires
# it, which keeps «بلاده» (his country, often the partner's) from matching «البلاد».

_ARABIC_LETTER = re.compile(r"[\u0621-\u064a]")
_CONJ = "(?:[وف])?"
_PREP_ART = "(?:[بك]?ال|لل)"
_PREP = "(?:[بلك])"
_SUFFIX = "(?:يتين|يتان|يين|يون|يات|يه|ي|ين|ون|ان|ات|هما|هم|هن|ها|ه|كما|كم|ك|نا)?"
_ART_SUFFIX = "(?:يين|يون|يات|يتين|يتان|يه|ي|ين|ون|ان|ات)?"
_TAA_SUFFIX = "(?:ه|ت(?:هما|هم|هن|ها|ه|ي|كم|ك|نا|ين|ان)|ات|تين|تان|يه|ي)"
_GAP = r"[^\w.!?؟:،,;؛\n]{1,6}"  # between the words of a phrase: spaces, hyphens, quotes
_WORD_START = r"(?<!\w)"
_WORD_END = r"(?!\w)"
_ARTICLE_WORD = re.compile(r"^(?:ال)(..+)$")


def _word_pattern(word: str) -> str:
    if not _ARABIC_LETTER.search(word):
        return re.escape(word)
    has_article = _ARTICLE_WORD.match(word) is not None and len(word) >= 4
    core = word[2:] if has_article else word
    if core.endswith("ه") and len(core) >= 3:
        body = re.escape(core[:-1]) + _TAA_SUFFIX
    else:
        body = re.escape(core) + (_ART_SUFFIX if has_article else _SUFFIX)
    if has_article:
        # "(?<=\w)ال" also finds the word glued to the previous one (missing_spaces noise).
        return f"(?:{_CONJ}{_PREP_ART}|(?<=[^\\W\\d_])ال){body}"
    return f"(?:{_CONJ}(?:{_PREP_ART}|{_PREP})?){body}"


def term_pattern(term: str) -> str:
    """Regex (on normalised text) for one term as written in the rules."""
    if term.startswith("re:"):
        return term[3:]
    words = normalize(term).split()
    if not words:
        raise ValueError("empty term")
    inner = _GAP.join(_word_pattern(w) for w in words)
    return f"(?:(?<!\\w)|(?<=[^\\W\\d_])(?=ال)){inner}{_WORD_END}" if _ARABIC_LETTER.search(words[0]) else f"{_WORD_START}{inner}{_WORD_END}"


@dataclass(frozen=True, slots=True)
class _Hit:
    """A match on normalised text: term list, term, field and normalised span."""

    list_name: str
    term: str
    field: FieldName
    start: int
    end: int


@dataclass
class _Field:
    """One article field, normalised, with lazily computed word positions."""

    name: FieldName
    original: str
    norm: NormalizedText
    _word_starts: list[int] | None = None

    def word_index(self, position: int) -> int:
        if self._word_starts is None:
            self._word_starts = [m.start() for m in _WORD_RE.finditer(self.norm.text)]
        return bisect_right(self._word_starts, position) - 1

    def words_after(self, position: int, limit: int) -> list[re.Match[str]]:
        found = []
        for match in _WORD_RE.finditer(self.norm.text, position):
            found.append(match)
            if len(found) >= limit:
                break
        return found


_WORD_RE = re.compile(r"\w+")


class _TermIndex:
    """All terms of all lists in one regex per list; lists share nothing at match time."""

    def __init__(self, lists: dict[str, list[str]], key_prefix: str):
        self.patterns: dict[str, re.Pattern[str]] = {}
        self.terms: dict[str, list[str]] = {}
        for name, terms in lists.items():
            if not terms:
                raise RulesError(f"{key_prefix}.{name}", "empty term list")
            branches = []
            seen: set[str] = set()
            for index, term in enumerate(terms):
                key = f"{key_prefix}.{name}[{index}]"
                if not isinstance(term, str) or not term.strip():
                    raise RulesError(key, "empty term")
                try:
                    pattern = term_pattern(term)
                    re.compile(pattern)
                except (re.error, ValueError) as exc:
                    raise RulesError(key, f"bad term {term!r}: {exc}") from None
                if pattern in seen:
                    raise RulesError(key, f"duplicate term {term!r} (same as an earlier one once normalised)")
                seen.add(pattern)
                branches.append(f"(?P<t{index}>{pattern})")
            self.terms[name] = list(terms)
            # Longer alternatives first would not help: the regex engine takes the first
            # branch that matches, so order the branches by length of the written term.
            order = sorted(range(len(branches)), key=lambda i: -len(normalize(terms[i])))
            self.patterns[name] = re.compile("|".join(branches[i] for i in order))

    def find(self, name: str, fields: Sequence[_Field]) -> list[_Hit]:
        pattern = self.patterns[name]
        terms = self.terms[name]
        hits = []
        for fld in fields:
            for match in pattern.finditer(fld.norm.text):
                index = int(match.lastgroup[1:]) if match.lastgroup else 0
                hits.append(_Hit(name, terms[index], fld.name, match.start(), match.end()))
        return hits


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


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules: classify articles and say why."""

    watches: tuple[_Watch, ...]
    index: _TermIndex = field(repr=False)
    topic_index: _TermIndex = field(repr=False)
    fingerprint: str
    prefilter: tuple[tuple[re.Pattern[str], ...], ...] | None = field(repr=False, default=None)

    def classify(self, title: str, body: str) -> Decision:
        """Decide one article: flagged or not, best watch, score, round, topics, matches."""
        title = title or ""
        body = body or ""
        if not self.watches or (self.prefilter is not None and not _prefilter_pass(self.prefilter, title, body)):
            return Decision(False, None, 0.0, self._default_threshold(), None, (), (), "no watch term (prefilter)")
        fields = (
            _Field("title", title, normalize_aligned(title)),
            _Field("body", body, normalize_aligned(body)),
        )
        cache: dict[str, list[_Hit]] = {}
        evaluations = [self._evaluate(watch, fields, cache) for watch in self.watches]
        passed = [e for e in evaluations if e.passed]
        best = max(passed or evaluations, key=lambda e: e.score)
        flagged = bool(passed)
        if flagged:
            self._find_round(best, fields, cache)
        topics = self._topics(fields) if flagged else ()
        matches = _to_matches(best.hits, fields) if (flagged or best.hits) else ()
        explanation = _explain(best, evaluations, flagged)
        return Decision(
            flagged=flagged,
            watch=best.watch.id if flagged else None,
            score=best.score,
            threshold=best.watch.config.threshold,
            round=best.round if flagged else None,
            topics=topics,
            matches=matches,
            explanation=explanation,
        )

    def _default_threshold(self) -> float:
        return self.watches[0].config.threshold if self.watches else 0.0

    def _hits(self, name: str, fields: Sequence[_Field], cache: dict[str, list[_Hit]], mask: tuple[str, ...] = ()) -> list[_Hit]:
        """Hits of a term list, minus those inside a hit of a `mask` list (another party's
        «الحوار الاستراتيجي القطري» is not a mention of this watch's dialogue)."""
        if name not in cache:
            cache[name] = self.index.find(name, fields)
        hits = cache[name]
        if not mask or not hits or name in mask:
            return hits
        masks = [m for mask_name in mask for m in self._hits(mask_name, fields, cache)]
        if not masks:
            return hits
        return [h for h in hits if not any(m.field == h.field and m.start <= h.start and h.end <= m.end for m in masks)]

    def _evaluate(self, watch: _Watch, fields: Sequence[_Field], cache: dict[str, list[_Hit]]) -> _Evaluation:
        config = watch.config
        mask = tuple(config.mask)
        reasons: list[str] = []
        hits: list[_Hit] = []
        for name in config.all:
            found = self._hits(name, fields, cache, mask)
            if not found:
                return _Evaluation(watch, False, 0.0, [f"no {name}"], hits)
            hits.extend(found)
        if config.any:
            found_any = [h for name in config.any for h in self._hits(name, fields, cache, mask)]
            if not found_any:
                return _Evaluation(watch, False, 0.0, ["none of " + "/".join(config.any)], hits)
            hits.extend(found_any)
        for name in config.none:
            vetoes = self._hits(name, fields, cache, mask)
            if vetoes:
                return _Evaluation(watch, False, 0.0, [f"excluded by {name} «{vetoes[0].term}»"], hits + vetoes)
        score = 0.0
        for clause in watch.clauses:
            gained, where, clause_hits = self._score_clause(clause, watch, fields, cache)
            if gained:
                score += gained
                reasons.append(f"{clause.describe()} {gained:+.1f} ({where})")
                hits.extend(clause_hits)
        passed = score >= config.threshold
        return _Evaluation(watch, passed, score, reasons, hits)

    def _score_clause(
        self, clause: _Clause, watch: _Watch, fields: Sequence[_Field], cache: dict[str, list[_Hit]]
    ) -> tuple[float, str, list[_Hit]]:
        occurrences: list[tuple[float, str, list[_Hit]]] = []
        per_list = [self._hits(name, fields, cache, tuple(watch.config.mask)) for name in clause.lists]
        if any(not hits for hits in per_list):
            return 0.0, "", []
        for fld in fields:
            in_field = [[h for h in hits if h.field == fld.name] for hits in per_list]
            if any(not hits for hits in in_field):
                continue
            if len(in_field) == 1:
                for hit in in_field[0]:
                    multiplier, where = _position_weight(watch.config, fld, hit.start)
                    occurrences.append((multiplier, where, [hit]))
            else:
                occurrences.extend(_proximity_occurrences(watch.config, fld, in_field, clause.within))
        if not occurrences:
            return 0.0, "", []
        occurrences.sort(key=lambda o: -o[0])
        top = occurrences[: clause.max_count]
        gained = clause.weight * sum(o[0] for o in top)
        where = ", ".join(o[1] for o in top)
        return gained, where, [h for o in top for h in o[2]]

    def _find_round(self, evaluation: _Evaluation, fields: Sequence[_Field], cache: dict[str, list[_Hit]]) -> None:
        config = evaluation.watch.config
        if not config.round_after:
            return
        mask = tuple(config.mask)
        binders = [h for name in (config.any or config.all) for h in self._hits(name, fields, cache, mask)]
        candidates: dict[int, float] = {}
        evidence: dict[int, str] = {}
        order = 0
        anchors = [(name, h) for name in config.round_after for h in self._hits(name, fields, cache, mask)]
        anchors.sort(key=lambda pair: (pair[1].field != "title", pair[1].start))
        for name, anchor in anchors:
            fld = fields[0] if anchor.field == "title" else fields[1]
            parsed = _parse_round_at(fld, anchor.end)
            if parsed is None:
                continue
            value, value_end = parsed
            if not _bound_to_dialogue(anchor, value_end, fld, binders, config.round_within, name in config.any):
                continue
            order += 1
            text = fld.norm.text
            weight = 10.0 if fld.name == "title" else 3.0 - min(order, 20) * 0.05
            before = text[max(0, anchor.start - 30):anchor.start]
            if _CURRENT_BEFORE.search(before):
                weight += 2.0
            if _FUTURE_BEFORE.search(before):
                weight -= 2.0
            if _PAST_BEFORE.search(before):
                weight -= 2.5
            if _NEXT_AFTER.match(text[value_end:value_end + 30]):
                weight -= 2.5
            candidates[value] = candidates.get(value, 0.0) + weight
            if value not in evidence:
                start, end = fld.norm.original_span(anchor.start, value_end)
                evidence[value] = f"«{fld.original[start:end]}» ({fld.name})"
        if candidates:
            best = max(candidates, key=lambda v: candidates[v])
            evaluation.round = best
            evaluation.round_reason = evidence[best]

    def _topics(self, fields: Sequence[_Field]) -> tuple[str, ...]:
        found = []
        for name in self.topic_index.patterns:
            if self.topic_index.find(name, fields):
                found.append(name)
        return tuple(found)


def _position_weight(config: WatchConfig, fld: _Field, position: int) -> tuple[float, str]:
    if fld.name == "title":
        return config.title_weight, "title"
    if config.lead_words and fld.word_index(position) < config.lead_words:
        return config.lead_weight, "lead"
    return 1.0, "body"


def _proximity_occurrences(
    config: WatchConfig, fld: _Field, per_list: list[list[_Hit]], within: int
) -> list[tuple[float, str, list[_Hit]]]:
    """Each hit of the first list that has a hit of every other list within `within` words."""
    positions = [[(fld.word_index(h.start), h) for h in hits] for hits in per_list]
    found = []
    for anchor_word, anchor in positions[0]:
        group = [anchor]
        for others in positions[1:]:
            near = [(abs(word - anchor_word), h) for word, h in others if abs(word - anchor_word) <= within and h is not anchor]
            if not near:
                break
            group.append(min(near, key=lambda pair: pair[0])[1])
        else:
            multiplier, where = _position_weight(config, fld, anchor.start)
            found.append((multiplier, where, group))
    return found


# -- round / session number ------------------------------------------------------------------
# "the round the article is about": an ordinal or number right after a round word («الجولة
# الثالثة», «دورتها الـ15», «الاجتماع الوزاري التاسع عشر») or after the dialogue's own name
# («مجموعة التوجيه المشتركة الكويتية البريطانية السادسة عشرة»), bound to a dialogue term within
# a few words. Titles win; in the body a round «within» (ضمن) counts more and a round named as
# past («بعد أن عقدت») or next («المقبلة») less, because those are the mentions in passing.

_MAX_ROUND = 60
_SKIPPABLE = re.compile(r"^(?:ال\w+(?:ي|يه|يين)|ال?مشترك[هت]?|ال?وزاري[هت]?|ال?عاد[يه]+|ال?رسمي[هت]?|ال|من)$")
_CURRENT_BEFORE = re.compile(r"(?:ضمن|خلال|فعاليات|اعمال|انطلاق|ختام|اختتام)\W*$")
_FUTURE_BEFORE = re.compile(r"(?:علي|ان)\W+(?:عقد|تلتئم|تعقد|تنعقد|موعد)(?:\W+\w+)?\W*$")
_PAST_BEFORE = re.compile(r"(?:بعد\W+ان\W+عقدت|عقدت|سبقت|سابقه|الماضيه)\W*$")
_NEXT_AFTER = re.compile(r"^\W*(?:\w+\W+)?(?:المقبله|القادمه|التاليه|المرتقبه|المنتظره)")


def _parse_round_at(fld: _Field, position: int) -> tuple[int, int] | None:
    """Number of the ordinal starting at or just after `position` (skipping adjectives)."""
    words = fld.words_after(position, 8)
    index = 0
    skipped = 0
    while index < len(words):
        token = words[index].group()
        digits = token[2:] if token.startswith("ال") and token[2:].isdigit() else token
        if digits.isdigit():
            value = int(digits)
            return (value, words[index].end()) if 0 < value <= _MAX_ROUND else None
        for width in (3, 2, 1):
            phrase = [_strip_clitics(w.group()) for w in words[index:index + width]]
            if len(phrase) == width:
                value = ORDINALS.get(" ".join(phrase))
                if value is not None:
                    return value, words[index + width - 1].end()
        if skipped >= 3 or not _SKIPPABLE.match(token):
            return None
        skipped += 1
        index += 1
    return None


def _strip_clitics(word: str) -> str:
    for prefix in ("وال", "بال", "فال", "لل", "ال"):
        if word.startswith(prefix) and word[len(prefix):] in ORDINALS:
            return word[len(prefix):]
        if word.startswith(prefix) and len(word) - len(prefix) >= 3 and word[len(prefix):] in _TENS_WORDS:
            return word[len(prefix):]
    return word


_TENS_WORDS = frozenset(w for key in ORDINALS for w in key.split() if w.endswith(("ون", "ين")))


def _bound_to_dialogue(anchor: _Hit, value_end: int, fld: _Field, binders: list[_Hit], within: int, anchor_is_binder: bool) -> bool:
    if anchor_is_binder:
        return True
    first = fld.word_index(anchor.start)
    last = fld.word_index(value_end - 1)
    for hit in binders:
        if hit.field != fld.name:
            continue
        hit_first, hit_last = fld.word_index(hit.start), fld.word_index(hit.end - 1)
        if hit_first - within <= last and first <= hit_last + within:
            return True
    return False


# -- output ---------------------------------------------------------------------------------------


def _to_matches(hits: Iterable[_Hit], fields: Sequence[_Field]) -> tuple[Match, ...]:
    by_field = {f.name: f for f in fields}
    seen: set[tuple[str, int, int]] = set()
    matches = []
    for hit in hits:
        key = (hit.field, hit.start, hit.end)
        if key in seen:
            continue
        seen.add(key)
        start, end = by_field[hit.field].norm.original_span(hit.start, hit.end)
        matches.append(Match(hit.term, hit.field, start, end))
    matches.sort(key=lambda m: (m.field != "title", m.start, m.end))
    return tuple(matches)


def _explain(best: _Evaluation, evaluations: Sequence[_Evaluation], flagged: bool) -> str:
    head = f"{best.watch.id}: score {best.score:.1f} {'>=' if flagged else '<'} {best.watch.config.threshold:g}"
    parts = [head]
    if best.reasons:
        parts.append("; ".join(best.reasons))
    if flagged and best.round is not None:
        parts.append(f"round {best.round} from {best.round_reason}")
    others = [f"{e.watch.id} {e.score:.1f}" + ("" if e.reasons and e.score else f" ({'; '.join(e.reasons)})") for e in evaluations if e is not best]
    if others:
        parts.append("others: " + ", ".join(others))
    return " | ".join(parts)


# -- prefilter -----------------------------------------------------------------------------------
# Most of a feed is not about Kuwait at all. Normalising 2 KB costs more than the budget per
# article, so a necessary condition is checked on the raw text first: every watch requires
# its `all` lists, so an article none of whose watches can have them all is rejected. The raw
# pattern tolerates the spellings normalisation would fold (letter variants, diacritics,
# tatweel, zero-width marks); text with entities or presentation forms skips the prefilter.

_VARIANTS = {
    "ا": "اأإآٱ", "ي": "يىیېۍێ", "ه": "هةۀھەہۃ", "ك": "كکڪ",
    **{str(d): f"{d}{chr(0x0660 + d)}{chr(0x06F0 + d)}" for d in range(10)},
}
_NOISE = "[\u064b-\u065f\u0670\u0640\u200b-\u200f\u202a-\u202e\u2066-\u2069\u00ad\u061c\u0610-\u061a\u06d6-\u06ed]*"
_UNSAFE_RAW = re.compile("[&\ufb00-\ufdff\ufe70-\ufeff\uff00-\uffef]")


def _raw_char(char: str) -> str:
    variants = _VARIANTS.get(char)
    if variants:
        return "[" + variants + "]"
    if char.isascii() and char.isalpha():
        return "[" + char.lower() + char.upper() + "]"
    return re.escape(char)


def _raw_core(term: str) -> str | None:
    """The longest word of the term (minus the article), tolerant to raw-text noise."""
    if term.startswith("re:"):
        return None
    words = normalize(term).split()
    if not words:
        return None
    word = max(words, key=len)
    if word.startswith("ال") and len(word) >= 4:
        word = word[2:]
    if word.endswith("ه"):
        word = word[:-1]
    if len(word) < 2:
        return None
    return _NOISE.join(_raw_char(c) for c in word)


def _raw_list_pattern(terms: list[str]) -> re.Pattern[str] | None:
    cores = [_raw_core(t) for t in terms]
    if any(c is None for c in cores):
        return None
    return re.compile("|".join(sorted(set(cores), key=len, reverse=True)))  # type: ignore[arg-type]


def _build_prefilter(watches: Sequence[WatchConfig], lists: dict[str, list[str]]) -> tuple[tuple[re.Pattern[str], ...], ...] | None:
    """Per watch, raw patterns for its required lists: an article passes when, for some watch,
    every pattern is found. None (no prefilter) when a watch's requirements are not derivable."""
    per_watch = []
    for watch in watches:
        patterns = []
        for name in watch.all:
            pattern = _raw_list_pattern(lists[name])
            if pattern is not None:
                patterns.append(pattern)
        if watch.any:
            pattern = _raw_list_pattern([t for name in watch.any for t in lists[name]])
            if pattern is not None:
                patterns.append(pattern)
        if not patterns:
            return None
        per_watch.append(tuple(patterns))
    return tuple(per_watch) if per_watch else None


def _prefilter_pass(prefilter: tuple[tuple[re.Pattern[str], ...], ...], title: str, body: str) -> bool:
    if _UNSAFE_RAW.search(title) or _UNSAFE_RAW.search(body):
        return True
    seen: dict[re.Pattern[str], bool] = {}
    for patterns in prefilter:
        for pattern in patterns:
            found = seen.get(pattern)
            if found is None:
                found = seen[pattern] = bool(pattern.search(title) or pattern.search(body))
            if not found:
                break
        else:
            return True
    return False


# -- compile ------------------------------------------------------------------------------------


def compile_rules(
    terms: dict[str, list[str]], watches: Sequence[WatchConfig], topics: dict[str, list[str]]
) -> RuleSet:
    """Validate and compile the rule sections; raise RulesError with the key path on problems."""
    terms = dict(terms or {})
    topics = dict(topics or {})
    watches = [w if isinstance(w, WatchConfig) else _validate_watch(w, i) for i, w in enumerate(watches or [])]
    index = _TermIndex(terms, "terms")
    topic_index = _TermIndex(topics, "topics")
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
