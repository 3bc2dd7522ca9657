"""Soak benchmark (#13): `monitor run` over a large loopback farm for a long time; does the
daemon's memory stay flat and does it leak descriptors, threads or database connections?

    flock /tmp/bench.lock .venv/bin/python bench/soak_bench.py [--feeds 2000] [--items 20]
        [--interval 60] [--duration 3600] [--sample 30] [--change-share 0.2] [--new-items 2]
        [--database postgresql://postgres@127.0.0.1:5432/test] [--server nginx|python]

Serves FEEDS RSS files (poll_bench's Arabic items, ~2 % about the dialogues) from nginx on
127.0.0.1 and starts `monitor run` as a subprocess with every feed at --interval. Between
polls the feeds change: every --interval, --change-share of the feeds get --new-items new
items (the oldest go), so each pass fetches 304s and new articles alike and the archive
grows as a real one does. Every --sample seconds it reads the daemon's RSS, its open
descriptors (/proc/PID/fd), its threads, the parse workers' RSS, the articles stored and, on
PostgreSQL, the rows of pg_stat_activity for the daemon's database. At the end (or Ctrl-C)
it stops the daemon with SIGTERM and prints the series and a verdict: the slopes of RSS and
descriptors over the run after the first pass (least squares), with the ranges.
SQLite by default (a new file); --database makes a new database on that PostgreSQL server,
dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from email.utils import format_datetime
from xml.sax.saxutils import escape
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sqlalchemy import create_engine, text  # noqa: E402

from poll_bench import (  # noqa: E402
    CORPUS,
    Nginx,
    PythonServer,
    corpus_articles,
    filler_vocabulary,
    fresh_database,
    make_items,
)


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the daemon started
    rss_mb: float
    fds: int
    threads: int
    workers: int
    workers_mb: float
    articles: int | None
    connections: int | None  # pg_stat_activity rows for the daemon's database


class Farm:
    """The feed files, and the changes between polls: a feed that changes drops its oldest
    items and gains new ones (a new file, so nginx gives it a new ETag)."""

    def __init__(self, root: Path, feeds: int, items: int, seed: int = 20261126):
        self.root, self.items = root, items
        self.rng = random.Random(seed)
        articles = corpus_articles(CORPUS)
        self.articles, self.vocabulary = articles, filler_vocabulary(articles)
        self.feeds = [make_items(feed, items, articles, self.vocabulary, self.rng) for feed in range(feeds)]
        self.next_item = [items] * feeds
        for feed in range(feeds):
            self._write(feed)

    def _write(self, feed: int) -> None:
        path = self.root / f"f{feed}.xml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(feed_xml(feed, self.feeds[feed]))
        tmp.replace(path)  # whole or not at all: nginx never serves half a file

    def change(self, share: float, new_items: int) -> int:
        now = datetime.now(UTC)
        changed = self.rng.sample(range(len(self.feeds)), int(share * len(self.feeds)))
        for feed in changed:
            fresh = make_items(feed, new_items, self.articles, self.vocabulary, self.rng)
            for item in fresh:
                item["guid"] = f"https://news{feed % 40}.example/{feed}/{self.next_item[feed]}"
                item["body"] = f"{item['body']} [{feed}-{self.next_item[feed]}]"
                item["published"] = now - timedelta(seconds=self.rng.randint(0, 600))
                self.next_item[feed] += 1
            self.feeds[feed] = (fresh + self.feeds[feed])[: self.items]
            self._write(feed)
        return len(changed)


def feed_xml(feed: int, items: list[dict]) -> bytes:
    """Each item's link is its guid (poll_bench's rss() numbers links by position: a feed's
    new first item would carry its old first item's link and be taken for it)."""
    entries = "".join(
        f"<item><title>{escape(it['title'])}</title><link>{escape(it['guid'])}</link><guid>{escape(it['guid'])}</guid>"
        f"<pubDate>{format_datetime(it['published'])}</pubDate><description>{escape(it['body'])}</description></item>"
        for it in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>feed {feed}</title>'
            f"<link>https://news.example/{feed}</link><description>soak</description>{entries}</channel></rss>").encode("utf-8")


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def children(pid: int) -> list[int]:
    """Every descendant of pid (the parse workers are children of multiprocessing's
    forkserver, itself a child of the daemon)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int(proc_status(int(entry.name))["PPid"])
        except (OSError, KeyError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sample(pid: int, started: float, db_engine, pg_name: str | None) -> Sample:  # noqa: ANN001
    status = proc_status(pid)
    workers_mb, workers = 0.0, 0
    for child in children(pid):
        try:
            workers_mb += int(proc_status(child)["VmRSS"].split()[0]) / 1024
            workers += 1
        except (OSError, KeyError):
            continue
    articles = connections = None
    try:
        with db_engine.connect() as connection:
            articles = connection.execute(text("SELECT count(*) FROM article")).scalar()
            if pg_name:
                connections = connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                    {"d": pg_name},
                ).scalar()
    except Exception:  # noqa: BLE001 (the schema may not exist yet in the first seconds)
        pass
    return Sample(
        t=time.monotonic() - started,
        rss_mb=int(status["VmRSS"].split()[0]) / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
        workers=workers,
        workers_mb=workers_mb,
        articles=articles,
        connections=connections,
    )


def slope_per_hour(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


def idle_floor(samples: list[Sample], window: float) -> tuple[list[float], list[float]]:
    """The fewest descriptors in each window of one interval: connections in flight come and
    go within a pass, a leak raises the floor."""
    floors: dict[int, Sample] = {}
    for s in samples:
        key = int(s.t // window)
        if key not in floors or s.fds < floors[key].fds:
            floors[key] = s
    return [s.t for s in floors.values()], [float(s.fds) for s in floors.values()]


def verdict(samples: list[Sample], settle: float, window: float) -> list[str]:
    steady = [s for s in samples if s.t >= settle] or samples
    xs = [s.t for s in steady]
    lines = []
    for name, times, values, unit, limit in (
        ("daemon RSS", xs, [s.rss_mb for s in steady], "MB", 20.0),
        ("parse workers' RSS", xs, [s.workers_mb for s in steady], "MB", 40.0),
        ("descriptors (floor)", *idle_floor(steady, window), "", 30.0),
        ("threads", xs, [float(s.threads) for s in steady], "", 2.0),
    ):
        slope = slope_per_hour(times, values)
        flat = slope <= limit  # shrinking is no leak
        lines.append(
            f"{name:20} {min(values):8.1f} .. {max(values):8.1f} {unit:2}  slope {slope:+8.2f} {unit}/h"
            f"  -> {'flat' if flat else 'GROWS'} (limit {limit:g} {unit}/h)"
        )
    third = max(1, len(steady) // 3)
    first, last = min(s.fds for s in steady[:third]), min(s.fds for s in steady[-third:])
    lines.append(f"{'descriptors':20} floor {first} in the first third, {last} in the last third"
                 f"  -> {'no leak' if last - first <= 2 else 'LEAK'} (a leak of one per pass adds one a minute)")
    connections = [s.connections for s in steady if s.connections is not None]
    if connections:
        lines.append(f"{'PG connections':20} {min(connections):8d} .. {max(connections):8d}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--interval", type=int, default=60, help="seconds between two polls of a feed")
    parser.add_argument("--duration", type=int, default=3600, help="seconds the daemon runs")
    parser.add_argument("--sample", type=int, default=30, help="seconds between samples")
    parser.add_argument("--change-share", type=float, default=0.2, help="share of the feeds that change per interval")
    parser.add_argument("--new-items", type=int, default=2, help="new items in a feed that changes")
    parser.add_argument("--database", metavar="URL", help="a PostgreSQL server: the daemon gets a new database there")
    parser.add_argument("--server", choices=["nginx", "python"], default="nginx" if shutil.which("nginx") else "python")
    parser.add_argument("--workers", type=int, default=0, help="[polling] parse_workers (0 = one per core)")
    parser.add_argument("--keep-log", type=Path, help="copy the daemon's log here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soak-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        root = work / "www"
        root.mkdir()
        print(f"writing {args.feeds} feeds x {args.items} items ...", flush=True)
        farm = Farm(root, args.feeds, args.items)
        server = Nginx(root, work) if args.server == "nginx" else PythonServer(root, work)
        try:
            with fresh_database(args.database, work / "state") as database_url:
                run(args, work, farm, server.port, database_url)
        finally:
            server.stop()


def run(args: argparse.Namespace, work: Path, farm: Farm, port: int, database_url: str) -> None:
    rules = (REPO / "config" / "monitor.toml").read_text(encoding="utf-8")
    rules = rules[rules.index("# === RELEVANCE RULES"):]
    feeds = "".join(f'[[feeds]]\nid = "f{i}"\nurl = "http://127.0.0.1:{port}/f{i}.xml"\n' for i in range(args.feeds))
    config = work / "soak.toml"
    config.write_text(
        f'[monitor]\nstate_dir = "{work}/state"\nlog_level = "warning"\n[database]\nurl = "{database_url}"\n'
        f'[polling]\ninterval = "{args.interval}s"\nconcurrency = 16\nper_host = 16\nparse_workers = {args.workers}\n'
        f"{feeds}\n{rules}",
        encoding="utf-8",
    )
    log_path = work / "daemon.log"
    pg_name = database_url.rsplit("/", 1)[1] if database_url.startswith("postgresql") else None
    # read-only on SQLite, so that a sample taken before the daemon made the file never creates it
    db_engine = create_engine(database_url if pg_name else database_url.replace("sqlite:///", "sqlite:///file:") + "?mode=ro&uri=true")
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"], cwd=REPO, stdout=log, stderr=log,
        )
    started = time.monotonic()
    stop = threading.Event()

    def changer() -> None:
        while not stop.wait(args.interval):
            farm.change(args.change_share, args.new_items)

    thread = threading.Thread(target=changer, daemon=True)
    thread.start()
    samples: list[Sample] = []
    print(f"daemon pid {daemon.pid}: {args.feeds} feeds every {args.interval} s for {args.duration} s,"
          f" {args.change_share:.0%} of them with {args.new_items} new items per interval", flush=True)
    print(f"{'t (s)':>7} {'RSS MB':>8} {'fds':>5} {'thr':>4} {'workers':>7} {'wrk MB':>7} {'articles':>9} {'PG conns':>8}", flush=True)
    try:
        while time.monotonic() - started < args.duration:
            time.sleep(min(args.sample, max(0.0, args.duration - (time.monotonic() - started))))
            if daemon.poll() is not None:
                print(f"the daemon exited with status {daemon.returncode}; see its log", flush=True)
                break
            s = sample(daemon.pid, started, db_engine, pg_name)
            samples.append(s)
            print(f"{s.t:7.0f} {s.rss_mb:8.1f} {s.fds:5d} {s.threads:4d} {s.workers:7d} {s.workers_mb:7.1f}"
                  f" {s.articles if s.articles is not None else '-':>9} {s.connections if s.connections is not None else '-':>8}",
                  flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping the daemon", flush=True)
    finally:
        stop.set()
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        db_engine.dispose()
        if args.keep_log:
            shutil.copyfile(log_path, args.keep_log)
    errors = [line for line in log_path.read_text(errors="replace").splitlines()
              if '"level": "error"' in line or "Traceback" in line]
    print(f"daemon exit status {daemon.returncode}; {len(errors)} log lines mention an error"
          + (f", first: {errors[0][:200]}" if errors else ""))
    if samples:
        settle = max(2 * args.interval, samples[0].t)
        print(f"verdict over t >= {settle:.0f} s ({len([s for s in samples if s.t >= settle])} samples):")
        for line in verdict(samples, settle, args.interval):
            print("  " + line)


if __name__ == "__main__":
    main()
