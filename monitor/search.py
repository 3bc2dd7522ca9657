"""Archive search, the pure part: what a query means and how a text is indexed for it.

The database indexes each article's title and text as *search words*, never the raw text,
and a query is turned into search words by the same function, so every spelling the
relevance rules treat as one word is one word here too: letter variants, diacritics and
tatweel (monitor.arabic.normalize), the article and the clitics glued before it («للحوار»,
«والإستراتيجي» are indexed as «حوار», «استراتيجي»), English case and plurals ("Talks" is
"talk"). A bare single-letter clitic (و ف ب ل ك without the article) cannot be told from a
word's own first letter («وزير»), so the index keeps such words whole and a query word asks
for its clitic forms as alternatives instead (`Term.alternatives`).

Nothing of the user's text reaches the database's query syntax: a query is parsed here into
terms of word characters only, and each engine quotes or binds them (monitor.store.search).
Changing `search_words` changes what is indexed: existing archives then need the index
rebuilt by a migration (monitor.store.search.rebuild_index).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from monitor.arabic import analysed_prefix, normalized_words, tokenize

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "MAX_WORD_CHARS",
    "QueryError",
    "SearchHit",
    "SearchQuery",
    "SearchRequest",
    "Term",
    "index_text",
    "mark_snippet",
    "parse_query",
    "request_from_args",
    "result_record",
    "search_request",
    "search_word",
    "search_words",
    "write_results",
]

MAX_QUERY_CHARS = 500
MAX_TERMS = 12  # words and phrases; each Arabic word asks for up to a dozen clitic forms
MAX_WORD_CHARS = 40  # the longest words of news text are ~20 letters; more is not a word
SNIPPET_CHARS = 240


class QueryError(ValueError):
    """A query that cannot be searched, said in one line that tells what to write instead."""


# -- words ---------------------------------------------------------------------------------

# The article with what may precede it: a conjunction (و ف), a preposition (ب ك ل), or the
# two lams of ل + ال. Applied to normalised text (أ إ آ are ا already).
_ARTICLE = re.compile("^(?:[وف]?[بكل]?ال|[وف]?لل)")
_MIN_STEM = 2  # «الى» stays «الي»: what is left after a prefix must be a word
_SINGLE_CLITICS = ("و", "ف", "ب", "ل", "ك", "وب", "ول", "وك", "فب", "فل", "فك")
_ARABIC_LETTER = re.compile("[\u0621-\u064a]")
_ENGLISH_PLURAL = re.compile("^[a-z]{3,}s$")

# Words that say nothing alone, dropped from a query that has other words (a phrase keeps
# them): they are in most articles, and asking for them only costs time.
_STOP_WORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "of", "on", "or", "that", "the", "to", "was", "were", "with", "في", "من", "على", "الي", "عن", "ان", "او", "مع", "هذا", "هذه", "التي", "الذي", "ما", "لا", "قد", "ثم", "كما"]
)


def search_word(word: str) -> str:
    """The indexed form of one normalised word (monitor.arabic.normalized_words)."""
    if _ARABIC_LETTER.match(word):
        match = _ARTICLE.match(word)
        if match and len(word) - match.end() >= _MIN_STEM:
            return word[match.end():]
        return word
    if _ENGLISH_PLURAL.match(word) and not word.endswith(("ss", "us", "is")):
        if word.endswith("ies") and len(word) > 4:
            return word[:-3] + "y"
        if word.endswith(("ches", "shes", "xes", "sses")):
            return word[:-2]
        return word[:-1]
    return word


_KNOWN: dict[str, str] = {}  # word -> search word: news vocabulary repeats, so most are known
_KNOWN_LIMIT = 500_000


def search_words(text: str) -> list[str]:
    """The search words of a text, in order (positions matter for phrases)."""
    words = normalized_words(text)
    known = _KNOWN
    found = list(map(known.get, words))
    if None in found:
        if len(known) > _KNOWN_LIMIT:
            known.clear()  # a crude bound; the vocabulary of news refills it quickly
        for index, value in enumerate(found):
            if value is None:
                found[index] = known.setdefault(words[index], search_word(words[index]))
    return found  # type: ignore[return-value]


def index_text(text: str | None) -> str:
    """What the index stores for a field: its search words, space-separated, for the part of
    the field the rules analyse (monitor.arabic.ANALYSED_CHARS)."""
    return " ".join(search_words(analysed_prefix(text or "")))


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word (one search word) or a phrase (several, adjacent and in order)."""

    words: tuple[str, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1

    def alternatives(self) -> tuple[tuple[str, ...], ...]:
        """The word sequences that satisfy the term: as given, and with a single-letter
        clitic on its first word (the index keeps «وحوار» whole; see the module docstring)."""
        first = self.words[0]
        forms = [self.words]
        if _ARABIC_LETTER.match(first) and len(first) >= _MIN_STEM:
            forms.extend((prefix + first, *self.words[1:]) for prefix in _SINGLE_CLITICS)
        return tuple(forms)


@dataclass(frozen=True)
class SearchQuery:
    """Every term must match (words anywhere, phrases as written)."""

    text: str
    terms: tuple[Term, ...]

    def all_words(self) -> frozenset[str]:
        return frozenset(word for term in self.terms for form in term.alternatives() for word in form)


_OPERATOR_WORDS = ("AND", "OR", "NOT", "NEAR")
_OPERATOR_SYNTAX = re.compile(r"[*^{}()]|\w:\S|^\s*\w+:\s*$|\w:$")
_HOW = 'write the words to find (all must appear), and "a phrase" in double quotes'


def parse_query(text: str) -> SearchQuery:
    """The terms of a query as users write it: words, and phrases in double quotes (« »
    and “ ” too). Raises QueryError for what cannot be searched."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    unified = re.sub("[«»“”„]", '"', text)
    if unified.count('"') % 2:
        raise QueryError(f'the query has an unclosed quote: {_HOW}')
    _reject_operators(unified)
    terms: list[Term] = []
    for index, part in enumerate(unified.split('"')):
        words = search_words(part)
        for word in words:
            if len(word) > MAX_WORD_CHARS:
                raise QueryError(f"{word[:12]}… ({len(word)} letters) is not a word to search for")
        if index % 2:  # inside quotes
            if words:
                terms.append(Term(tuple(words)))
        else:
            terms.extend(Term((word,)) for word in words)
    terms = _without_stop_words(_unique(terms))
    if not terms:
        raise QueryError(f"the query has no words to search for: {_HOW}")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"the query has {len(terms)} words and phrases; at most {MAX_TERMS}")
    return SearchQuery(text=text, terms=tuple(terms))


def _reject_operators(text: str) -> None:
    outside = " ".join(text.split('"')[0::2])
    for word in outside.split():
        if word in _OPERATOR_WORDS:
            raise QueryError(f"{word} is search-engine syntax, not supported here: {_HOW}")
    found = _OPERATOR_SYNTAX.search(outside)
    if found:
        raise QueryError(f"{found.group().strip()!r} is search-engine syntax, not supported here: {_HOW}")


def _unique(terms: list[Term]) -> list[Term]:
    return list(dict.fromkeys(terms))


def _without_stop_words(terms: list[Term]) -> list[Term]:
    kept = [term for term in terms if term.is_phrase or term.words[0] not in _STOP_WORDS]
    return kept or terms


# -- snippets ------------------------------------------------------------------------------


def mark_snippet(text: str, query: SearchQuery, width: int = SNIPPET_CHARS, marks: tuple[str, str] = ("[", "]")) -> str:
    """A passage of `text` as published, around its densest cluster of matched words, with
    each matched word between `marks`. The part the index covers is read, once (linear)."""
    text = analysed_prefix(text)
    wanted = query.all_words()
    spans = [(token.start, token.end) for token in tokenize(text) if search_word(token.norm) in wanted]
    if not spans:
        return _clip(text, 0, width)
    start = _densest_window(spans, width)
    end = min(len(text), start + width)
    pieces, position = [], start
    for word_start, word_end in spans:
        if word_start < start or word_end > end:
            continue
        pieces.append(text[position:word_start] + marks[0] + text[word_start:word_end] + marks[1])
        position = word_end
    pieces.append(text[position:end])
    body = " ".join("".join(pieces).split())
    return ("… " if start > 0 else "") + body + (" …" if end < len(text) else "")


def _densest_window(spans: list[tuple[int, int]], width: int) -> int:
    """The start of the `width`-character window holding the most matched words (two
    pointers: linear), backed up a little so the first match has some context."""
    best, best_count, left = spans[0][0], 0, 0
    for right, (_, end) in enumerate(spans):
        while end - spans[left][0] > width:
            left += 1
        if right - left + 1 > best_count:
            best, best_count = spans[left][0], right - left + 1
    return max(0, best - width // 6)


def _clip(text: str, start: int, width: int) -> str:
    body = " ".join(text[start:start + width].split())
    return body + (" …" if len(text) > start + width else "")


# -- a search request and its results ----------------------------------------------------------

MAX_LIMIT = 1000


@dataclass(frozen=True)
class SearchRequest:
    """What `monitor search` asks, checked: the query, the filters, how many results."""

    query: SearchQuery
    since: datetime | None = None  # published at or after this aware UTC time
    flagged: bool = False
    watch: str | None = None  # implies flagged: only flagged articles have a watch
    limit: int = 20


@dataclass(frozen=True)
class SearchHit:
    """One matching article as a result shows it (the snippet is made from `summary`)."""

    id: int
    url: str | None
    title: str
    summary: str
    source: str
    feed_id: str
    published: datetime
    watch: str | None
    flagged: bool
    story: int | None
    score: float
    in_title: bool


def search_request(
    query: str, *, since: str | None, flagged: bool, watch: str | None, limit: int, known_watches: Sequence[str], now: datetime
) -> SearchRequest:
    """The command line's options checked (QueryError names what is wrong) before any
    database is opened."""
    from monitor.export import ExportError, parse_since

    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"--limit: {limit} is not between 1 and {MAX_LIMIT}")
    if watch is not None and watch not in known_watches:
        raise QueryError(f"--watch: unknown watch {watch!r} (known: {', '.join(known_watches) or 'none configured'})")
    try:
        since_at = parse_since(since, now) if since is not None else None
    except ExportError as exc:
        raise QueryError(str(exc)) from None
    return SearchRequest(parse_query(query), since_at, flagged or watch is not None, watch, limit)


def request_from_args(args: object, known_watches: Sequence[str]) -> SearchRequest:
    """`monitor search`'s argparse namespace (query, since, flagged, watch, limit) checked."""
    from monitor.models import utcnow

    return search_request(
        args.query, since=args.since, flagged=args.flagged, watch=args.watch, limit=args.limit,  # type: ignore[attr-defined]
        known_watches=known_watches, now=utcnow(),
    )


def result_record(hit: SearchHit, query: SearchQuery) -> dict[str, object]:
    """The `--json` contract's object for one result (keys in the documented order)."""
    from monitor.export import iso_utc

    return {
        "id": hit.id,
        "url": hit.url,
        "title": hit.title,
        "source": hit.source,
        "feed_id": hit.feed_id,
        "published": iso_utc(hit.published),
        "watch": hit.watch,
        "flagged": hit.flagged,
        "story": hit.story,
        "score": hit.score,
        "in_title": hit.in_title,
        "snippet": mark_snippet(hit.summary, query) if hit.summary.strip() else mark_snippet(hit.title, query),
    }


def write_results(hits: Sequence[SearchHit], query: SearchQuery, out: IO[str], *, as_json: bool) -> None:
    if as_json:
        for hit in hits:
            out.write(json.dumps(result_record(hit, query), ensure_ascii=False) + "\n")
        return
    for rank, hit in enumerate(hits, start=1):
        record = result_record(hit, query)
        facts = [hit.source, hit.published.strftime("%Y-%m-%d %H:%M")]
        facts += [f"watch {hit.watch}"] if hit.watch else []
        facts += [f"story {hit.story}"] if hit.story is not None else []
        out.write(f"{rank:>3}. {' '.join(hit.title.split())}\n     {' · '.join(facts)}\n     {record['snippet']}\n")
        out.write(f"     {hit.url or '(no link)'}\n")
    if not hits:
        out.write("no articles match\n")
