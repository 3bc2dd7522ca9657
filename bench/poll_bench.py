"""Polling benchmark: a cold and a warm pass over a local feed farm, against newsboat.

    .venv/bin/python bench/poll_bench.py [--feeds 500] [--items 40] [--rounds 3] [--concurrency 16]
                                         [--database PG_URL] [--server nginx|python]

Generates FEEDS RSS files of ITEMS Arabic items each (about 2% of the items concern the
Kuwait–US/UK dialogues, taken from the dev corpus; the rest is realistic filler built from
the corpus vocabulary), serves them from nginx on 127.0.0.1 (`apt-get install nginx`; falls
back to Python's threading HTTP server, which is slower and shares the CPU), then measures:

- cold pass: empty database (a new SQLite file, or with --database a new PostgreSQL database
  on that server), every item fetched, parsed, classified, deduplicated, stored;
- warm pass: the same feeds again; nginx answers 304 to the stored validators;
- peers, run in the same script over the same farm so the ratios do not depend on the
  machine: newsboat (C++, `apt-get install newsboat`; the peer issue 2's goal names) fetching
  and storing the farm cold then warm, and a naive sequential poller (httpx.Client +
  feedparser, no storage), and a bare async poller (httpx.AsyncClient + feedparser, the same
  concurrency, conditional GETs on its warm pass, no storage): the warm pass's peer.

With --database, SQLite rounds run too (alternating with the PostgreSQL ones) so that the
PostgreSQL/SQLite ratio comes from the same run. Prints every ratio issue 13's targets name,
items/s, CPU time (machine, this process, parse workers) and each process's peak memory. CPU time (machine, this process, parse workers) and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import resource
import shutil
import socket
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from email.utils import format_datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.arabic import normalize  # noqa: E402

if __name__ != "__mp_main__":
    # The parse workers import this script again (multiprocessing runs the main script in
    # each, as "__mp_main__"): they should cost what the daemon's do, whose main script
    # (monitor.cli) imports little beyond what the workers preload, not load a bench's peers.
    import feedparser
    import httpx
    import structlog
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.engine import make_url

    from monitor.config import load_config
    from monitor.daemon import open_store
    from monitor.poll import Poller
    from monitor.store import normalise_url

CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"


def corpus_articles(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def filler_vocabulary(articles: list[dict]) -> list[str]:
    """Filler is other news: the corpus vocabulary without the words that name Kuwait or KUNA
    (with them, every random article would look like a candidate, which news is not)."""
    return [
        word for a in articles for word in a["body"].split()
        # normalised, so that the corpus's spelling variants (Persian kaf and yeh: «کویت») go too
        if not any(key in normalize(word) for key in ("كويت", "كونا", "kuwait", "kuna"))
    ]


def make_items(feed: int, count: int, articles: list[dict], vocabulary: list[str], rng: random.Random) -> list[dict]:
    relevant = [a for a in articles if a["relevant"]]
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    items = []
    for i in range(count):
        if rng.random() < 0.02:
            source = rng.choice(relevant)
            title, body = source["title"], source["body"]
        else:
            title = " ".join(rng.choices(vocabulary, k=rng.randint(6, 12)))
            body = " ".join(rng.choices(vocabulary, k=rng.randint(250, 380)))  # about 2 KB
        items.append(
            {
                "guid": f"https://news{feed % 40}.example/{feed}/{i}",
                "title": title,
                "body": f"{body} [{feed}-{i}]",
                "published": start + timedelta(minutes=feed * count + i),
            }
        )
    return items


SHORT_TEXT = 400  # monitor.pipeline.SHORT_TEXT: a shorter item may have its article page fetched


def article_path(feed: int, index: int) -> str:
    return f"a/{feed}/{index}.html"


def article_page(item: dict) -> bytes:
    """The article page of an item whose feed text is short: the poller fetches such pages
    for items a watch might concern (full_text = "candidates", the default)."""
    return (
        f'<!DOCTYPE html><html lang="ar"><head><meta charset="utf-8"><title>{escape(item["title"])}</title></head>'
        f"<body><article><h1>{escape(item['title'])}</h1><p>{escape(item['body'])}</p></article></body></html>"
    ).encode("utf-8")


def rss(feed: int, items: list[dict], base: str = "https://news.example") -> bytes:
    """Links point to the farm (`base`), which serves the pages of the short items: with
    unresolvable links, each such page failed (after a DNS time-out) and was retried at every
    poll, so those feeds were never unchanged on a warm pass."""
    entries = "".join(
        f"<item><title>{escape(it['title'])}</title><link>{base}/{article_path(feed, i)}</link>"
        f"<guid>{escape(it['guid'])}</guid><pubDate>{format_datetime(it['published'])}</pubDate>"
        f"<description>{escape(it['body'])}</description></item>"
        for i, it in enumerate(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>feed {feed}</title>'
        f"<link>https://news.example/{feed}</link><description>bench</description>{entries}</channel></rss>"
    ).encode("utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Nginx:
    def __init__(self, root: Path, work: Path):
        self.port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(
            f"daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work};\n"
            f"  fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};\n"
            f"  types {{ application/rss+xml xml; }}\n"
            f"  server {{ listen 127.0.0.1:{self.port}; root {root}; etag on; }} }}\n"
        )
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)])
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(5)


class PythonServer:
    def __init__(self, root: Path, work: Path):
        handler = partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass(frozen=True)
class NewsboatRun:
    cold_s: float
    warm_s: float
    stored: int
    cold_cpu: float = 0.0  # newsboat's own CPU time (user + system), core-seconds
    warm_cpu: float = 0.0


def newsboat_peer(urls: list[str], work: Path, rounds: int) -> NewsboatRun | None:
    """The peer the performance goal names: newsboat (C++) fetching and storing the same farm
    into its SQLite cache, cold then warm, with its default settings (`-x reload`)."""
    if shutil.which("newsboat") is None:
        return None
    runs = []
    for round_number in range(rounds):
        home = work / f"newsboat{round_number}"
        home.mkdir()
        (home / "urls").write_text("".join(f"{url}\n" for url in urls), encoding="utf-8")
        (home / "config").write_text("", encoding="utf-8")
        command = [
            "newsboat", "-x", "reload", "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", str(home / "config")
        ]
        times, cpu = [], []
        for _ in ("cold", "warm"):
            started, cpu_before = time.perf_counter(), children_cpu_seconds()
            subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HOME": str(home)})
            times.append(time.perf_counter() - started)
            cpu.append(children_cpu_seconds() - cpu_before)
        with sqlite3.connect(home / "cache.db") as db:
            stored = db.execute("SELECT count(*) FROM rss_item").fetchone()[0]
        runs.append(NewsboatRun(cold_s=times[0], warm_s=times[1], stored=stored, cold_cpu=cpu[0], warm_cpu=cpu[1]))
    return NewsboatRun(
        cold_s=min(r.cold_s for r in runs), warm_s=min(r.warm_s for r in runs), stored=min(r.stored for r in runs),
        cold_cpu=min(r.cold_cpu for r in runs), warm_cpu=min(r.warm_cpu for r in runs),
    )


def children_cpu_seconds() -> float:
    """CPU time of this process's children that have exited (newsboat, once run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def naive_peer(urls: list[str]) -> tuple[float, int]:
    """The peer: fetch and parse each feed in turn, the way a first script would."""
    started = time.perf_counter()
    items = 0
    with httpx.Client(timeout=20) as client:
        for url in urls:
            items += len(feedparser.parse(client.get(url).content).entries)
    return time.perf_counter() - started, items


@dataclass(frozen=True)
class AsyncPeerRun:
    cold_s: float
    warm_s: float
    items: int
    not_modified: int
    cold_cpu: float = 0.0  # this process's CPU time during the pass, core-seconds
    warm_cpu: float = 0.0


def async_peer(urls: list[str], concurrency: int, rounds: int) -> AsyncPeerRun:
    """The warm pass's peer: a bare async poller (one httpx.AsyncClient, `concurrency` feeds
    at a time, feedparser in the event loop, nothing stored), cold then warm with the
    validators of its cold pass (If-None-Match / If-Modified-Since). Best of `rounds`."""
    runs = [asyncio.run(_async_peer_round(urls, concurrency)) for _ in range(rounds)]
    return AsyncPeerRun(
        cold_s=min(r.cold_s for r in runs), warm_s=min(r.warm_s for r in runs),
        items=min(r.items for r in runs), not_modified=min(r.not_modified for r in runs),
        cold_cpu=min(r.cold_cpu for r in runs), warm_cpu=min(r.warm_cpu for r in runs),
    )


async def _async_peer_round(urls: list[str], concurrency: int) -> AsyncPeerRun:
    slots = asyncio.Semaphore(concurrency)
    validators: dict[str, dict[str, str]] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:

        async def one(url: str) -> tuple[int, int]:
            async with slots:
                response = await client.get(url, headers=validators.get(url, {}))
            if response.status_code == 304:
                return 0, 1
            conditional = {}
            if "etag" in response.headers:
                conditional["If-None-Match"] = response.headers["etag"]
            if "last-modified" in response.headers:
                conditional["If-Modified-Since"] = response.headers["last-modified"]
            validators[url] = conditional
            return len(feedparser.parse(response.content).entries), 0

        started, cpu = time.perf_counter(), own_cpu_seconds()
        cold = await asyncio.gather(*(one(url) for url in urls))
        cold_s, cold_cpu = time.perf_counter() - started, own_cpu_seconds() - cpu
        started, cpu = time.perf_counter(), own_cpu_seconds()
        warm = await asyncio.gather(*(one(url) for url in urls))
        warm_s, warm_cpu = time.perf_counter() - started, own_cpu_seconds() - cpu
    return AsyncPeerRun(
        cold_s=cold_s, warm_s=warm_s, items=sum(n for n, _ in cold), not_modified=sum(m for _, m in warm),
        cold_cpu=cold_cpu, warm_cpu=warm_cpu,
    )


async def poll_all(config, store, ids: list[str], threads: dict | None = None) -> list:  # noqa: ANN001
    """One pass; with `threads`, the CPU time of each of this process's threads is put there
    at its end, before the poller's threads exit (thread_cpu_seconds)."""
    async with Poller(config, store) as poller:
        reports = await poller.poll_due(only=ids)
        if threads is not None:
            threads.update(thread_cpu_seconds())
        return reports


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine (all processes: ours, the parse workers, nginx)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds() -> float:
    """CPU time of this machine's PostgreSQL processes (backends, WAL writer, checkpointer):
    with --database, the server's share of the machine's time."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for process in Path("/proc").iterdir():
        try:
            if not process.name.isdigit() or (process / "comm").read_text().strip() != "postgres":
                continue
            stat = (process / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        total += int(stat[11]) + int(stat[12])
    return total / tick


def thread_cpu_seconds() -> dict[str, float]:
    """This process's CPU time by thread, "name (native id)" -> seconds (/proc/self/task)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {str(thread.native_id): thread.name for thread in threading.enumerate()}
    seconds: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds[f"{names.get(task.name, '?')} ({task.name})"] = (int(stat[11]) + int(stat[12])) / tick
    return seconds


def threads_used(before: dict[str, float], after: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """CPU used between two snapshots by thread name (pool threads summed, ids dropped),
    largest first; the bench's own /proc sampler ("Thread-N (_run)") is not the poller's."""
    by_name: dict[str, float] = {}
    for key, used in after.items():
        name = re.sub(r"_\d+$|-\d+$", "", key.rpartition(" (")[0])
        by_name[name] = by_name.get(name, 0.0) + used - before.get(key, 0.0)
    return tuple(sorted(((name, used) for name, used in by_name.items() if used >= 0.05), key=lambda item: -item[1]))


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class WorkerPeak:
    """Peak memory and CPU time of the parse workers during one pass: they are children of
    multiprocessing's forkserver, not of this process, so getrusage(RUSAGE_CHILDREN) never
    sees them; sample /proc instead (CPU time as last sampled, so up to one interval short
    per worker). Memory per process: peak RSS (VmHWM, the kernel's own peak) and the largest
    PSS sampled (proportional set size: pages shared with the forkserver and the sibling
    workers counted once over all of them, so the PSS of all processes adds up to what the
    poller really occupies). This process's PSS is sampled too."""

    INTERVAL = 0.25

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}  # pid -> peak RSS (VmHWM) in MB
        self.pss: dict[str, float] = {}  # pid -> largest PSS sampled, in MB ("self": this process)
        self._cpu: dict[str, float] = {}
        self._cpu_before: dict[str, float] = {}  # what the forkserver (long-lived) had used before
        self._ours: dict[str, bool] = {}  # pid -> a process of the poller's (asked once per pid)
        self.roles: dict[str, str] = {}  # pid -> "worker", "forkserver" or "tracker"
        self.own_cpu = 0.0  # this sampler's CPU time: in this process's, but not the poller's
        self._stop = threading.Event()
        self._sample(self._cpu_before)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            self._sample(self._cpu)
            self.own_cpu = time.thread_time()

    def _sample(self, cpu: dict[str, float]) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        self._sample_pss("self", Path("/proc/self"))
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            proc = Path("/proc", name)
            if name not in self._ours:  # reading every process's cmdline at every sample cost
                self._ours[name] = _descends_from_us(proc)  # ~1 core-s of this process per pass
                if self._ours[name]:
                    self.roles[name] = _role(proc)
            if not self._ours[name]:
                continue
            try:
                status = (proc / "status").read_text()
                stat = (proc / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            cpu[proc.name] = (int(stat[11]) + int(stat[12])) / tick  # utime + stime
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peaks[proc.name] = max(self.peaks.get(proc.name, 0.0), int(line.split()[1]) / 1024)
            self._sample_pss(proc.name, proc)

    def _sample_pss(self, key: str, proc: Path) -> None:
        try:
            rollup = (proc / "smaps_rollup").read_text()
        except OSError:
            return
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                self.pss[key] = max(self.pss.get(key, 0.0), int(line.split()[1]) / 1024)
                return

    def cpu_seconds(self) -> float:
        return sum(seconds - self._cpu_before.get(pid, 0.0) for pid, seconds in self._cpu.items())

    def stop(self) -> WorkerPeak:
        self._stop.set()
        self._thread.join()
        return self

    def worker_rss(self) -> tuple[float, ...]:
        """Each worker's peak RSS in MB, largest first (the forkserver and multiprocessing's
        resource tracker included: they are processes of the poller too)."""
        return tuple(sorted(self.peaks.values(), reverse=True))

    def parse_worker_rss(self) -> tuple[float, ...]:
        """The parse workers' peaks alone, largest first: what issue 13's memory target counts
        beside the main process."""
        return tuple(sorted((mb for pid, mb in self.peaks.items() if self.roles.get(pid) == "worker"), reverse=True))

    def helper_rss(self) -> dict[str, float]:
        """The forkserver's and the resource tracker's peaks (multiprocessing's own processes;
        the workers are forked from the forkserver, so much of its memory is theirs too)."""
        return {role: mb for pid, mb in self.peaks.items() if (role := self.roles.get(pid, "worker")) != "worker"}

    def total_pss(self) -> float:
        return sum(self.pss.values())


def _descends_from_us(proc: Path) -> bool:
    """A parse worker or the forkserver that starts them (nginx, also our child, is not)."""
    try:
        if b"multiprocessing" not in (proc / "cmdline").read_bytes():
            return False
    except OSError:
        return False
    me = str(os.getpid())
    for _ in range(4):
        ppid = _parent_pid(proc)
        if ppid is None:
            return False
        if ppid == me:
            return True
        proc = Path("/proc") / ppid
    return False


def _parent_pid(proc: Path) -> str | None:
    try:
        return next(line.split()[1] for line in (proc / "status").read_text().splitlines() if line.startswith("PPid:"))
    except (OSError, StopIteration):  # gone meanwhile
        return None


def _role(proc: Path) -> str:
    """multiprocessing's resource tracker, its forkserver (our child), or a parse worker (the
    forkserver's child: it has the forkserver's command line)."""
    try:
        if b"resource_tracker" in (proc / "cmdline").read_bytes():
            return "tracker"
    except OSError:
        return "worker"
    return "forkserver" if _parent_pid(proc) == str(os.getpid()) else "worker"


def reset_own_peak() -> None:
    """Start this process's peak RSS (VmHWM) afresh, so that each round's main-process figure
    is that round's, not the largest since the script started (Linux: clear_refs 5)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def own_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def own_peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StatementCount:
    """The statements the store sends in a pass, by kind: the writer must batch the same way
    on SQLite and PostgreSQL (one executemany per table per group, not a row at a time)."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.single = 0
        self.many = 0
        self.rows = 0
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if executemany:
            self.many += 1
            self.rows += len(parameters)
        else:
            self.single += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.single, self.many, self.rows

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--server", choices=["nginx", "python"], default="nginx" if shutil.which("nginx") else "python")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--workers", type=int, default=0, help="[polling] parse_workers (0 = one per core)")
    parser.add_argument(
        "--concurrency", type=int, default=16,
        help="[polling] concurrency, also used as per_host: the farm's one host stands for many (default: 16, the shipped default)",
    )
    parser.add_argument(
        "--database", metavar="URL",
        help="a PostgreSQL server URL (e.g. postgresql://postgres@127.0.0.1:5432/test): each round gets a"
        " database of its own there, and a SQLite round runs after each for the ratio; default: SQLite only",
    )
    parser.add_argument("--rounds", type=int, default=3, help="cold+warm rounds, each on a fresh database (default 3)")
    parser.add_argument("--skip-peer", action="store_true", help="skip the peers (newsboat, the naive and async pollers)")
    parser.add_argument("--skip-naive", action="store_true", help="skip the naive sequential peer only")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    with tempfile.TemporaryDirectory(prefix="poll-bench-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        work.chmod(0o755)  # nginx workers may run as an unprivileged user
        server = Nginx(root, work) if args.server == "nginx" else PythonServer(root, work)
        try:
            base = f"http://127.0.0.1:{server.port}"
            # Written by a child process: the farm's ~100 MB of strings would otherwise stay
            # in this process's heap and count in the main process's memory figures.
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as farm:
                total_items, pages = farm.submit(write_farm, root, base, args.feeds, args.items, args.corpus).result()
            print(f"  farm written: {total_items} items, {pages} article pages for the short ones", flush=True)
            urls = [f"{base}/f{feed}.xml" for feed in range(args.feeds)]
            feeds_toml = "".join(f'[[feeds]]\nid = "f{i}"\nurl = "{url}"\n' for i, url in enumerate(urls))
            rules = (REPO / "config" / "monitor.toml").read_text(encoding="utf-8")
            rules = rules[rules.index("# === RELEVANCE RULES"):]
            ids = [f"f{i}" for i in range(args.feeds)]
            runs: dict[str, list[Round]] = {}
            engines = [args.database, None] if args.database else [None]
            for round_number in range(args.rounds):
                for server_url in engines:
                    name = f"{'pg' if server_url else 'sqlite'}{round_number}"
                    config_path = work / f"bench-{name}.toml"
                    with fresh_database(server_url, work / f"state-{name}") as database_url:
                        config_path.write_text(
                            f'[monitor]\nstate_dir = "{work}/state-{name}"\n[database]\nurl = "{database_url}"\n'
                            f"[polling]\nconcurrency = {args.concurrency}\nper_host = {args.concurrency}\n"
                            f"parse_workers = {args.workers}\n{feeds_toml}\n{rules}",
                            encoding="utf-8",
                        )
                        engine = "postgresql" if server_url else "sqlite"
                        runs.setdefault(engine, []).append(one_round(load_config(config_path, {}), ids))
                        print(f"  round {round_number + 1} {engine}: {runs[engine][-1].brief()}", flush=True)
            peers = Peers()
            if not args.skip_peer:
                peers.asynchronous = async_peer(urls, args.concurrency, args.rounds)
                print(f"  async peer: cold {peers.asynchronous.cold_s:.2f} s, warm {peers.asynchronous.warm_s:.2f} s", flush=True)
                if not args.skip_naive:
                    peers.naive_s, peers.naive_items = naive_peer(urls)
                peers.newsboat = newsboat_peer(urls, work, args.rounds)
        finally:
            server.stop()
    report(args, total_items, runs, peers)


def write_farm(root: Path, base: str, feeds: int, items_per_feed: int, corpus: Path) -> tuple[int, int]:
    """The farm's feeds and article pages, as files under `root`: (items, pages)."""
    rng = random.Random(20261123)
    articles = corpus_articles(corpus)
    vocabulary = filler_vocabulary(articles)
    total_items = pages = 0
    for feed in range(feeds):
        items = make_items(feed, items_per_feed, articles, vocabulary, rng)
        total_items += len(items)
        (root / f"f{feed}.xml").write_bytes(rss(feed, items, base))
        for index, item in enumerate(items):
            if len(item["body"]) < SHORT_TEXT:
                page = root / article_path(feed, index)
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_bytes(article_page(item))
                pages += 1
    return total_items, pages


@dataclass
class Peers:
    asynchronous: AsyncPeerRun | None = None
    naive_s: float | None = None
    naive_items: int = 0
    newsboat: NewsboatRun | None = None


@contextmanager
def fresh_database(server_url: str | None, state: Path) -> Iterator[str]:
    """An empty database for one round: a new SQLite file, or with --database a PostgreSQL
    database created for the round on that server and dropped after it."""
    if server_url is None:
        yield f"sqlite:///{state}/monitor.db"
        return
    url = make_url(normalise_url(server_url))
    name = f"poll_bench_{os.getpid()}_{state.name}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Round:
    cold_s: float
    warm_s: float
    stored: int
    failures: int
    not_modified: int
    warm_new: int
    machine_cpu: float
    own_cpu: float
    workers_cpu: float
    server_cpu: float  # the machine's PostgreSQL processes (nothing with SQLite)
    own_mb: float
    own_start_mb: float  # the main process before the pass: imports, config, the database engine
    worker_mbs: tuple[float, ...]  # each parse worker's (and the forkserver's) peak, largest first
    parse_worker_mbs: tuple[float, ...]  # the parse workers' alone
    helper_mbs: dict[str, float]  # "forkserver", "tracker" -> peak
    pss_mb: float  # the largest sampled PSS of each process, summed (this one included)
    statements: tuple[int, int, int]  # cold pass: single statements, executemany calls, their rows
    warm_cpu: float = 0.0  # this process's CPU time in the warm pass (no worker is forked for 304s)
    threads_cpu: tuple[tuple[str, float], ...] = ()  # cold pass: this process's CPU by thread name

    def brief(self) -> str:
        return (
            f"cold {self.cold_s:.2f} s, warm {self.warm_s:.2f} s, stored {self.stored},"
            f" RSS main {self.own_mb:.0f} MB (at start {self.own_start_mb:.0f}) + parse workers"
            f" {' + '.join(f'{mb:.0f}' for mb in self.parse_worker_mbs)} MB"
            f" ({', '.join(f'{role} {mb:.0f}' for role, mb in sorted(self.helper_mbs.items()))} MB beside),"
            f" PSS total {self.pss_mb:.0f} MB"
        )

    @property
    def total_mb(self) -> float:
        return self.own_mb + sum(self.worker_mbs)


def one_round(config, ids: list[str]) -> Round:  # noqa: ANN001
    """A cold pass into a fresh database, then a warm pass over the same feeds."""
    store = open_store(config)
    statements = StatementCount(store.engine)
    reset_own_peak()
    own_start_mb = own_rss_mb()
    workers = WorkerPeak()
    machine_before, own_before, threads_before = machine_cpu_seconds(), own_cpu_seconds(), thread_cpu_seconds()
    server_before = server_cpu_seconds()
    started = time.perf_counter()
    threads_after: dict[str, float] = {}
    cold = asyncio.run(poll_all(config, store, ids, threads_after))
    threads_cpu = threads_used(threads_before, threads_after)
    cold_s = time.perf_counter() - started
    machine_cpu, own_cpu = machine_cpu_seconds() - machine_before, own_cpu_seconds() - own_before
    server_cpu = server_cpu_seconds() - server_before
    workers_cpu = workers.cpu_seconds()
    cold_statements = statements.snapshot()
    statements.close()
    workers.stop()
    own_cpu -= workers.own_cpu  # the bench's own /proc sampler is not the poller's work
    own_mb = own_peak_mb()  # the cold pass's: the warm pass needs less
    stored = store.article_count()
    started, warm_cpu_before = time.perf_counter(), own_cpu_seconds()
    warm = asyncio.run(poll_all(config, store, ids))
    warm_s, warm_cpu = time.perf_counter() - started, own_cpu_seconds() - warm_cpu_before
    store.engine.dispose()
    return Round(
        cold_s=cold_s,
        warm_s=warm_s,
        stored=stored,
        failures=sum(r.status == "error" for r in cold) + sum(r.status == "error" for r in warm),
        not_modified=sum(r.status == "not_modified" for r in warm),
        warm_new=sum(r.new_articles for r in warm),
        machine_cpu=machine_cpu,
        own_cpu=own_cpu,
        workers_cpu=workers_cpu,
        server_cpu=server_cpu,
        own_mb=own_mb,
        own_start_mb=own_start_mb,
        worker_mbs=workers.worker_rss(),
        parse_worker_mbs=workers.parse_worker_rss(),
        helper_mbs=workers.helper_rss(),
        pss_mb=workers.total_pss(),
        statements=cold_statements,
        threads_cpu=threads_cpu,
        warm_cpu=warm_cpu,
    )


def _verdict(ratio: float, target: float) -> str:
    return f"target <= {target:.1f}x: {'met' if ratio <= target else 'NOT met'}"


def report(args, total_items: int, runs: dict[str, list[Round]], peers: Peers) -> None:  # noqa: ANN001
    print(f"farm: {args.feeds} feeds x {args.items} items = {total_items} items, server={args.server}")
    for engine, rounds in runs.items():
        best = min(rounds, key=lambda r: r.cold_s)
        cold_median = statistics.median(r.cold_s for r in rounds)
        warm_best, warm_median = min(r.warm_s for r in rounds), statistics.median(r.warm_s for r in rounds)
        print(f"== {engine}, {len(rounds)} rounds")
        print(
            f"cold pass: best {best.cold_s:6.2f} s ({total_items / best.cold_s:.0f} items/s), median {cold_median:6.2f} s"
            f"  stored={best.stored}  failures={sum(r.failures for r in rounds)}"
        )
        print(
            f"cold pass CPU (best round): {best.machine_cpu:.1f} core-seconds on the whole machine"
            f" (of {os.cpu_count()} x {best.cold_s:.1f} s), {best.own_cpu:.1f} in this process (event loop, writer"
            f" thread), {best.workers_cpu:.1f} in the parse workers"
            + (f", {best.server_cpu:.1f} in PostgreSQL's processes" if best.server_cpu >= 0.05 else "")
        )
        print("  this process's CPU by thread: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in best.threads_cpu))
        single, many, rows = best.statements
        print(f"cold pass statements: {single} single, {many} executemany ({rows} rows)")
        print(
            f"warm pass: best {warm_best:6.2f} s, median {warm_median:6.2f} s"
            f"  304s={min(r.not_modified for r in rounds)}/{args.feeds}  new={sum(r.warm_new for r in rounds)}"
        )
        heaviest = max(rounds, key=lambda r: r.total_mb)
        counted = heaviest.own_mb + sum(heaviest.parse_worker_mbs)
        helpers = ", ".join(f"{role} {mb:.0f} MB" for role, mb in sorted(heaviest.helper_mbs.items()))
        print(
            f"cold pass peak RSS per process (heaviest round): main {heaviest.own_mb:.0f} MB + parse workers"
            f" {' + '.join(f'{mb:.0f}' for mb in heaviest.parse_worker_mbs)} MB = {counted:.0f} MB"
            f" ({_verdict(counted / 400, 1.0)} of 400 MB); beside them multiprocessing's {helpers}"
            f" ({heaviest.total_mb:.0f} MB RSS in all); PSS of them all (shared pages counted once) {heaviest.pss_mb:.0f} MB"
        )
        if peers.asynchronous is not None:
            a = peers.asynchronous
            print(
                f"async peer (httpx.AsyncClient + feedparser, concurrency {args.concurrency}, conditional GETs,"
                f" no storage, best of {len(rounds)}): cold {a.cold_s:6.2f} s ({a.items} items), warm {a.warm_s:6.2f} s"
                f" ({a.not_modified} x 304)"
            )
            print(
                f"  -> warm pass {warm_best / a.warm_s:.2f}x the async peer's time (median {warm_median / a.warm_s:.2f}x;"
                f" {_verdict(warm_best / a.warm_s, 1.0)}); cold {best.cold_s / a.cold_s:.2f}x"
            )
            warm_cpu = min(r.warm_cpu for r in rounds)
            print(
                f"  -> CPU (robust to a busy machine): warm pass {warm_cpu:.2f} core-s vs the peer's {a.warm_cpu:.2f}"
                f" = {warm_cpu / a.warm_cpu:.2f}x; cold pass {best.own_cpu + best.workers_cpu:.1f} core-s"
                f" (main + workers) vs the peer's {a.cold_cpu:.1f}"
            )
        if peers.naive_s is not None:
            print(
                f"naive peer (sequential httpx+feedparser, no storage): {peers.naive_s:6.2f} s"
                f"  {peers.naive_items / peers.naive_s:8.0f} items/s  -> our cold pass {best.cold_s / peers.naive_s:.2f}x its time"
            )
        if peers.newsboat is not None:
            n = peers.newsboat
            target = 0.2 if args.feeds >= 2000 else 0.5
            print(
                f"newsboat (C++, defaults, same farm, best of {len(rounds)}): cold {n.cold_s:6.2f} s"
                f"  warm {n.warm_s:6.2f} s  stored={n.stored}"
            )
            print(
                f"  -> cold pass {best.cold_s / n.cold_s:.2f}x newsboat's time (median {cold_median / n.cold_s:.2f}x;"
                f" {_verdict(best.cold_s / n.cold_s, target)}), warm {warm_best / n.warm_s:.2f}x"
            )
            ours = min(r.own_cpu + r.workers_cpu for r in rounds)
            print(
                f"  -> CPU: cold pass {ours:.1f} core-s (main + workers, least of the rounds) vs newsboat's"
                f" {n.cold_cpu:.1f} = {ours / n.cold_cpu:.2f}x; warm {min(r.warm_cpu for r in rounds):.2f} vs"
                f" {n.warm_cpu:.2f} core-s"
            )
        elif not args.skip_peer:
            print("newsboat: not installed (apt-get install newsboat) - no comparison with the goal's peer")
    if "postgresql" in runs and "sqlite" in runs:
        pg = min(r.cold_s for r in runs["postgresql"])
        lite = min(r.cold_s for r in runs["sqlite"])
        pg_median = statistics.median(r.cold_s for r in runs["postgresql"])
        lite_median = statistics.median(r.cold_s for r in runs["sqlite"])
        print(
            f"PostgreSQL / SQLite cold pass: best {pg:.2f} / {lite:.2f} s = {pg / lite:.2f}x"
            f" (medians {pg_median / lite_median:.2f}x; {_verdict(pg / lite, 1.2)})"
        )


if __name__ == "__main__":
    main()
