"""/metrics scrape time with many feeds (#11 target: under 50 ms with 2,000 feeds).

    .venv/bin/python bench/metrics_bench.py [--feeds 2000] [--deliveries 20000] [--scrapes 200] [--database URL]

Builds a database with N feeds (a tenth of them failing) and an outbox of M deliveries
(pending, failed, mostly sent), a DaemonMetrics whose counters have seen a pass of every feed
and deliveries on two channel types, serves it with the daemon's own MetricsServer on
loopback, and times whole HTTP scrapes of /metrics (client-side: connect, request, body) and
of /healthz answering from a database ping.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import structlog
from sqlalchemy import update
from sqlalchemy.engine import make_url

from monitor.metrics import DaemonMetrics, MetricsServer, ping, read_gauges
from monitor.models import Delivery, Feed, utcnow
from monitor.poll import FeedReport
from monitor.store import Store, make_engine, upgrade


@dataclass(frozen=True)
class BenchFeed:
    id: str
    url: str
    name: str = ""
    language: str = "ar"
    enabled: bool = True
    interval: timedelta | None = None


def build_database(url: str, feeds: int, deliveries: int) -> Store:
    engine = make_engine(url)
    upgrade(engine)
    store = Store(engine)
    now = utcnow()
    store.sync_feeds([BenchFeed(f"feed-{i:05d}", f"https://news{i}.example/rss") for i in range(feeds)], timedelta(minutes=15), now)
    with store.session() as session:
        session.execute(
            update(Feed).where(Feed.id.in_([f"feed-{i:05d}" for i in range(0, feeds, 10)])).values(  # type: ignore[attr-defined]
                consecutive_failures=3, last_error="HTTP 503"
            )
        )
        statuses = ("pending", "failed") + ("sent",) * 8
        for index in range(deliveries):
            session.add(
                Delivery(id=f"m_{index:08d}", kind="alert", source_id="urgent", channel_id="hook", status=statuses[index % 10],
                         payload=b"{}" * 200, created_at=now, next_attempt_at=now, give_up_at=now + timedelta(days=1))
            )
        session.commit()
    return store


def fill_counters(metrics: DaemonMetrics, feeds: int) -> None:
    outcomes = ("ok", "not_modified", "unchanged", "error")
    reports = [
        FeedReport(f"feed-{i:05d}", outcomes[i % 4], 200, 30, 2, 0, 1, None, 0.02 * (i % 200), pages_fetched=i % 3)
        for i in range(feeds)
    ]
    metrics.observe_pass(reports, {"kw-us": 3, "kw-uk": 1})
    rows = [Delivery(id=str(i), kind="alert", source_id="a", channel_id=("mail" if i % 2 else "hook"),
                     status=("sent", "pending", "failed")[i % 3], payload=b"", created_at=utcnow(),
                     next_attempt_at=utcnow(), give_up_at=utcnow()) for i in range(30)]
    metrics.observe_deliveries(rows, {"mail": "email", "hook": "webhook"})
    metrics.observe_digest(True)


def time_requests(url: str, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"{name:<9} median {statistics.median(ordered):6.2f} ms  p95 {p95:6.2f} ms  max {ordered[-1]:6.2f} ms  ({len(ordered)} requests)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--deliveries", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--database", metavar="URL", help="a PostgreSQL server (a scratch database is made on it and dropped); default: a fresh SQLite file")
    parser.add_argument("--port", type=int, default=19464)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with tempfile.TemporaryDirectory() as directory, scratch_database(args.database, directory) as url:
        store = build_database(url, args.feeds, args.deliveries)
        metrics = DaemonMetrics(20.0, lambda: read_gauges(store), ["kw-us", "kw-uk"])
        fill_counters(metrics, args.feeds)

        def health() -> str | None:
            ping(store)
            return None

        server = MetricsServer(("127.0.0.1", args.port), metrics.registry, health)
        try:
            base = f"http://127.0.0.1:{args.port}"
            time_requests(f"{base}/metrics", 5)  # warm-up: connections, caches
            body = urllib.request.urlopen(f"{base}/metrics", timeout=10).read()
            print(f"{store.engine.dialect.name}, {args.feeds} feeds, {args.deliveries} deliveries; /metrics is {len(body):,} bytes")
            print(summary("/metrics", time_requests(f"{base}/metrics", args.scrapes)))
            print(summary("/healthz", time_requests(f"{base}/healthz", args.scrapes)))
            gauges = [time_gauges(store) for _ in range(args.scrapes)]
            print(summary("gauges", gauges) + "  (the database part of a scrape)")
        finally:
            server.close()
            store.engine.dispose()


@contextmanager
def scratch_database(server: str | None, directory: str) -> Iterator[str]:
    """A fresh database: a SQLite file, or one created on the PostgreSQL server and dropped."""
    if server is None:
        yield f"sqlite:///{directory}/metrics.db"
        return
    import psycopg

    base = make_url(server)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"metrics_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def time_gauges(store: Store) -> float:
    started = time.perf_counter()
    read_gauges(store)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
