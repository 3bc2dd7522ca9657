"""One polling pass: fetch → parse → normalise → classify → dedup → store, for each due feed.

Fetching is I/O-bound and runs concurrently on one event loop; parsing, classification and
dedup features are CPU-bound and run in a process pool (feedparser is the cold-path
bottleneck); the database writes are serialised through one thread so SQLite never sees two
writers from this process.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import Any

import structlog

from monitor.config import Config
from monitor.harvest import Harvester, Visit, WorkFailed
from monitor.models import utcnow
from monitor.pipeline import init_worker, ready, settle_garbage_collector
from monitor.sources.document import SourceSpec, source_spec
from monitor.sources.parse import ParsedEntry
from monitor.sources.fetch import FeedRequest, Fetcher, FetchOutcome, backoff_delay
from monitor.sources.robots import RobotsPolicy
from monitor.store import HOST, DueFeed, PollResult, Store, pid_alive, this_process
from monitor.store.group_commit import GroupWriter
from monitor.store.search import catch_up

log = structlog.get_logger(__name__)

# How long a claim holds a feed when nothing renews it (`monitor poll`): longer than any pass.
# The daemon claims for `[monitor] lease` and renews while polls run (Daemon._heartbeat_tick).
LEASE = timedelta(minutes=10)
UNWRITTEN_GROUPS = 4  # group commits' worth of feeds a pass may have between fetch and written


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
    pages_fetched: int = 0


# -- orchestration -------------------------------------------------------------------------


@dataclass
class Poller:
    """Polls due feeds. Used by `monitor poll` for one pass and by the daemon on a schedule."""

    config: Config
    store: Store
    owner: str = field(default_factory=this_process)
    rng: random.Random = field(default_factory=random.Random)
    lease: timedelta = LEASE

    async def __aenter__(self) -> Poller:
        polling = self.config.polling
        self._fetcher = Fetcher.for_polling(polling)
        await self._fetcher.__aenter__()
        self._pool = self._make_pool()
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._writer = GroupWriter(self.store, self._db)
        self._in_flight = asyncio.Semaphore(2 * polling.concurrency)  # feeds between fetch and parse
        # Feeds between fetch and written: when the writer is the slower stage, parsed feeds
        # waited for it without bound (a cold pass of 1,000 feeds: ~300 of them, 57 MB of
        # candidates). Four groups keep it fed (monitor.store.group_commit).
        self._unwritten = asyncio.Semaphore(UNWRITTEN_GROUPS * GroupWriter.MAX_FEEDS)
        self._held: set[str] = set()  # feeds this poller claimed and has not recorded yet
        self._polling: set[str] = set()  # of those, the ones a poll is working on: their leases are renewed
        self._passes = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.last_claim_at = time.monotonic()
        self.specs = {feed.id: source_spec(feed) for feed in self.config.feeds}
        self._robots = RobotsPolicy(self._fetcher, polling.user_agent)
        self._harvester = Harvester(self._fetcher, self._robots, self._in_worker, lookups=self)
        settle_garbage_collector(self.config)
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
        self._pool_started: Future[None] = Future()
        if workers <= 1:
            init_worker(self.config.rules, self.config.dedup)
            self._pool_started.set_result(None)
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
        initargs = (self.config.rules, self.config.dedup, os.getpid())
        context = get_context("forkserver")
        # The workers' modules (parsing, page extraction, rules, dedup, numpy: ~1.5 s of CPU
        # and ~90 MB per process) are imported once, by the forkserver when it starts, not by
        # every worker it forks: a worker then starts in milliseconds, sharing those pages.
        context.set_forkserver_preload(["monitor.pipeline", "monitor.sources.extract"])
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker, initargs=initargs)
        if _forkserver_ready.is_set():  # workers fork in milliseconds, when there is work for them
            self._pool_started.set_result(None)
        else:
            # The process's first pool: start the forkserver and the workers now, from a thread
            # of their own. The first fork waits for the forkserver's imports holding the
            # pool's lock, and the event loop must not wait (it fetches meanwhile;
            # _in_worker submits once they are started).
            threading.Thread(
                target=_start_workers, args=(pool, workers, self._pool_started), name="start-workers", daemon=True
            ).start()
        return pool

    async def poll_due(self, only: Sequence[str] | None = None) -> list[FeedReport]:
        """Claim the due (or the named) feeds and poll them all concurrently."""
        self._passes += 1
        self._idle.clear()
        try:
            due = await asyncio.get_running_loop().run_in_executor(self._db, self._claim, only)
            self._polling.update(feed.id for feed in due)
            self.last_claim_at = time.monotonic()
            if not due:
                return []
            results = await asyncio.gather(*(self._poll_held(feed) for feed in due), return_exceptions=True)
            return [self._report_of(feed, result) for feed, result in zip(due, results, strict=True)]
        finally:
            self._passes -= 1
            if not self._passes:
                self._idle.set()

    def polling(self) -> frozenset[str]:
        """The feeds this poller's passes are working on (claimed, not yet recorded or
        failed): the leases the daemon's heartbeat renews. Read on the event loop."""
        return frozenset(self._polling)

    async def index_for_search(self) -> int:
        """Index the articles the passes stored (monitor.store.search.catch_up), on the
        database thread between writes: the search index costs the polling pass nothing."""
        return await self._in_db(catch_up, self.store.engine)

    def _claim(self, only: Sequence[str] | None) -> list[DueFeed]:
        """Free what dead processes of this host still hold (a daemon killed beside this one
        would otherwise keep its feeds for the whole lease), then lease what is due: all of
        the named feeds (`monitor poll` names every enabled feed; the store's default limit
        of 1,000 per claim left the rest of a larger list unpolled)."""
        self.store.release_dead_leases(HOST, pid_alive)
        limit = {"limit": len(only)} if only is not None and len(only) > 0 else {}
        due = self.store.claim_due_feeds(utcnow(), self.owner, self.lease, only=only, **limit)
        self._held.update(feed.id for feed in due)
        return due

    async def _poll_held(self, feed: DueFeed) -> FeedReport:
        """A poll that raises keeps its feed held until this poller closes or the lease runs
        out, so a feed that crashes its poll is not retried at every tick: its lease is no
        longer renewed, so any daemon retries it once the lease has run out."""
        try:
            async with self._unwritten:
                report = await self.poll_feed(feed)
        finally:
            self._polling.discard(feed.id)
        self._held.discard(feed.id)  # recorded (the write released its lease), or taken over
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
        spec = self.specs.get(feed.id, SourceSpec())
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
            known = _StoredGuids(feed.id)  # read only if the document is parsed (not for a 304)
            harvest = await self._harvester.harvest(Visit(feed.id, request, spec, fetched_at, feed.language, known))
        # The body was parsed: the result waits for the writer without it (~170 KB a feed;
        # the backlog of a cold pass held 40 MB of bodies at 1,000 feeds).
        outcome = replace(harvest.outcome, body=None)
        if not harvest.settled or harvest.index:
            # Entries wait for a later poll, or the document is a sitemap index (unchanged, it
            # may still list sitemaps that changed): the next poll reads it again in full.
            outcome = replace(outcome, etag=None, last_modified=None, body_hash=None)
        error = outcome.error or harvest.error
        result = PollResult(
            feed=feed,
            outcome=outcome,
            candidates=tuple(harvest.candidates),
            error=error,
            fetched_at=fetched_at,
            # From when this poll ended, not began: a poll that waited for its host's turn
            # (per_host) longer than the interval would otherwise be due again at once.
            next_poll_at=self._next_poll_at(feed, outcome, error, utcnow()),
            rules_fingerprint=self.config.rules.fingerprint,
            dedup_config=self.config.dedup,
            warning="; ".join(harvest.warnings) or None,
            page_failures=tuple(harvest.page_failures),
        )
        stored = await self._writer.record(result)
        seconds = time.perf_counter() - started
        if stored.lease_lost:
            # The lease ran out under this poll and another process claimed the feed: this
            # result was dropped, the new owner's poll counts (monitor.store.feeds.lost_leases).
            error = "lease lost: another process took this feed over while it was polled; result dropped"
            bound.warning("feed poll outlived its lease; result dropped", seconds=round(seconds, 3))
            return FeedReport(feed.id, "error", outcome.http_status, harvest.entries, 0, 0, 0, error, seconds)
        for warning in harvest.warnings:
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
                entries=harvest.entries,
                new=stored.new,
                flagged=stored.flagged,
                pages=harvest.pages_fetched,
                seconds=round(seconds, 3),
            )
        return FeedReport(
            feed_id=feed.id,
            status="error" if error else outcome.status,
            http_status=outcome.http_status,
            entries=harvest.entries,
            new_articles=stored.new,
            flagged=stored.flagged,
            near_duplicates=stored.near_duplicates,
            error=error,
            seconds=seconds,
            pages_fetched=harvest.pages_fetched,
        )

    async def stored(self, feed_id: str, entries: Sequence[ParsedEntry]) -> set[str]:
        return await self._in_db(self.store.stored_entries, feed_id, entries)

    async def page_attempts(self, feed_id: str, guids: Sequence[str]) -> dict[str, int]:
        return await self._in_db(self.store.page_attempts, feed_id, guids)

    async def _in_db(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, function, *args)

    async def _in_worker(self, function: Any, *args: Any) -> Any:
        """Run CPU work in the pool. A worker that dies (killed for memory, or a crash in a
        C library on a hostile feed) fails every task it had in flight: the pool is replaced
        once and each of them tried again, so one poisonous feed fails alone."""
        loop = asyncio.get_running_loop()
        args = tuple([await self._stored_guids(arg) if isinstance(arg, _StoredGuids) else arg for arg in args])
        for attempt in (1, 2):
            pool = self._pool
            if not self._pool_started.done():
                await asyncio.wrap_future(self._pool_started)
            try:
                return await loop.run_in_executor(pool, function, *args)
            except BrokenProcessPool:
                self._replace_broken_pool(pool)
                log.warning("parse worker died; pool restarted", attempt=attempt)
        raise WorkFailed("the parser process died on this feed (twice); retried later")

    async def _stored_guids(self, placeholder: _StoredGuids) -> frozenset[str]:
        if placeholder.guids is None:
            placeholder.guids = frozenset(await self._in_db(self.store.known_guids, placeholder.feed_id))
        return placeholder.guids

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


class _StoredGuids(frozenset):
    """The guids a feed has stored, read from the database when work is sent to a worker
    (_in_worker) rather than before every fetch: most polls of a running daemon are 304s,
    which need no guid, and the query cost the database thread ~1 ms per feed. Until then
    it is empty, so it must only ever travel to the workers through _in_worker."""

    feed_id: str
    guids: frozenset[str] | None

    def __new__(cls, feed_id: str) -> _StoredGuids:
        placeholder = super().__new__(cls)
        placeholder.feed_id, placeholder.guids = feed_id, None
        return placeholder


_forkserver_ready = threading.Event()  # set once a pool of this process has forked its workers


def _start_workers(pool: ProcessPoolExecutor, workers: int, started: Future[None]) -> None:
    """Submit a no-op per worker: each submission finding no idle worker forks one."""
    try:
        for _ in range(workers):
            pool.submit(ready)
        _forkserver_ready.set()
    except RuntimeError:  # the poller closed (or the pool broke) first: nothing to start
        pass
    finally:
        started.set_result(None)


def summarise(reports: Iterable[FeedReport]) -> dict[str, int]:
    totals = {"feeds": 0, "failed": 0, "new": 0, "flagged": 0}
    for report in reports:
        totals["feeds"] += 1
        totals["failed"] += report.status == "error"
        totals["new"] += report.new_articles
        totals["flagged"] += report.flagged
    return totals
