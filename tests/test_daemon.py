"""The daemon as systemd runs it: reloads during polls, stops during polls, a dead daemon's
claims, its worker processes, and a watchdog that is pinged only while polling progresses.
Each test runs the real `monitor run` against a real HTTP server on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select, update

from monitor.daemon import STALL_INTERVALS, open_store, polling_stall
from monitor.models import Article, Feed, utcnow
from monitor.store import HOST, Store
from tests.conftest import REPO, make_config, write_config
from tests.feedserver import FeedServer, feed_server  # noqa: F401
from tests.test_poll import filler, rss

# Fast ticks and short intervals keep these end-to-end runs to seconds.
POLLING = '[polling]\nparse_workers = {workers}\ntimeout = "10s"\ninterval = "{interval}"\ntick = "1s"\n'


def feeds_toml(server: FeedServer, paths: list[str], *, workers: int = 1, interval: str = "15m") -> str:
    return POLLING.format(workers=workers, interval=interval) + "".join(
        f'[[feeds]]\nid = "f{i}"\nurl = "{server.url(path)}"\n' for i, path in enumerate(paths)
    )


def start_daemon(config_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config_path), "run"],
        cwd=REPO, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def stop_daemon(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert process.stderr is not None
    return process.stderr.read()


def wait_for(condition: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def articles(store: Store) -> set[tuple[str, str]]:
    with store.session() as session:
        return set(session.exec(select(Article.feed_id, Article.guid)).all())


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "process-pool"])
def test_sighup_storm_during_polls_never_stops_polling(tmp_path: Path, feed_server: FeedServer, workers: int) -> None:  # noqa: F811
    paths = [f"/s{i}.xml" for i in range(4)]
    for i, path in enumerate(paths):
        feed_server.route(path, rss([filler(i, n) for n in range(3)]), delay=2.0 * i)  # answers after 0-6 s
    body = feeds_toml(feed_server, paths, interval="3s", workers=workers)
    config_path = write_config(tmp_path, body)
    store = open_store(make_config(tmp_path, body))
    process = start_daemon(config_path)
    try:
        wait_for(lambda: feed_server.hits(paths[3]) >= 1)  # the slowest feed is claimed and in flight
        for _ in range(5):
            process.send_signal(signal.SIGHUP)
            time.sleep(0.2)
        time.sleep(3)  # a second storm while the next polls are in flight
        for _ in range(5):
            process.send_signal(signal.SIGHUP)
            time.sleep(0.1)
        after_storm = {path: feed_server.hits(path) for path in paths}
        # New items published after the storm: every feed is polled again and recorded.
        for i, path in enumerate(paths):
            feed_server.route(path, rss([filler(i, n) for n in range(5)]), delay=2.0 * i)
        wait_for(lambda: all(feed_server.hits(p) > after_storm[p] for p in paths))
        wait_for(lambda: len(articles(store)) == 20)
        helpers = descendants(process.pid)
    finally:
        stderr = stop_daemon(process)
        store.engine.dispose()
    # Retired pollers closed their process pools: after the storm only the current one's
    # workers (and the forkserver, resource tracker) were left, and they end with the daemon.
    assert len(helpers) <= (workers + 2 if workers > 1 else 0)
    wait_for(lambda: not alive(helpers), timeout=15)
    assert "config reloaded" in stderr
    assert "cannot schedule new futures" not in stderr and "Traceback" not in stderr
    assert "maximum number of running instances" not in stderr


def test_sigterm_lets_an_in_flight_poll_finish_within_the_grace_period(
    tmp_path: Path, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.route("/slow.xml", rss([filler(1, n) for n in range(4)]), delay=2.0)
    body = feeds_toml(feed_server, ["/slow.xml"])
    process = start_daemon(write_config(tmp_path, body))
    wait_for(lambda: feed_server.hits("/slow.xml") >= 1)
    time.sleep(0.3)
    started = time.monotonic()
    stderr = stop_daemon(process)
    assert time.monotonic() - started < 10
    store = open_store(make_config(tmp_path, body))
    assert len(articles(store)) == 4  # finished and recorded, not cancelled
    with store.session() as session:
        assert session.exec(select(Feed.lease_owner)).all() == [None]
    store.engine.dispose()
    assert "CancelledError" not in stderr and "Traceback" not in stderr


def test_sigterm_abandons_a_poll_that_outlasts_the_grace_period_cleanly(
    tmp_path: Path, feed_server: FeedServer  # noqa: F811
) -> None:
    feed_server.route("/stuck.xml", rss([filler(1, 1)]), delay=30.0)
    body = feeds_toml(feed_server, ["/stuck.xml"]).replace('timeout = "10s"', 'timeout = "20s"')
    process = start_daemon(write_config(tmp_path, body))
    wait_for(lambda: feed_server.hits("/stuck.xml") >= 1)
    stderr = stop_daemon(process)
    assert "polling pass abandoned at shutdown" in stderr
    assert "CancelledError" not in stderr and "Traceback" not in stderr
    store = open_store(make_config(tmp_path, body))
    with store.session() as session:
        assert session.exec(select(Feed.lease_owner)).all() == [None]  # given back, polled at the next start
    store.engine.dispose()


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_running_daemon_takes_over_the_claims_of_a_dead_one(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/mine.xml", rss([filler(1, 1)]))
    feed_server.route("/orphan.xml", rss([filler(2, 1)]))
    body = feeds_toml(feed_server, ["/mine.xml", "/orphan.xml"])
    store = open_store(make_config(tmp_path, body))
    process = start_daemon(write_config(tmp_path, body))
    try:
        wait_for(lambda: feed_server.hits("/orphan.xml") == 1 and len(articles(store)) == 2)
        # Meanwhile a second daemon of this host claimed f1, which is due again, and was killed.
        feed_server.route("/orphan.xml", rss([filler(2, 1), filler(2, 2)]))
        with store.session() as session:
            session.exec(update(Feed).where(Feed.id == "f1").values(
                next_poll_at=utcnow(), lease_owner=f"{HOST}:{dead_pid()}", lease_until=utcnow() + timedelta(minutes=10)))
            session.commit()
        # Freed by the running daemon's next ticks, not after the 10-minute lease.
        wait_for(lambda: len(articles(store)) == 3, timeout=15)
    finally:
        stop_daemon(process)
    assert feed_server.hits("/orphan.xml") == 2
    store.engine.dispose()


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


def test_worker_processes_exit_when_the_daemon_is_sigkilled(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/w.xml", rss([filler(1, n) for n in range(3)]))
    process = start_daemon(write_config(tmp_path, feeds_toml(feed_server, ["/w.xml"], workers=2)))
    wait_for(lambda: feed_server.hits("/w.xml") >= 1)
    wait_for(lambda: len(descendants(process.pid)) >= 3)  # forkserver, two workers (and the resource tracker)
    helpers = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    # Orphans are re-parented, so they are followed by pid from here on.
    wait_for(lambda: not alive(helpers), timeout=15)


# -- the watchdog's judgement, on a real database ---------------------------------------------


def test_polling_stall_is_seen_from_overdue_feeds_and_from_claims_that_stopped(tmp_path: Path) -> None:
    config = make_config(tmp_path, '[polling]\ninterval = "1m"\n[[feeds]]\nid = "a"\nurl = "https://a.example/f"\n'
                                   '[[feeds]]\nid = "b"\nurl = "https://b.example/f"\ninterval = "10m"\n')
    store = open_store(config)
    now = utcnow()
    assert polling_stall(store, config, since_last_claim=5, now=now) is None

    with store.session() as session:  # due for longer than STALL_INTERVALS of its 1-minute interval
        session.exec(update(Feed).where(Feed.id == "a").values(next_poll_at=now - timedelta(minutes=STALL_INTERVALS + 1)))
        session.exec(update(Feed).where(Feed.id == "b").values(next_poll_at=now - timedelta(minutes=STALL_INTERVALS + 1)))
        session.commit()
    reason = polling_stall(store, config, since_last_claim=5, now=now)
    assert reason is not None and "a" in reason.split(": ")[-1].split(", ") and "b" not in reason.split(": ")[-1].split(", ")

    with store.session() as session:  # held by a live poller: that one is working on it
        session.exec(update(Feed).where(Feed.id == "a").values(lease_owner="x:1", lease_until=now + timedelta(minutes=5)))
        session.commit()
    assert polling_stall(store, config, since_last_claim=5, now=now) is None
    # This daemon has not claimed anything for more than STALL_INTERVALS of the shortest interval.
    reason = polling_stall(store, config, since_last_claim=STALL_INTERVALS * 60 + 1, now=now)
    assert reason is not None and "no due feeds claimed" in reason
    store.engine.dispose()


def test_watchdog_pings_while_polling_progresses(tmp_path: Path, feed_server: FeedServer) -> None:  # noqa: F811
    feed_server.route("/a.xml", rss([filler(1, 1)]))
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify_path))
        sock.settimeout(20)
        process = start_daemon(write_config(tmp_path, feeds_toml(feed_server, ["/a.xml"])),
                               env={"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"})
        try:
            messages = [sock.recv(4096) for _ in range(4)]
        finally:
            stderr = stop_daemon(process)
    assert messages[0].startswith(b"READY=1")
    assert messages[1:].count(b"WATCHDOG=1") >= 2
    assert "watchdog ping withheld" not in stderr


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_stop_signals_exit_zero(tmp_path: Path, feed_server: FeedServer, signame: str) -> None:  # noqa: F811
    feed_server.route("/a.xml", rss([filler(1, 1)]))
    process = start_daemon(write_config(tmp_path, feeds_toml(feed_server, ["/a.xml"])))
    wait_for(lambda: feed_server.hits("/a.xml") >= 1)
    process.send_signal(getattr(signal, signame))
    assert process.wait(15) == 0
