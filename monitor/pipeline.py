"""The CPU-bound steps of a poll, run in worker processes: parse a source's document into
entries, extract article pages, classify, and compute dedup features.

Everything here is pure (bytes in, candidates out) and top-level, so a ProcessPoolExecutor
can run it; `init_worker` gives each worker the compiled rules once, instead of pickling them
with every task. The poller (monitor.poll) does the I/O around these calls.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from monitor import dedup
from monitor.dedup import DedupConfig
from monitor.lifetime import exit_with
from monitor.relevance import Decision, RuleSet
from monitor.sources.document import SourceSpec, read_document
from monitor.sources.pages import PageFetch
from monitor.sources.parse import ParsedEntry
from monitor.candidate import Candidate, decision_json

# An entry with less text than this is "a title, one sentence": too little to decide on, so
# its article page is worth fetching when the feed asks for full text.
SHORT_TEXT = 400

_worker_rules: RuleSet | None = None
_worker_dedup: DedupConfig | None = None


@dataclass(frozen=True)
class ProcessedFeed:
    """A source document's unseen entries: ready to store (`candidates`), or waiting for
    their article page (`pending`); a sitemap index yields the sitemaps it lists instead."""

    candidates: tuple[Candidate, ...]
    entries: int
    warnings: tuple[str, ...]
    error: str | None
    pending: tuple[ParsedEntry, ...] = ()
    sitemaps: tuple[str, ...] = ()


def init_worker(rules: RuleSet, dedup_config: DedupConfig, daemon_pid: int | None = None) -> None:
    global _worker_rules, _worker_dedup
    _worker_rules, _worker_dedup = rules, dedup_config
    if daemon_pid is not None:
        exit_with(daemon_pid)
    settle_garbage_collector()


_settled_for: list[object] = []  # the config the main process last settled the collector for


def settle_garbage_collector(config: object | None = None) -> None:
    """What is alive once a poller or worker has started (config, compiled rules, modules)
    lives as long as it does: freezing it keeps every full collection from rescanning it.
    A feed allocates tens of thousands of short-lived, acyclic objects (entries, strings,
    rows) that reference counting frees; the default gen-0 threshold of 700 made the
    collector run hundreds of times per feed for nothing (poll_bench: ~1.4 s of the main
    process's 7.7 s in a cold pass). A poller passes its config: another poller on the same
    config (`monitor poll` passes run one after another) finds the collector settled, and
    skips the full collection (~0.1 s, a tenth of a warm pass)."""
    if config is not None and _settled_for and _settled_for[0] is config:
        return
    _settled_for[:] = [config] if config is not None else []
    gc.unfreeze()  # a config reload starts a new poller: what the old one froze may be garbage now
    gc.collect()  # and garbage must not be frozen with the rest
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def ready() -> None:
    """A no-op task: submitting it starts a worker before there is work (monitor.poll)."""


def _configured() -> tuple[RuleSet, DedupConfig]:
    assert _worker_rules is not None and _worker_dedup is not None, "init_worker() was not called"
    return _worker_rules, _worker_dedup


def process_feed_body(
    body: bytes,
    headers: dict[str, str],
    base_url: str,
    fetched_at: datetime,
    language: str | None,
    known_guids: frozenset[str],
    spec: SourceSpec = SourceSpec(),
) -> ProcessedFeed:
    """Parse a source document and prepare its unseen entries; entries already stored cost
    no classification (a warm feed with new bytes usually carries one or two new items)."""
    rules, dedup_config = _configured()
    document = read_document(spec, body, headers, base_url=base_url, fetched_at=fetched_at, language=language)
    if document.error is not None:
        return ProcessedFeed(candidates=(), entries=0, warnings=document.warnings, error=document.error)
    candidates, pending = [], []
    seen: set[str] = set()
    for entry in document.entries:
        if entry.guid in known_guids or entry.guid in seen:
            continue
        seen.add(entry.guid)
        if wants_page(entry, spec, rules):
            pending.append(entry)
        else:
            candidates.append(prepare_entry(entry, rules, dedup_config, source_type=spec.type))
    return ProcessedFeed(
        candidates=tuple(candidates),
        entries=len(document.entries),
        warnings=document.warnings,
        error=None,
        pending=tuple(pending),
        sitemaps=document.sitemaps,
    )


def wants_page(entry: ParsedEntry, spec: SourceSpec, rules: RuleSet) -> bool:
    """Whether the entry's article page should be fetched: never, always, or (candidates)
    when the entry has too little text to decide on and a watch might concern it, judged
    leniently from its title and teaser (RuleSet.might_concern)."""
    if spec.full_text == "never" or entry.link is None:
        return False
    if spec.full_text == "always":
        return True
    if len(entry.summary) >= SHORT_TEXT:
        return False
    return rules.might_concern(entry.title, entry.summary)


def process_pages(pages: Sequence[PageFetch], spec: SourceSpec) -> tuple[tuple[Candidate, ...], tuple[str, ...]]:
    """Candidates of entries whose article page was fetched (or failed for good): the page's
    text replaces the entry's own when the page gives one; otherwise the entry keeps what its
    feed gave, with the page's error. Also the extraction's warnings, once each (a `text`
    selector that matches nothing any more is the sign of a site's new layout)."""
    rules, dedup_config = _configured()
    warnings: dict[str, None] = {}
    candidates = tuple(_page_candidate(page, spec, rules, dedup_config, warnings) for page in pages)
    return candidates, tuple(warnings)


def _page_candidate(
    page: PageFetch, spec: SourceSpec, rules: RuleSet, dedup_config: DedupConfig, warnings: dict[str, None]
) -> Candidate:
    # Imported here: trafilatura and its dependencies are ~30 MB that the daemon's main
    # process, which imports this module for the poller, never uses (the forkserver preloads
    # them for the workers: monitor.poll).
    from monitor.sources.extract import extract_page

    entry, error = page.entry, page.error
    if page.body is not None and error is None:
        extracted = extract_page(
            page.body, page.headers, url=page.url, fetched_at=page.fetched_at, text_selector=spec.text
        )
        warnings.update(dict.fromkeys(extracted.warnings))
        if extracted.error is None and extracted.text:
            published, fallback = entry.published, entry.published_is_fallback
            if fallback and extracted.published is not None:
                published, fallback = extracted.published, False
            entry = replace(
                entry,
                title=entry.title or extracted.title or "",
                summary=extracted.text,
                published=published,
                published_is_fallback=fallback,
                language=extracted.language or entry.language,
            )
            return prepare_entry(entry, rules, dedup_config, source_type=spec.type, full_text=True)
        error = extracted.error or "no article text found on the page"
        if not entry.title and extracted.title:
            entry = replace(entry, title=extracted.title)
    return prepare_entry(entry, rules, dedup_config, source_type=spec.type, page_error=error)


def prepare_entry(
    entry: ParsedEntry,
    rules: RuleSet,
    dedup_config: DedupConfig,
    *,
    source_type: str = "rss",
    full_text: bool = False,
    page_error: str | None = None,
) -> Candidate:
    decision = rules.classify(entry.title, entry.summary)
    may_concern = rules.could_concern(decision)
    features = dedup.compute_features(
        entry.title,
        entry.summary,
        entry.link,
        entry.published,
        watch=decision.watch if decision.flagged else None,
        round=decision.round,
        config=dedup_config,
        near_duplicates=may_concern,
        language=entry.language,
        subject=dedup.happening_subject(rules.classify, entry.title, entry.summary) if decision.flagged else (),
    )
    return Candidate(
        entry=entry,
        decision=decision,
        features=features,
        decision_json=decision_json(decision.to_json_dict()) if may_concern else _rejection_json(decision),
        features_blob=dedup.features_to_bytes(features),
        source_type=source_type,
        full_text=full_text,
        page_error=page_error,
    )


@functools.cache
def _rejection_json(decision: Decision) -> str:
    """The JSON of the prefilter's decision, the same object for most of a feed's entries:
    made once per rule set, not once per entry."""
    return decision_json(decision.to_json_dict())
