"""One polling pass: fetch → parse → normalise → classify → dedup → store, for each due feed.

Fetching is I/O-bound and runs concurrently on one event loop; parsing, classification and
dedup features are CPU-bound and run in a process pool (feedparser is the cold-path
bottleneck); the database writes are serialised through one thread so SQLite never sees two
writers from this process.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing import get_context

import structlog

from monitor import dedup
from monitor.config import Config
from monitor.dedup import DedupConfig
from monitor.sources.fetch import FeedRequest, Fetcher, FetchOutcome, backoff_delay
from monitor.lifetime import exit_with
from monitor.models import utcnow
from monitor.sources.parse import ParsedEntry, parse_feed
from monitor.relevance import RuleSet
from monitor.store import HOST, Candidate, DueFeed, PollResult, Store, StoredPoll, decision_json, pid_alive, this_process

log = structlog.get_logger(__name__)

LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class ProcessedFeed:
    candidates: tuple[Candidate, ...]
    entries: int
    warnings: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class FeedReport:
    """The per-feed line `monitor poll` prints."""

    feed_id: str
    status: str
    http_status: int | None
    entries: int
    new_articles: int
    flagged: int
    near_duplicates: int
    error: str | None
    seconds: float


# -- the CPU-bound part, run in worker processes -------------------------------------------

_worker_rules: RuleSet | None = None
_worker_dedup: DedupConfig | None = None


def init_worker(rules: RuleSet, dedup_config: DedupConfig, daemon_pid: int | None = None) -> None:
    global _worker_rules, _worker_dedup
    _worker_rules, _worker_dedup = rules, dedup_config
    if daemon_pid is not None:
        exit_with(daemon_pid)
    settle_garbage_collector()


def settle_garbage_collector() -> None:
    """What is alive once a poller or worker has started (config, compiled rules, modules)
    lives as long as it does: freezing it keeps every full collection from rescanning it.
    A feed allocates tens of thousands of short-lived, acyclic objects (entries, strings,
    rows) that reference counting frees; the default gen-0 threshold of 700 made the
    collector run hundreds of times per feed for nothing (poll_bench: ~1.4 s of the main
    process's 7.7 s in a cold pass)."""
    gc.unfreeze()  # a config reload starts a new poller: what the old one froze may be garbage now
    gc.collect()  # and garbage must not be frozen with the rest
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def process_feed_body(
    body: bytes,
    headers: dict[str, str],
    base_url: str,
    fetched_at: datetime,
    language: str | None,
    known_guids: frozenset[str],
) -> ProcessedFeed:
    """Parse a feed body and prepare its unseen entries; entries already stored cost no
    classification (a warm feed with new bytes usually carries one or two new items)."""
    assert _worker_rules is not None and _worker_dedup is not None, "init_worker() was not called"
    parsed = parse_feed(body, headers, base_url=base_url, fetched_at=fetched_at, default_language=language)
    if parsed.error is not None:
        return ProcessedFeed(candidates=(), entries=0, warnings=parsed.warnings, error=parsed.error)
    candidates = []
    seen: set[str] = set()
    for entry in parsed.entries:
        if entry.guid in known_guids or entry.guid in seen:
            continue
        seen.add(entry.guid)
        candidates.append(prepare_entry(entry, _worker_rules, _worker_dedup))
    return ProcessedFeed(
        candidates=tuple(candidates), entries=len(parsed.entries), warnings=parsed.warnings, error=None
    )


def prepare_entry(entry: ParsedEntry, rules: RuleSet, dedup_config: DedupConfig) -> Candidate:
    decision = rules.classify(entry.title, entry.summary)
    features = dedup.compute_features(
        entry.title,
        entry.summary,
        entry.link,
        entry.published,
        watch=decision.watch if decision.flagged else None,
        round=decision.round,
        config=dedup_config,
        near_duplicates=rules.could_concern(decision),
    )
    return Candidate(
        entry=entry,
        decision=decision,
        features=features,
        decision_json=decision_json(decision.to_json_dict()),
        features_blob=dedup.features_to_bytes(features),
    )


# -- orchestration -------------------------------------------------------------------------


class GroupWriter:
    """Records finished polls through the one database thread, many per transaction (group
    commit): a write starts once `linger` seconds have passed since the first poll waiting
    for it, or at once when MAX_FEEDS are waiting, and whatever finishes meanwhile waits for
    the next. A transaction's statements and commit cost about the same for one feed or
    fifty, so a cold pass of 500 feeds commits a few dozen times instead of 500, while a
    quiet daemon's single feed is stored a fraction of a second after its poll. Each feed
    stays all-or-nothing (see Store.record_polls)."""

    MAX_FEEDS = 50  # keeps a transaction short and its IN lists well under driver limits

    def __init__(self, store: Store, executor: Executor, linger: float = 0.2):
        self.store = store
        self.executor = executor
        self.linger = linger
        self._pending: list[tuple[PollResult, asyncio.Future[StoredPoll]]] = []
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None

    async def record(self, result: PollResult) -> StoredPoll:
        future: asyncio.Future[StoredPoll] = asyncio.get_running_loop().create_future()
        self._pending.append((result, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        self._drop_cancelled()
        if self._writing or not self._pending:
            return
        if len(self._pending) >= self.MAX_FEEDS or self.linger <= 0:
            self._write_next()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._linger_over)

    def _linger_over(self) -> None:
        self._timer = None
        self._drop_cancelled()
        if not self._writing and self._pending:
            self._write_next()

    def _drop_cancelled(self) -> None:
        self._pending = [(result, future) for result, future in self._pending if not future.cancelled()]

    def close(self) -> None:
        """Stop lingering (the poller is closing: every poll it still waits for was cancelled)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _write_next(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending[: self.MAX_FEEDS], self._pending[self.MAX_FEEDS :]
        self._writing = True
        results = [result for result, _ in batch]
        loop = asyncio.get_running_loop()
        try:
            task = loop.run_in_executor(self.executor, self.store.record_polls, results)
        except RuntimeError as exc:  # the executor was shut down: fail these polls, never strand them
            task = loop.create_future()
            task.set_exception(exc)
        task.add_done_callback(lambda done: self._written(batch, done))

    def _written(self, batch: list[tuple[PollResult, asyncio.Future[StoredPoll]]], done: asyncio.Future) -> None:
        self._writing = False
        error = done.exception()
        outcomes = [error] * len(batch) if error is not None else done.result()
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.cancelled():
                continue  # the poll was cancelled (shutdown); its feed is recorded all the same
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._schedule()


@dataclass
class Poller:
    """Polls due feeds. Used by `monitor poll` for one pass and by the daemon on a schedule."""

    config: Config
    store: Store
    owner: str = field(default_factory=this_process)
    rng: random.Random = field(default_factory=random.Random)

    async def __aenter__(self) -> Poller:
        polling = self.config.polling
        self._fetcher = Fetcher(
            concurrency=polling.concurrency,
            per_host=polling.per_host,
            timeout=polling.timeout.total_seconds(),
            max_bytes=polling.max_bytes,
            user_agent=polling.user_agent,
        )
        await self._fetcher.__aenter__()
        self._pool = self._make_pool()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._writer = GroupWriter(self.store, self._db)
        self._in_flight = asyncio.Semaphore(2 * polling.concurrency)  # feeds between fetch and parse
        self._held: set[str] = set()  # feeds this poller claimed and has not recorded yet
        self._passes = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.last_claim_at = time.monotonic()
        settle_garbage_collector()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close, after whatever passes are still running have finished or been cancelled.
        Only this poller's own claims are given back: after a reload, the poller that
        replaced it runs in the same process under the same owner name."""
        await self._fetcher.__aexit__(*exc_info)
        self._writer.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._db.shutdown(wait=True)
        if self._held:
            self.store.release_leases(self.owner, feed_ids=sorted(self._held))

    @property
    def passes_running(self) -> int:
        return self._passes

    async def drain(self) -> None:
        """Wait until no polling pass of this poller is running (a reload retires it)."""
        await self._idle.wait()

    def _make_pool(self) -> Executor:
        workers = self.config.polling.parse_workers or (os.cpu_count() or 1)
        if workers <= 1:
            init_worker(self.config.rules, self.config.dedup)
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
        initargs = (self.config.rules, self.config.dedup, os.getpid())
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("forkserver"), initializer=init_worker, initargs=initargs
        )

    async def poll_due(self, only: Sequence[str] | None = None) -> list[FeedReport]:
        """Claim the due (or the named) feeds and poll them all concurrently."""
        self._passes += 1
        self._idle.clear()
        try:
            due = await asyncio.get_running_loop().run_in_executor(self._db, self._claim, only)
            self.last_claim_at = time.monotonic()
            if not due:
                return []
            results = await asyncio.gather(*(self._poll_held(feed) for feed in due), return_exceptions=True)
            return [self._report_of(feed, result) for feed, result in zip(due, results, strict=True)]
        finally:
            self._passes -= 1
            if not self._passes:
                self._idle.set()

    def _claim(self, only: Sequence[str] | None) -> list[DueFeed]:
        """Free what dead processes of this host still hold (a daemon killed beside this one
        would otherwise keep its feeds for the whole lease), then lease what is due."""
        self.store.release_dead_leases(HOST, pid_alive)
        due = self.store.claim_due_feeds(utcnow(), self.owner, LEASE, only=only)
        self._held.update(feed.id for feed in due)
        return due

    async def _poll_held(self, feed: DueFeed) -> FeedReport:
        """A poll that raises keeps its feed held until this poller closes or the lease runs
        out, so a feed that crashes its poll is not retried at every tick."""
        report = await self.poll_feed(feed)
        self._held.discard(feed.id)  # recorded: the write released its lease
        return report

    @staticmethod
    def _report_of(feed: DueFeed, result: FeedReport | BaseException) -> FeedReport:
        """A poll that raised (a bug, or the database failing under it) is that feed's error:
        the pass goes on for the others, and the feed's lease runs out so it is polled again."""
        if isinstance(result, FeedReport):
            return result
        if not isinstance(result, Exception):  # cancellation, interpreter exit: not ours to keep
            raise result
        log.error("feed poll crashed", feed_id=feed.id, exc_info=result)
        error = f"internal error: {type(result).__name__}: {result}"
        return FeedReport(feed.id, "error", None, 0, 0, 0, 0, error, 0.0)

    async def poll_feed(self, feed: DueFeed) -> FeedReport:
        bound = log.bind(feed_id=feed.id)
        started = time.perf_counter()
        request = FeedRequest(
            feed_id=feed.id,
            url=feed.url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            last_body_hash=feed.last_body_hash,
        )
        # Fetching outruns parsing on a cold pass: without a bound, every fetched body would
        # wait in memory for a parse worker (500 feeds: ~80 MB of queued bytes).
        async with self._in_flight:
            fetched_at = utcnow()
            outcome = await self._fetcher.fetch(request)
            processed = await self._process(outcome, feed, fetched_at)
        error = outcome.error or processed.error
        result = PollResult(
            feed=feed,
            outcome=outcome,
            candidates=processed.candidates,
            error=error,
            fetched_at=fetched_at,
            next_poll_at=self._next_poll_at(feed, outcome, error, fetched_at),
            rules_fingerprint=self.config.rules.fingerprint,
            dedup_config=self.config.dedup,
            warning="; ".join(processed.warnings) or None,
        )
        stored = await self._writer.record(result)
        seconds = time.perf_counter() - started
        for warning in processed.warnings:
            bound.warning("feed parsed with a warning", warning=warning)
        if error:
            bound.warning(
                "feed poll failed",
                error=error,
                http_status=outcome.http_status,
                failures=feed.consecutive_failures + 1,
                next_poll_at=result.next_poll_at.isoformat(),
            )
        else:
            bound.info(
                "feed polled",
                status=outcome.status,
                entries=processed.entries,
                new=stored.new,
                flagged=stored.flagged,
                seconds=round(seconds, 3),
            )
        return FeedReport(
            feed_id=feed.id,
            status="error" if error else outcome.status,
            http_status=outcome.http_status,
            entries=processed.entries,
            new_articles=stored.new,
            flagged=stored.flagged,
            near_duplicates=stored.near_duplicates,
            error=error,
            seconds=seconds,
        )

    async def _process(self, outcome: FetchOutcome, feed: DueFeed, fetched_at: datetime) -> ProcessedFeed:
        if outcome.status != "ok" or outcome.body is None:
            return ProcessedFeed(candidates=(), entries=0, warnings=(), error=None)
        loop = asyncio.get_running_loop()
        known = frozenset(await loop.run_in_executor(self._db, self.store.known_guids, feed.id))
        args = (outcome.body, outcome.headers, outcome.final_url or feed.url, fetched_at, feed.language, known)
        for attempt in (1, 2):
            pool = self._pool
            try:
                return await loop.run_in_executor(pool, process_feed_body, *args)
            except BrokenProcessPool:
                # A parse worker died (killed for memory, or a crash in a C library on a
                # hostile feed): every feed it had in flight lands here. Replace the pool once
                # and try each of them again, so one poisonous feed fails alone.
                self._replace_broken_pool(pool)
                log.warning("parse worker died; pool restarted", feed_id=feed.id, attempt=attempt)
        return ProcessedFeed(
            candidates=(), entries=0, warnings=(), error="the parser process died on this feed (twice); retried later"
        )

    def _replace_broken_pool(self, broken: Executor) -> None:
        if self._pool is broken:
            self._pool = self._make_pool()
            broken.shutdown(wait=False, cancel_futures=True)

    def _next_poll_at(self, feed: DueFeed, outcome: FetchOutcome, error: str | None, now: datetime) -> datetime:
        """On success the feed's interval (with a little jitter so feeds do not bunch up);
        after a failure exponential backoff, capped, so a broken feed is retried for ever."""
        interval = float(feed.interval_seconds)
        if error is None:
            return now + timedelta(seconds=interval * self.rng.uniform(0.95, 1.05))
        delay = backoff_delay(
            consecutive_failures=feed.consecutive_failures + 1,
            base_interval=min(interval, 60.0),
            cap=self.config.polling.max_backoff.total_seconds(),
            retry_after=outcome.retry_after,
            rng=self.rng,
        )
        return now + timedelta(seconds=delay)


def summarise(reports: Iterable[FeedReport]) -> dict[str, int]:
    totals = {"feeds": 0, "failed": 0, "new": 0, "flagged": 0}
    for report in reports:
        totals["feeds"] += 1
        totals["failed"] += report.status == "error"
        totals["new"] += report.new_articles
        totals["flagged"] += report.flagged
    return totals
