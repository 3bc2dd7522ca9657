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
  feedparser, no storage).

Prints items/s, CPU time (machine, this process, parse workers) and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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

import feedparser  # noqa: E402
import httpx  # noqa: E402
import structlog  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from monitor.arabic import normalize  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.daemon import open_store  # noqa: E402
from monitor.store import normalise_url  # noqa: E402
from monitor.poll import Poller  # noqa: E402

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


def rss(feed: int, items: list[dict]) -> bytes:
    entries = "".join(
        f"<item><title>{escape(it['title'])}</title><link>{escape(it['guid'])}</link>"
        f"<guid>{escape(it['guid'])}</guid><pubDate>{format_datetime(it['published'])}</pubDate>"
        f"<description>{escape(it['body'])}</description></item>"
        for it in items
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
        times = []
        for _ in ("cold", "warm"):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HOME": str(home)})
            times.append(time.perf_counter() - started)
        with sqlite3.connect(home / "cache.db") as db:
            stored = db.execute("SELECT count(*) FROM rss_item").fetchone()[0]
        runs.append(NewsboatRun(cold_s=times[0], warm_s=times[1], stored=stored))
    return NewsboatRun(
        cold_s=min(r.cold_s for r in runs), warm_s=min(r.warm_s for r in runs), stored=min(r.stored for r in runs)
    )


def naive_peer(urls: list[str]) -> tuple[float, int]:
    """The peer: fetch and parse each feed in turn, the way a first script would."""
    started = time.perf_counter()
    items = 0
    with httpx.Client(timeout=20) as client:
        for url in urls:
            items += len(feedparser.parse(client.get(url).content).entries)
    return time.perf_counter() - started, items


async def poll_all(config, store, ids: list[str]) -> list:  # noqa: ANN001
    async with Poller(config, store) as poller:
        return await poller.poll_due(only=ids)


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine (all processes: ours, the parse workers, nginx)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class WorkerPeak:
    """Peak RSS and CPU time of the parse workers: they are children of multiprocessing's
    forkserver, not of this process, so getrusage(RUSAGE_CHILDREN) never sees them; sample
    /proc instead (CPU time as last sampled, so up to one interval short per worker)."""

    INTERVAL = 0.25

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._cpu: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(self.INTERVAL):
            for proc in Path("/proc").glob("[0-9]*"):
                if not _descends_from_us(proc):
                    continue
                try:
                    status = (proc / "status").read_text()
                    stat = (proc / "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                self._cpu[proc.name] = (int(stat[11]) + int(stat[12])) / tick  # utime + stime
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)

    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def _descends_from_us(proc: Path) -> bool:
    me = str(os.getpid())
    for _ in range(4):
        try:
            ppid = next(l.split()[1] for l in (proc / "status").read_text().splitlines() if l.startswith("PPid:"))
        except (OSError, StopIteration):
            return False
        if ppid == me:
            return True
        proc = Path("/proc") / ppid
    return False


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
        " database of its own there; default: a fresh SQLite file per round",
    )
    parser.add_argument("--rounds", type=int, default=3, help="cold+warm rounds, each on a fresh database (default 3)")
    parser.add_argument("--skip-peer", action="store_true", help="skip the naive Python peer and newsboat")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    rng = random.Random(20261123)
    articles = corpus_articles(args.corpus)
    vocabulary = filler_vocabulary(articles)
    with tempfile.TemporaryDirectory(prefix="poll-bench-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        work.chmod(0o755)  # nginx workers may run as an unprivileged user
        total_items = 0
        for feed in range(args.feeds):
            items = make_items(feed, args.items, articles, vocabulary, rng)
            total_items += len(items)
            (root / f"f{feed}.xml").write_bytes(rss(feed, items))
        server = Nginx(root, work) if args.server == "nginx" else PythonServer(root, work)
        try:
            base = f"http://127.0.0.1:{server.port}"
            urls = [f"{base}/f{feed}.xml" for feed in range(args.feeds)]
            feeds_toml = "".join(f'[[feeds]]\nid = "f{i}"\nurl = "{url}"\n' for i, url in enumerate(urls))
            rules = (REPO / "config" / "monitor.toml").read_text(encoding="utf-8")
            rules = rules[rules.index("# === RELEVANCE RULES"):]
            ids = [f"f{i}" for i in range(args.feeds)]
            runs = []
            for round_number in range(args.rounds):
                config_path = work / f"bench{round_number}.toml"
                with fresh_database(args.database, work / f"state{round_number}") as database_url:
                    config_path.write_text(
                        f'[monitor]\nstate_dir = "{work}/state{round_number}"\n[database]\nurl = "{database_url}"\n'
                        f"[polling]\nconcurrency = {args.concurrency}\nper_host = {args.concurrency}\n"
                        f"parse_workers = {args.workers}\n{feeds_toml}\n{rules}",
                        encoding="utf-8",
                    )
                    runs.append(one_round(load_config(config_path, {}), ids))
            peer_s, peer_items = (None, 0) if args.skip_peer else naive_peer(urls)
            newsboat = None if args.skip_peer else newsboat_peer(urls, work, args.rounds)
        finally:
            server.stop()
    report(args, total_items, runs, peer_s, peer_items, newsboat)


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
    own_mb: float
    worker_mb: float


def one_round(config, ids: list[str]) -> Round:  # noqa: ANN001
    """A cold pass into a fresh database, then a warm pass over the same feeds."""
    store = open_store(config)
    workers = WorkerPeak()
    machine_before, own_before = machine_cpu_seconds(), own_cpu_seconds()
    started = time.perf_counter()
    cold = asyncio.run(poll_all(config, store, ids))
    cold_s = time.perf_counter() - started
    machine_cpu, own_cpu = machine_cpu_seconds() - machine_before, own_cpu_seconds() - own_before
    workers_cpu = workers.cpu_seconds()
    stored = store.article_count()
    started = time.perf_counter()
    warm = asyncio.run(poll_all(config, store, ids))
    warm_s = time.perf_counter() - started
    worker_mb = workers.stop()
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
        own_mb=peak_mb(),
        worker_mb=worker_mb,
    )


def report(args, total_items: int, runs: list[Round], peer_s, peer_items: int, newsboat) -> None:  # noqa: ANN001
    best = min(runs, key=lambda r: r.cold_s)
    cold_median = statistics.median(r.cold_s for r in runs)
    warm_best, warm_median = min(r.warm_s for r in runs), statistics.median(r.warm_s for r in runs)
    engine = "postgresql" if args.database else "sqlite"
    print(
        f"farm: {args.feeds} feeds x {args.items} items = {total_items} items, server={args.server},"
        f" database={engine}, rounds={len(runs)}"
    )
    print(
        f"cold pass: best {best.cold_s:6.2f} s ({total_items / best.cold_s:.0f} items/s), median {cold_median:6.2f} s"
        f"  stored={best.stored}  failures={sum(r.failures for r in runs)}"
    )
    print(
        f"cold pass CPU (best round): {best.machine_cpu:.1f} core-seconds on the whole machine"
        f" (of {os.cpu_count()} x {best.cold_s:.1f} s), {best.own_cpu:.1f} in this process (event loop, writer"
        f" thread), {best.workers_cpu:.1f} in the parse workers"
    )
    print(
        f"warm pass: best {warm_best:6.2f} s, median {warm_median:6.2f} s"
        f"  304s={min(r.not_modified for r in runs)}/{args.feeds}  new={sum(r.warm_new for r in runs)}"
    )
    print(f"peak RSS: main {max(r.own_mb for r in runs):.0f} MB, largest worker {max(r.worker_mb for r in runs):.0f} MB")
    if peer_s is not None:
        print(
            f"peer (sequential httpx+feedparser, no storage): {peer_s:6.2f} s  {peer_items / peer_s:8.0f} items/s"
            f"  -> our best cold pass is {peer_s / best.cold_s:.2f}x the peer's speed"
        )
    if newsboat is not None:
        print(
            f"newsboat (C++, defaults, same farm, best of {len(runs)}): cold {newsboat.cold_s:6.2f} s"
            f"  warm {newsboat.warm_s:6.2f} s  stored={newsboat.stored}"
            f"  -> our cold pass takes {best.cold_s / newsboat.cold_s:.2f}x newsboat's time (median"
            f" {cold_median / newsboat.cold_s:.2f}x), warm {warm_best / newsboat.warm_s:.2f}x"
        )
    elif not args.skip_peer:
        print("newsboat: not installed (apt-get install newsboat) - no comparison with the goal's peer")


if __name__ == "__main__":
    main()
