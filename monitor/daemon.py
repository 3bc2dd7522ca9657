"""`monitor run`: the long-running service.

APScheduler 3.x cannot share a job store between processes, so jobs are registered from the
config at every start and the real schedule lives in the database: each tick asks the
database which feeds are due (`feed.next_poll_at`), so a restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, ConfigError, load_config
from monitor import notify
from monitor.models import utcnow
from monitor.poll import Poller
from monitor.store import Store, make_engine, upgrade
from monitor.systemd import Notifier

log = structlog.get_logger(__name__)

POLL_TICK_SECONDS = 10
OUTBOX_TICK_SECONDS = 15
SHUTDOWN_GRACE_SECONDS = 6.0


def open_store(config: Config) -> Store:
    """Connect, migrate to head and make the feed table match the config."""
    engine = make_engine(config.database_url)
    upgrade(engine)
    store = Store(engine)
    store.sync_feeds(config.feeds, config.polling.interval, utcnow())
    return store


@dataclass
class Daemon:
    config_path: Path
    config: Config
    notifier: Notifier = field(default_factory=Notifier)
    extra_jobs: list[Callable[[Daemon, AsyncIOScheduler], None]] = field(default_factory=list)

    async def run(self) -> int:
        self.store = open_store(self.config)
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))
        self.poller = await Poller(self.config, self.store).__aenter__()
        self.scheduler = AsyncIOScheduler(timezone=self.config.tz)
        self._register_jobs()
        self.scheduler.start()
        self.notifier.ready(f"polling {len(self.config.feeds)} feeds")
        log.info("daemon started", feeds=len(self.config.feeds), config=str(self.config_path))
        await self._stopping.wait()
        await self._shutdown()
        return 0

    def _register_jobs(self) -> None:
        self.scheduler.add_job(
            self._poll_tick,
            IntervalTrigger(seconds=POLL_TICK_SECONDS, timezone=self.config.tz),
            id="poll",
            next_run_time=utcnow(),
            max_instances=2,
            coalesce=True,
            replace_existing=True,
        )
        if self.notifier.watchdog_interval:
            self.scheduler.add_job(
                self.notifier.watchdog,
                IntervalTrigger(seconds=self.notifier.watchdog_interval, timezone=self.config.tz),
                id="watchdog",
                replace_existing=True,
            )
        self.scheduler.add_job(
            self._outbox_tick,
            IntervalTrigger(seconds=OUTBOX_TICK_SECONDS, timezone=self.config.tz),
            id="outbox",
            next_run_time=utcnow(),
            max_instances=1,
            coalesce=True,
            replace_existing=True,
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
        for register in self.extra_jobs:
            register(self, self.scheduler)

    async def _catch_up(self, digest_id: str) -> None:
        """A digest whose time passed while the daemon was down is built once now."""
        digest = next(d for d in self.config.digests if d.id == digest_id)
        slot = notify.missed_slot(self.store, digest, self.config.tz, utcnow())
        if slot is not None:
            log.info("building a digest missed while stopped", digest_id=digest_id, slot=slot.isoformat())
            await asyncio.to_thread(notify.build_digest, self.store, self.config, digest, slot)
            await self._outbox_tick()

    async def _digest_job(self, digest_id: str) -> None:
        digest = next((d for d in self.config.digests if d.id == digest_id), None)
        if digest is None:
            return
        slot = notify.latest_slot(digest.at, self.config.tz, utcnow())
        try:
            await asyncio.to_thread(notify.build_digest, self.store, self.config, digest, slot)
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
            await notify.send_due(self.store, self.config)
        except Exception:  # noqa: BLE001 (one failed tick must not stop the service)
            log.exception("outbox tick failed")

    async def _poll_tick(self) -> None:
        """Poll what the database says is due; tracked so that shutdown can wait for it."""
        if self._stopping.is_set():
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.poller.poll_due()
        except Exception:  # noqa: BLE001 (one failed pass must not stop the service)
            log.exception("polling pass failed")
        finally:
            if task is not None:
                self._tasks.discard(task)

    def request_stop(self, signame: str) -> None:
        if not self._stopping.is_set():
            log.info("stopping", signal=signame)
            self.notifier.stopping()
            self._stopping.set()

    async def _shutdown(self) -> None:
        """Stop taking new work, give in-flight polls a moment, then cancel them: each
        feed's poll commits in one transaction, so a cancelled one simply never happened."""
        self.scheduler.shutdown(wait=False)
        pending = {task for task in self._tasks if not task.done()}
        if pending:
            _, still = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in still:
                task.cancel()
            with suppress(asyncio.CancelledError):
                await asyncio.gather(*still, return_exceptions=True)
        await self.poller.__aexit__(None, None, None)
        self.store.engine.dispose()
        log.info("daemon stopped")

    async def reload(self) -> None:
        """SIGHUP: re-read and re-validate the config; a bad one is rejected, the old kept."""
        try:
            new_config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config reload rejected; keeping the running config", error=str(exc))
            return
        self.notifier.notify("RELOADING=1")
        old_poller = self.poller
        self.config = new_config
        self.store.sync_feeds(new_config.feeds, new_config.polling.interval, utcnow())
        self.poller = await Poller(new_config, self.store).__aenter__()
        self._register_jobs()
        await old_poller.__aexit__(None, None, None)
        self.notifier.ready(f"polling {len(new_config.feeds)} feeds")
        log.info("config reloaded", feeds=len(new_config.feeds))

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
