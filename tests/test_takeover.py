"""Two `monitor run` daemons on one PostgreSQL database, "on two hosts", and a SIGKILL.

What the leases promise (issue #13, "Take-over and leases"): while both daemons run, each
feed is fetched once per interval by one of them, never by both at once, even a feed whose
fetch outlasts the lease (the heartbeat renews it); no article is stored twice and the
digest slot is sent once. When one daemon is killed, the survivor polls the dead one's
feeds, the one it was in the middle of fetching included, once that lease has run out
(lease after its last renewal, plus a tick). The daemons record different host names
(MONITOR_LEASE_HOST), so the single-host fast path (a dead pid of this host frees its
leases at once) does not apply: only the lease's expiry hands the feeds over. Requests are
told apart by User-Agent.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from monitor.config import load_config
from monitor.daemon import open_store
from monitor.models import Article, DigestRun
from monitor.store import Store
from tests.conftest import POSTGRES_SKIP, POSTGRES_URL, REPO, _fresh_postgres_database, write_config
from tests.feedserver import FeedServer, RecordedRequest
from tests.test_poll import RELEVANT_BODY, RELEVANT_TITLE, filler, item, rss
from tests.webhookreceiver import WebhookReceiver, new_secret

# Slow: the digest's slot is a wall-clock minute (HH:MM), up to a minute away.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.skipif(not POSTGRES_URL, reason=POSTGRES_SKIP)]

LEASE = 6.0  # seconds: [monitor] lease
HEARTBEAT = 1.0  # [monitor] lease_heartbeat
INTERVAL = 3.0  # [polling] interval
TICK = 1.0  # [polling] tick
SLOW = 8.0  # the slow feeds answer after this long: longer than the lease
SLACK = 3.0  # process scheduling, the database thread, a claim landing just after a tick
FEEDS = [f"/fast{i}.xml" for i in range(6)] + [f"/slow{i}.xml" for i in range(2)]
AGENTS = {"takeover-a": "a", "takeover-b": "b"}


@dataclass
class Span:
    """One request: its path, the daemon that sent it, when it arrived and was answered."""

    path: str
    daemon: str
    start: float  # time.monotonic()
    end: float = math.inf  # still being answered


class SpanServer(FeedServer):
    """The test feed server, also recording each request's span with its path and sender."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []
        self._current = threading.local()
        current = self._current

        class Intervals(list):  # the handler appends (arrived, done) here, from its own thread
            def append(self, interval: tuple[float, float]) -> None:
                super().append(interval)
                span: Span | None = getattr(current, "span", None)
                if span is not None:
                    span.end = interval[1]

        self.intervals = Intervals()

    def _record(self, request: RecordedRequest):  # noqa: ANN202 (FeedServer's)
        span = Span(request.path, AGENTS.get(request.headers.get("user-agent", ""), "?"), time.monotonic())
        self._current.span = span
        with self._lock:
            self.spans.append(span)
        return super()._record(request)

    def spans_of(self, path: str, daemon: str | None = None) -> list[Span]:
        with self._lock:
            chosen = [s for s in self.spans if s.path == path and daemon in (None, s.daemon)]
        return sorted(chosen, key=lambda span: span.start)

    def in_slow_fetch(self) -> Span | None:
        """A slow fetch that started over a second ago and has over a second left to run."""
        moment = time.monotonic()
        for path in FEEDS:
            for span in self.spans_of(path):
                if path.startswith("/slow") and span.start <= moment - 1 and moment < span.start + SLOW - 1:
                    return span
        return None


def config_body(server: FeedServer, hook: WebhookReceiver, db_url: str, daemon: str, slot: str) -> str:
    """The [monitor] keys continue the section write_config opens."""
    return f"""lease = "{LEASE:g}s"
lease_heartbeat = "{HEARTBEAT:g}s"
timezone = "UTC"

[database]
url = "{db_url}"

[polling]
interval = "{INTERVAL:g}s"
tick = "{TICK:g}s"
timeout = "15s"
parse_workers = 1
per_host = 16
user_agent = "takeover-{daemon}"

[[channels]]
id = "hook"
type = "webhook"
url = "{hook.url}"
secret_env = "HOOK_SECRET"
timeout = "5s"

[[digests]]
id = "daily"
at = "{slot}"
watches = ["kw-us", "kw-uk"]
channels = ["hook"]
send_empty = true
""" + "".join(f'[[feeds]]\nid = "f{i}"\nurl = "{server.url(path)}"\nfull_text = "never"\n' for i, path in enumerate(FEEDS))


def publish(server: FeedServer, entries: int) -> int:
    """Each feed with `entries` entries (feed 0 also a story the default rules flag, for the
    digest); the slow feeds answer after SLOW seconds. Returns the number of entries in all."""
    total = 0
    for index, path in enumerate(FEEDS):
        items = [filler(index, n) for n in range(entries)]
        if index == 0:
            items.append(item("https://kuna.example/a/dialogue", RELEVANT_TITLE, RELEVANT_BODY))
        server.route(path, rss(items), delay=SLOW if path.startswith("/slow") else 0.0)
        total += len(items)
    return total


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.05)


def log_of(directory: Path, daemon: str) -> str:
    return (directory / f"{daemon}.log").read_text(encoding="utf-8", errors="replace")


def count(store: Store, table: type) -> int:
    with store.session() as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_two_daemons_share_the_feeds_and_a_survivor_takes_over_within_the_lease(tmp_path: Path) -> None:
    database = _fresh_postgres_database()
    db_url = next(database)
    server = SpanServer().start()
    hook = WebhookReceiver(new_secret())
    environ = {**os.environ, "HOOK_SECRET": hook.secret}
    daemons: dict[str, subprocess.Popen[bytes]] = {}
    store: Store | None = None
    try:
        publish(server, 3)
        later = f"{datetime.now(UTC) + timedelta(hours=12):%H:%M}"  # the digest's real slot is set below
        configs = {name: write_config(tmp_path / name, config_body(server, hook, db_url, name, later)) for name in "ab"}
        store = open_store(load_config(configs["a"], environ))  # migrated once, before two daemons start on it
        for name, config in configs.items():
            with (tmp_path / f"{name}.log").open("wb") as log_file:
                daemons[name] = subprocess.Popen(
                    [sys.executable, "-m", "monitor", "--config", str(config), "run"], cwd=REPO,
                    env={**environ, "MONITOR_LEASE_HOST": f"host-{name}"}, stdout=subprocess.DEVNULL, stderr=log_file,
                )
        wait_for(lambda: {s.daemon for s in server.spans} >= {"a", "b"}, 90, "both daemons polling")
        started = time.monotonic()

        # A digest slot at the next minute boundary, some seconds ahead: set by a reload (SIGHUP)
        # so that the test does not wait for a boundary chosen before the daemons were up.
        now = datetime.now(UTC)
        slot = (now + timedelta(seconds=70)).replace(second=0, microsecond=0)
        slot_reached = time.monotonic() + (slot - now).total_seconds()
        for name, config in configs.items():
            write_config(tmp_path / name, config_body(server, hook, db_url, name, f"{slot:%H:%M}"))
            daemons[name].send_signal(signal.SIGHUP)
        wait_for(lambda: all("config reloaded" in log_of(tmp_path, name) for name in "ab"), 15, "the reloads")
        assert time.monotonic() < slot_reached, "the reloads took longer than the minute boundary was away"

        # Both run through the digest's slot and through slow fetches longer than the lease.
        wait_for(lambda: [a for a in hook.accepted if a.payload["type"] == "digest.published"],
                 slot_reached + 20 - time.monotonic(), "the slot's digest")
        wait_for(lambda: all(any(s.end - s.start >= SLOW for s in server.spans_of(p)) for p in FEEDS[6:]),
                 3 * (SLOW + INTERVAL), "a finished slow fetch of each slow feed")

        # SIGKILL the daemon in the middle of a slow fetch: it holds that feed's lease.
        wait_for(server.in_slow_fetch, SLOW + INTERVAL + 2, "a slow fetch in flight")
        held = server.in_slow_fetch()
        assert held is not None
        victim = held.daemon
        survivor = "b" if victim == "a" else "a"
        daemons[victim].send_signal(signal.SIGKILL)
        daemons[victim].wait(10)
        killed = time.monotonic()
        shared = killed - started
        total = publish(server, 5)  # new entries everywhere: the survivor stores them all

        def taken_over(path: str) -> float | None:
            after = [s.start for s in server.spans_of(path, survivor) if s.start > killed]
            return after[0] - killed if after else None

        wait_for(lambda: taken_over(held.path) is not None, LEASE + INTERVAL + 2 * SLACK, "the take-over")
        wait_for(lambda: all(taken_over(p) is not None for p in FEEDS), 2 * SLOW + INTERVAL, "every feed polled again")
        wait_for(lambda: count(store, Article) == total, 2 * SLOW + INTERVAL, "every entry stored")
        takeover = taken_over(held.path)
        every_feed = max(taken_over(p) or 0.0 for p in FEEDS)
        print(f"\ntake-over: the feed the killed daemon was fetching was polled by the survivor {takeover:.2f} s "
              f"after SIGKILL, every feed within {every_feed:.2f} s (lease {LEASE:g} s, heartbeat {HEARTBEAT:g} s, "
              f"interval {INTERVAL:g} s, tick {TICK:g} s; both daemons had run {shared:.1f} s)")
        daemons[survivor].send_signal(signal.SIGTERM)
        assert daemons[survivor].wait(15) == 0
    finally:
        for process in daemons.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        hook.stop()
        server.close()
        if store is not None:
            runs, stored = count(store, DigestRun), count(store, Article)
            store.engine.dispose()
        next(database, None)  # drops the database

    # The dead daemon's lease passed on once it had run out (not at once: another host's
    # pid means nothing here), and within a tick or so of that.
    assert takeover is not None and LEASE - HEARTBEAT - SLACK <= takeover <= LEASE + TICK + SLACK
    for path in FEEDS:
        spans = server.spans_of(path)
        for span in spans:
            if span.daemon == victim:
                span.end = min(span.end, killed)  # a dead daemon's request ends with it
        for before, after in zip(spans, spans[1:]):
            assert after.start >= before.end, f"{path} fetched by {before.daemon} and {after.daemon} at once"
            # Due `interval` (±5 % jitter) after the last poll's start: never twice in one interval.
            assert after.start - before.start >= 0.95 * INTERVAL - 0.3, f"{path} fetched twice in one interval: {spans}"
    assert {s.daemon for s in server.spans} == {"a", "b"}  # both shared the work (no stranger, no "?")
    assert {s.daemon for s in server.spans if s.start < killed} == {"a", "b"}
    assert stored == total  # each entry once: the survivor stored the new ones, nothing twice
    digests = [a for a in hook.accepted if a.payload["type"] == "digest.published"]
    assert runs == 1 and len(digests) == 1  # the slot built once (two daemons raced for it) and sent once
    assert digests[0].payload["data"]["total"] == 1  # with the flagged story
    survivor_log = log_of(tmp_path, survivor)
    assert "Traceback" not in survivor_log and "result dropped" not in survivor_log
