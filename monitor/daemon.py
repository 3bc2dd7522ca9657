"""`monitor run`: the long-running service.

APScheduler 3.x cannot share a job store between processes, so jobs are registered from the
config at every start and the real schedule lives in the database: each tick asks the
database which feeds are due (`feed.next_poll_at`), so a restart resumes where it stopped.

Polling passes are tasks of the daemon's own, not APScheduler jobs: the scheduler's tick
only starts them. So a reload can let the old poller's passes finish while the new poller
takes the next ticks, and a stop can give in-flight passes their grace period (APScheduler's
asyncio executor cancels whatever its jobs are still running the moment it shuts down).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, ConfigError, load_config
from monitor import notify
from monitor.metrics import DaemonMetrics, MetricsError, MetricsServer, flagged_since, ping, read_gauges
from monitor.models import utcnow
from monitor.poll import Poller
from monitor.status import heartbeat, register_daemon, unregister_daemon
from monitor.store import Store, make_engine, this_process, upgrade
from monitor.systemd import Notifier

log = structlog.get_logger(__name__)

OUTBOX_TICK_SECONDS = 15
SHUTDOWN_GRACE_SECONDS = 6.0  # systemd's stop is promised to take under 10 s
MAX_PASSES = 2  # a pass held up by a slow feed must not keep the other due feeds waiting
STALL_INTERVALS = 3  # a due feed left unpolled this many of its intervals: polling is stuck
TICKS_MISSED = 3  # the poll job has not run for this many ticks (plus a margin): the scheduler is stuck


def open_store(config: Config) -> Store:
    """Connect, migrate to head and make the feed table match the config."""
    engine = make_engine(config.database_url)
    upgrade(engine)
    store = Store(engine)
    store.sync_feeds(config.feeds, config.polling.interval, utcnow())
    return store


def polling_stall(store: Store, config: Config, since_last_claim: float, now: datetime) -> str | None:
    """Why polling is stuck, or None. Stuck means: this daemon has not asked the database for
    due feeds for several feed intervals, or a due feed nobody holds has waited that long
    (with several daemons on one database, whichever is stuck stops being pinged)."""
    intervals = [feed.interval or config.polling.interval for feed in config.feeds if feed.enabled]
    if not intervals:
        return None
    limit = STALL_INTERVALS * min(intervals)
    if since_last_claim > limit.total_seconds():
        return f"no due feeds claimed for {since_last_claim:.0f} s"
    overdue = store.overdue_feeds(now, STALL_INTERVALS)
    if overdue:
        return f"{len(overdue)} due feeds unpolled for {STALL_INTERVALS} intervals: {', '.join(overdue[:5])}"
    return None


@dataclass
class Daemon:
    config_path: Path
    config: Config
    notifier: Notifier = field(default_factory=Notifier)
    extra_jobs: list[Callable[[Daemon, AsyncIOScheduler], None]] = field(default_factory=list)

    async def run(self) -> int:
        self.store = open_store(self.config)
        self._last_tick = time.monotonic()
        self._start_metrics()
        register_daemon(self.store, this_process(), utcnow(), self.config.metrics.listen)
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()  # reloads, catch-ups, retiring pollers
        self._passes: dict[asyncio.Task[None], Poller] = {}
        self._reload_wanted = False
        self._reloader: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self._sending: set[str] = set()  # deliveries being sent: their leases are renewed
        self.poller = await self._new_poller(self.config)
        self.scheduler = AsyncIOScheduler(timezone=self.config.tz)
        self._register_jobs()
        self.scheduler.start()
        self.notifier.ready(f"polling {len(self.config.feeds)} feeds")
        log.info("daemon started", feeds=len(self.config.feeds), config=str(self.config_path))
        await self._stopping.wait()
        await self._shutdown()
        return 0

    def _start_metrics(self) -> None:
        """[metrics] listen: counters fed by the hooks below, /healthz from health_problem.
        An address that cannot be served stops the start-up, like a config error."""
        self.metrics: DaemonMetrics | None = None
        self._metrics_server: MetricsServer | None = None
        address = self.config.metrics.address
        if address is None:
            return
        metrics = DaemonMetrics(
            self.config.polling.timeout.total_seconds(), lambda: read_gauges(self.store), [w.id for w in self.config.watches]
        )
        try:
            self._metrics_server = MetricsServer(address, metrics.registry, self.health_problem)
        except MetricsError as exc:
            self.store.engine.dispose()
            raise ConfigError(self.config_path, "metrics.listen", str(exc)) from None
        self.metrics = metrics

    def _register_jobs(self) -> None:
        self.scheduler.add_job(
            self._poll_tick,
            IntervalTrigger(seconds=self.config.polling.tick.total_seconds(), timezone=self.config.tz),
            id="poll",
            next_run_time=utcnow(),
            coalesce=True,
            replace_existing=True,
        )
        if self.notifier.watchdog_interval:
            self.scheduler.add_job(
                self._watchdog_tick,
                IntervalTrigger(seconds=self.notifier.watchdog_interval, timezone=self.config.tz),
                id="watchdog",
                coalesce=True,
                replace_existing=True,
            )
        # The outbox runs at once when the daemon starts; a reload keeps its rhythm (a storm of
        # SIGHUPs would otherwise start a tick per signal while one still waits on the database).
        first_start = {"next_run_time": utcnow()} if self.scheduler.get_job("outbox") is None else {}
        self.scheduler.add_job(
            self._outbox_tick,
            IntervalTrigger(seconds=OUTBOX_TICK_SECONDS, timezone=self.config.tz),
            id="outbox",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
            **first_start,
        )
        for digest in self.config.digests:
            hour, minute = digest.at.split(":")
            self.scheduler.add_job(
                self._digest_job,
                CronTrigger(hour=int(hour), minute=int(minute), timezone=self.config.tz),
                args=[digest.id],
                id=f"digest:{digest.id}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
                replace_existing=True,
            )
            self._spawn(self._catch_up(digest.id))
        self.scheduler.add_job(
            self._heartbeat_tick,
            IntervalTrigger(seconds=self.config.monitor.lease_heartbeat.total_seconds(), timezone=self.config.tz),
            id="heartbeat",
            coalesce=True,
            replace_existing=True,
        )
        for register in self.extra_jobs:
            register(self, self.scheduler)

    async def _catch_up(self, digest_id: str) -> None:
        """A digest whose time passed while the daemon was down is built once now."""
        digest = next(d for d in self.config.digests if d.id == digest_id)
        slot = notify.missed_slot(self.store, digest, self.config.tz, utcnow())
        if slot is not None:
            log.info("building a digest missed while stopped", digest_id=digest_id, slot=slot.isoformat())
            built = await asyncio.to_thread(notify.build_digest, self.store, self.config, digest, slot)
            if self.metrics is not None:
                self.metrics.observe_digest(built.run_id is not None)
            await self._outbox_tick()

    async def _digest_job(self, digest_id: str) -> None:
        digest = next((d for d in self.config.digests if d.id == digest_id), None)
        if digest is None:
            return
        slot = notify.latest_slot(digest.at, self.config.tz, utcnow())
        try:
            built = await asyncio.to_thread(notify.build_digest, self.store, self.config, digest, slot)
            if self.metrics is not None:
                self.metrics.observe_digest(built.run_id is not None)
        except asyncio.CancelledError:
            log.info("digest build interrupted by shutdown; built at the next start", digest_id=digest_id)
            return
        except Exception:  # noqa: BLE001
            log.exception("digest build failed", digest_id=digest_id)
        await self._outbox_tick()

    async def _outbox_tick(self) -> None:
        """Queue alerts for newly flagged stories, then send what the outbox holds."""
        if self._stopping.is_set():
            return
        try:
            if self.config.alerts:
                await asyncio.to_thread(notify.queue_alerts, self.store, self.config)
            attempted = await notify.send_due(self.store, self.config, lease=self.config.monitor.lease, sending=self._sending)
            if self.metrics is not None:
                self.metrics.observe_deliveries(attempted, {c.id: c.type for c in self.config.channels})
        except asyncio.CancelledError:
            # Stopped mid-send: the delivery's lease is freed at the next start and it is
            # sent again with the same id, which receivers use to drop the repeat.
            log.info("outbox interrupted by shutdown")
        except Exception:  # noqa: BLE001 (one failed tick must not stop the service)
            log.exception("outbox tick failed")

    async def _poll_tick(self) -> None:
        """Start a polling pass of the current poller, unless it already runs MAX_PASSES."""
        if self._stopping.is_set():
            return
        self._last_tick = time.monotonic()
        poller = self.poller
        running = sum(1 for owner in self._passes.values() if owner is poller)
        if running >= MAX_PASSES:
            log.debug("polling passes still running; tick skipped", passes=running)
            return
        task = asyncio.create_task(self._poll_pass(poller))
        self._passes[task] = poller
        task.add_done_callback(self._passes.pop)

    async def _poll_pass(self, poller: Poller) -> None:
        try:
            started = utcnow()
            reports = await poller.poll_due()
            if any(report.new_articles for report in reports):
                await poller.index_for_search()
            if self.metrics is not None and reports:
                await self._count_pass(reports, started)
        except asyncio.CancelledError:
            log.info("polling pass abandoned at shutdown; its unrecorded feeds are polled at the next start")
        except Exception:  # noqa: BLE001 (one failed pass must not stop the service)
            log.exception("polling pass failed")

    async def _heartbeat_tick(self) -> None:
        """Every `lease_heartbeat`: extend the leases of the work in progress (the feeds
        being polled, by the current poller and by retiring ones, and the deliveries being
        sent) to now + `lease`, and refresh the daemon's row (`monitor status` tells a running
        daemon from a gone one by its age). A daemon killed on another host stops renewing,
        so its work is free `lease` after this last ran; one that stays alive keeps its slow
        polls. Runs in a thread, on a connection of its own: a busy writer does not delay it."""
        feeds = set(self.poller.polling()).union(*(poller.polling() for poller in self._passes.values()))
        deliveries = frozenset(self._sending)
        try:
            await asyncio.to_thread(self._renew, feeds, deliveries)
        except Exception as exc:  # noqa: BLE001 (the watchdog and /healthz report a database down)
            log.warning("heartbeat not recorded", error=f"{type(exc).__name__}: {exc}")

    def _renew(self, feeds: set[str], deliveries: frozenset[str]) -> None:
        now, owner = utcnow(), this_process()
        until = now + self.config.monitor.lease
        renewed = self.store.renew_leases(owner, feeds, until) if feeds else 0
        if deliveries:
            renewed += notify.renew_delivery_leases(self.store, owner, deliveries, until)
        heartbeat(self.store, owner, now)
        if renewed:
            log.debug("leases renewed", feeds=len(feeds), deliveries=len(deliveries), until=until.isoformat())

    async def _count_pass(self, reports: list, started: datetime) -> None:
        """Flagged articles per watch: FeedReport counts them per feed only, so the feeds
        that flagged any are asked once (rare: most passes flag nothing). Their leases made
        this pass the only writer of their articles since it started."""
        assert self.metrics is not None
        flagged_feeds = [report.feed_id for report in reports if report.flagged]
        by_watch = await asyncio.to_thread(flagged_since, self.store, flagged_feeds, started) if flagged_feeds else {}
        self.metrics.observe_pass(reports, by_watch)

    def health_problem(self) -> str | None:
        """Why the daemon is unhealthy, or None: the scheduler has stopped ticking, the
        database does not answer, or polling is stuck (polling_stall). Blocking: called in
        a thread, by the watchdog tick and by /healthz."""
        since_tick = time.monotonic() - self._last_tick
        if since_tick > TICKS_MISSED * self.config.polling.tick.total_seconds() + 5:
            return f"the scheduler has not ticked for {since_tick:.0f} s"
        poller = getattr(self, "poller", None)
        if poller is None:
            return "starting"
        since = time.monotonic() - poller.last_claim_at
        try:
            ping(self.store)
            return polling_stall(self.store, self.config, since, utcnow())
        except Exception as exc:  # noqa: BLE001 (the database not answering is a stall too)
            return f"the database does not answer: {type(exc).__name__}"

    async def _watchdog_tick(self) -> None:
        """Ping systemd's watchdog only while polling makes progress: a live event loop is
        not enough (a reload once left it ticking while no feed was ever polled again)."""
        stall = await asyncio.to_thread(self.health_problem)
        if stall is None:
            self.notifier.watchdog()
        else:
            log.error("polling makes no progress; watchdog ping withheld so systemd restarts the daemon", reason=stall)

    def request_stop(self, signame: str) -> None:
        if not self._stopping.is_set():
            log.info("stopping", signal=signame)
            self.notifier.stopping()
            self._stopping.set()

    async def _shutdown(self) -> None:
        """Stop taking new work, give in-flight passes the grace period, then cancel what is
        left: each feed's poll commits in one transaction, so a cancelled one never happened
        and its claim is given back."""
        self.scheduler.shutdown(wait=False)
        if self._reloader is not None:
            self._reloader.cancel()
        passes = set(self._passes)
        if passes:
            _, late = await asyncio.wait(passes, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._tasks:  # retiring pollers close now that their passes are over
            _, late = await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS / 2)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.poller.__aexit__(None, None, None)
        if self._metrics_server is not None:
            self._metrics_server.close()
        try:
            unregister_daemon(self.store, this_process())
        except Exception as exc:  # noqa: BLE001 (stopping must not fail; status shows it gone)
            log.warning("daemon row not removed", error=f"{type(exc).__name__}: {exc}")
        self.store.engine.dispose()
        log.info("daemon stopped")

    def request_reload(self) -> None:
        """SIGHUP. Reloads run one at a time; signals arriving meanwhile make one more."""
        self._reload_wanted = True
        if self._reloader is None or self._reloader.done():
            self._reloader = asyncio.create_task(self._reload_while_wanted())

    async def _reload_while_wanted(self) -> None:
        while self._reload_wanted and not self._stopping.is_set():
            self._reload_wanted = False
            try:
                await self.reload()
            except Exception:  # noqa: BLE001 (a failed reload keeps the running config)
                log.exception("config reload failed; keeping the running config")

    async def reload(self) -> None:
        """Re-read and re-validate the config (a bad one is rejected, the old kept) and start
        a poller on it. The old poller is retired, not closed: its passes in flight finish
        and are recorded through its own workers and writer, then it closes."""
        try:
            new_config = load_config(self.config_path)
            new_config.require_secrets()
        except ConfigError as exc:
            log.error("config reload rejected; keeping the running config", error=str(exc))
            return
        self.notifier.notify("RELOADING=1")
        await asyncio.to_thread(self.store.sync_feeds, new_config.feeds, new_config.polling.interval, utcnow())
        new_poller = await self._new_poller(new_config)
        old_poller, self.poller, self.config = self.poller, new_poller, new_config
        self._register_jobs()
        self._spawn(self._retire(old_poller))
        self.notifier.ready(f"polling {len(new_config.feeds)} feeds")
        log.info("config reloaded", feeds=len(new_config.feeds))

    async def _new_poller(self, config: Config) -> Poller:
        return await Poller(config, self.store, lease=config.monitor.lease).__aenter__()

    @staticmethod
    async def _retire(poller: Poller) -> None:
        await poller.drain()
        await poller.__aexit__(None, None, None)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
