"""Evaluating compiled watches on one article: hits, masks, clauses, proximity, the best
watch, its round and topics, and the explanation of the decision."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from monitor.arabic import analysed_prefix
from monitor.relevance.english import may_hold_english_ordinal, parse_round_before
from monitor.relevance.model import Decision, FieldName, Match, WatchConfig
from monitor.relevance.prefilter import _Prefilter
from monitor.relevance.rounds import _bound_span, _parse_round_after, _round_weight
from monitor.relevance.terms import _Cover, _Field, _Hit, _outermost, _TermIndex

# At most this many hits of one term in one field are counted (scored, used to find the
# round, listed in the decision): a text made of one sentence repeated would otherwise list
# thousands of matches. No news article repeats a term this often; it equals the largest
# `max_count`, so a one-list clause still scores its best occurrences. Masks are applied
# before the cap, so a masked mention never reappears because its mask was capped away.
MAX_HITS_PER_TERM = 50


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

    @cached_property
    def mask(self) -> tuple[str, ...]:
        """config.mask as the tuple the article's hit cache is keyed by (made once)."""
        return tuple(self.config.mask)


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

    __slots__ = ("_by_field", "_covers", "_hits", "_masked", "_pending_regex", "fields")

    def __init__(self, title: str, body: str):
        self.fields = (_Field("title", title), _Field("body", body))
        self._hits: dict[str, list[_Hit]] | None = None
        self._pending_regex: set[str] = set()
        self._masked: dict[tuple[str, tuple[str, ...]], list[_Hit]] = {}
        self._covers: dict[tuple[str, ...], dict[str, _Cover] | None] = {}
        self._by_field: dict[tuple[str, tuple[str, ...]], dict[str, list[_Hit]]] = {}

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
        key = (name, mask if type(mask) is tuple else tuple(mask))
        kept = self._masked.get(key)
        if kept is None:
            kept = self._list_hits(index, name)
            if mask and kept and name not in mask:
                covers = self._mask_covers(index, key[1])
                if covers is not None:
                    kept = [h for h in kept if not covers[h.field].reaches(h.first, h.last)]
            kept = self._masked[key] = _capped(kept)
        return kept

    def hits_by_field(self, index: _TermIndex, name: str, mask: Sequence[str]) -> dict[str, list[_Hit]]:
        """hits() split by field, once per article: a list recurs in several clauses."""
        key = (name, mask if type(mask) is tuple else tuple(mask))
        split = self._by_field.get(key)
        if split is None:
            split = self._by_field[key] = {fld.name: [] for fld in self.fields}
            for hit in self.hits(index, name, mask):
                split[hit.field].append(hit)
        return split

    def _mask_covers(self, index: _TermIndex, mask: tuple[str, ...]) -> dict[str, _Cover] | None:
        """Per field, the hits of the mask lists (None without any), built once per article
        and mask rather than for every list masked with it."""
        if mask not in self._covers:
            masks = [m for mask_name in mask for m in self._list_hits(index, mask_name)]
            self._covers[mask] = {fld.name: _Cover([m for m in masks if m.field == fld.name]) for fld in self.fields} if masks else None
        return self._covers[mask]


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


MIN_WORDS_TO_JUDGE = 4  # fewer known words than this: fetch the page rather than guess


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

    def might_concern(self, title: str, text: str) -> bool:
        """Whether an entry known only by its title (and maybe a teaser) could turn out to
        concern a watch once its full text is read: lenient on purpose, since a miss here is
        a missed article. True when the known words hit any list a watch requires, other than
        the lists every watch requires (Kuwait: on a Kuwaiti daily's headlines that is
        everything, and a headline often leaves it out), or when there are too few words to
        judge (a section label for a title). On the dev corpora every relevant article's
        title passes (bench/eval_sources.py measures it)."""
        if not self.watches:
            return False
        if len((title + " " + text).split()) < MIN_WORDS_TO_JUDGE:
            return True
        article = _Article(analysed_prefix(title or ""), analysed_prefix(text or ""))
        shared = set.intersection(*(set(w.config.all) for w in self.watches))
        for watch in self.watches:
            for name in (*watch.config.all, *watch.config.any):
                if name not in shared and article.hits(self.index, name, watch.config.mask):
                    return True
        return False

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
        mask = watch.mask
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
            gained, where, clause_hits = self._score_clause(clause, config, mask, article)
            if gained:
                score += gained
                reasons.append(f"{clause.describe()} {gained:+.1f} ({where})")
                hits.extend(clause_hits)
        return _Evaluation(watch, score >= config.threshold, score, reasons, hits)

    def _score_clause(
        self, clause: _Clause, config: WatchConfig, mask: tuple[str, ...], article: _Article
    ) -> tuple[float, str, list[_Hit]]:
        per_list = []
        for name in clause.lists:  # the rarest list first in the rules makes this stop soonest
            split = article.hits_by_field(self.index, name, mask)
            if not (split["title"] or split["body"]):
                return 0.0, "", []
            per_list.append(split)
        occurrences: list[tuple[float, str, list[_Hit]]] = []
        for fld in article.fields:
            in_field = [split[fld.name] for split in per_list]
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
        mask = evaluation.watch.mask
        binders = [h for name in (config.any or config.all) for h in article.hits(self.index, name, mask)]
        near_binder = {fld.name: _Cover([b for b in binders if b.field == fld.name]) for fld in article.fields}
        anchors = [(name, h) for name in config.round_after for h in article.hits(self.index, name, mask)]
        anchors.sort(key=lambda pair: (pair[1].field != "title", pair[1].first))
        candidates: dict[int, float] = {}
        evidence: dict[int, str] = {}
        order = 0
        fallback: tuple[int, str] | None = None
        title_names_dialogue = any(h.field == "title" for h in binders)
        partner_words: dict[str, set[int]] = {}
        for name, anchor in anchors:
            fld = article.field(anchor.field)
            found = self._round_at(anchor, fld, article, partner_words)
            if found is None:
                continue
            value, first, last = found
            if name not in config.any and not _bound_span(first, last, near_binder[anchor.field], config.round_within):
                # «تأجيل الجولة السابعة» in the lead of an article whose title names the
                # dialogue is about that dialogue too; kept as a fallback only.
                if fallback is None and title_names_dialogue and fld.name == "body" and first < config.lead_words:
                    start, end = fld.original_span(first, last)
                    fallback = (value, f"«{fld.tokens.original[start:end]}» (lead, dialogue named in the title)")
                continue
            order += 1
            candidates[value] = candidates.get(value, 0.0) + _round_weight(fld, first, last, order)
            if value not in evidence:
                start, end = fld.original_span(first, last)
                evidence[value] = f"«{fld.tokens.original[start:end]}» ({fld.name})"
        if candidates:
            best = max(candidates, key=lambda v: candidates[v])
            evaluation.round = best
            evaluation.round_reason = evidence[best]
        elif fallback is not None:
            evaluation.round, evaluation.round_reason = fallback

    def _round_at(
        self, anchor: _Hit, fld: _Field, article: _Article, partner_words: dict[str, set[int]]
    ) -> tuple[int, int, int] | None:
        """(round, first word, last word) of the number a round word or dialogue name
        carries: after it in Arabic («الجولة الخامسة», also "Round 5"), before it in English
        ("the fifth round", "16th JSG", "the second U.S.-Kuwait Strategic Dialogue", where
        the partner's names may stand between)."""
        parsed = _parse_round_after(fld.words, anchor.last + 1)
        if parsed is not None:
            return parsed[0], anchor.first, parsed[1]
        if not may_hold_english_ordinal(fld.words, anchor.first):
            return None
        covered = partner_words.get(fld.name)
        if covered is None:
            covered = partner_words[fld.name] = {
                index
                for evaluation_list in self._partner_lists
                for hit in article.hits(self.index, evaluation_list)
                if hit.field == fld.name
                for index in range(hit.first, hit.last + 1)
            }
        before = parse_round_before(fld.words, anchor.first, covered)
        if before is None:
            return None
        return before[0], before[1], anchor.last

    @cached_property
    def _partner_lists(self) -> tuple[str, ...]:
        """Lists whose words may stand between an English ordinal and what it numbers: every
        watch's required lists (the countries)."""
        return tuple(dict.fromkeys(name for watch in self.watches for name in watch.config.all))

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
