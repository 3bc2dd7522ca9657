"""Prometheus metrics and the /healthz check of `monitor run` (README "Status and metrics").

Counters move where the daemon already learns what happened (a polling pass's FeedReports,
the outbox's recorded deliveries, a built digest), not inside the poller: the poller stays
free of metrics and `monitor poll` pays nothing for them. Gauges that describe the database
(outbox, failing feeds) are read at scrape time with three small aggregate queries, so they
agree with `monitor status` and with every other daemon on the same database.

Each daemon has its own CollectorRegistry (tests and benches run several in one process; a
global registry would refuse the second set of names).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.registry import Collector
from sqlalchemy import func, text
from sqlmodel import select

from monitor.models import Article, Delivery, Feed

log = structlog.get_logger(__name__)

# Below a second the fast feeds, then up to the timeout (and past it: article pages).
_BASE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class MetricsError(Exception):
    """The metrics address cannot be served; said in one line naming it (exit status 2)."""


def fetch_buckets(timeout_seconds: float) -> tuple[float, ...]:
    """Histogram bounds up to the fetch timeout and the whole-download cap (3x the timeout),
    so a feed that times out lands in a bucket of its own rather than only in +Inf."""
    bounds = {b for b in _BASE_BUCKETS if b < timeout_seconds}
    bounds.update({float(timeout_seconds), 3.0 * timeout_seconds})
    return tuple(sorted(bounds))


@dataclass(frozen=True)
class PassCounts:
    """What one polling pass adds, as the daemon learns it from the pass's reports."""

    polls: Mapping[str, int]  # outcome ("ok", "not_modified", "unchanged", "error") -> feeds
    durations: tuple[float, ...]
    entries: int
    stored: int
    near_duplicates: int
    pages_fetched: int
    any_success: bool


def count_pass(reports: Iterable[Any]) -> PassCounts:
    """Sum a pass's FeedReports (monitor.poll); pure, so tests need no daemon."""
    polls: dict[str, int] = {}
    durations: list[float] = []
    entries = stored = near = pages = 0
    success = False
    for report in reports:
        polls[report.status] = polls.get(report.status, 0) + 1
        durations.append(report.seconds)
        entries += report.entries
        stored += report.new_articles
        near += report.near_duplicates
        pages += report.pages_fetched
        success = success or report.status != "error"
    return PassCounts(polls, tuple(durations), entries, stored, near, pages, success)


class DaemonMetrics:
    """The metric families one daemon exports, and the hooks the daemon calls."""

    def __init__(self, timeout_seconds: float, database: Callable[[], DatabaseGauges | None], watches: Sequence[str] = ()):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter("monitor_polls", "Feed polls by outcome", ["outcome"], registry=r)
        self.fetch_duration = Histogram(
            "monitor_feed_fetch_duration_seconds",
            "Time to poll one feed: fetch, parse, article pages and store",
            buckets=fetch_buckets(timeout_seconds),
            registry=r,
        )
        self.entries = Counter("monitor_entries_parsed", "Entries read from source documents", registry=r)
        self.stored = Counter("monitor_articles_stored", "New articles stored", registry=r)
        self.near_duplicates = Counter("monitor_near_duplicates", "New articles stored as near-duplicates", registry=r)
        self.flagged = Counter("monitor_articles_flagged", "New articles flagged, by watch", ["watch"], registry=r)
        self.pages = Counter("monitor_article_pages_fetched", "Article pages fetched for their full text", registry=r)
        self.deliveries = Counter(
            "monitor_deliveries", "Delivery attempts by channel type and outcome", ["channel_type", "outcome"], registry=r
        )
        self.last_success = Gauge(
            "monitor_last_poll_success_timestamp_seconds", "Unix time of this daemon's last successful feed poll", registry=r
        )
        self.digests = Counter("monitor_digests_built", "Digests built by this daemon", registry=r)
        for outcome in ("ok", "not_modified", "unchanged", "error"):
            self.polls.labels(outcome)  # present at 0 from the start: rate() needs a first sample
        for watch in watches:
            self.flagged.labels(watch)
        r.register(_DatabaseCollector(database))
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

    def observe_pass(self, reports: Iterable[Any], flagged_by_watch: Mapping[str, int], now: float | None = None) -> None:
        counts = count_pass(reports)
        for outcome, number in counts.polls.items():
            self.polls.labels(outcome).inc(number)
        for seconds in counts.durations:
            self.fetch_duration.observe(seconds)
        self.entries.inc(counts.entries)
        self.stored.inc(counts.stored)
        self.near_duplicates.inc(counts.near_duplicates)
        self.pages.inc(counts.pages_fetched)
        for watch, number in flagged_by_watch.items():
            self.flagged.labels(watch).inc(number)
        if counts.any_success:
            self.last_success.set(time.time() if now is None else now)

    def observe_deliveries(self, rows: Iterable[Delivery], channel_types: Mapping[str, str]) -> None:
        """One count per attempt: "sent", "retry" (failed, to be tried again) or "failed"
        (given up)."""
        for row in rows:
            outcome = "retry" if row.status == "pending" else row.status
            self.deliveries.labels(channel_types.get(row.channel_id, "unknown"), outcome).inc()

    def observe_digest(self, built: bool) -> None:
        if built:
            self.digests.inc()


# -- gauges read from the database at scrape time ------------------------------------------------


@dataclass(frozen=True)
class DatabaseGauges:
    outbox_pending: int
    outbox_failed: int
    feeds_failing: int


def read_gauges(store: Any) -> DatabaseGauges:
    """Two aggregate queries over indexed columns (delivery.status) and the feed table (one
    row per feed): 2,000 feeds cost well under a millisecond each."""
    with store.session() as session:
        by_status = dict(
            session.exec(
                select(Delivery.status, func.count())
                .where(Delivery.status.in_(("pending", "failed")))  # type: ignore[attr-defined]
                .group_by(Delivery.status)
            ).all()
        )
        failing = session.exec(
            select(func.count()).select_from(Feed).where(Feed.enabled.is_(True), Feed.consecutive_failures > 0)  # type: ignore[attr-defined]
        ).one()
    return DatabaseGauges(int(by_status.get("pending", 0)), int(by_status.get("failed", 0)), int(failing))


class _DatabaseCollector(Collector):
    """The database gauges; a database that does not answer leaves them out of the scrape
    (absent, not zero: zero would claim an empty outbox) and /healthz says why."""

    def __init__(self, read: Callable[[], DatabaseGauges | None]):
        self._read = read

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names known only when read; auto_describe must not query the database

    def collect(self) -> Iterator[Metric]:
        try:
            gauges = self._read()
        except Exception as exc:  # noqa: BLE001 (a scrape must still show the process metrics)
            log.warning("metrics: database gauges unavailable", error=f"{type(exc).__name__}: {exc}")
            return
        if gauges is None:
            return
        yield GaugeMetricFamily("monitor_outbox_pending", "Deliveries queued and not yet sent", value=gauges.outbox_pending)
        yield GaugeMetricFamily("monitor_outbox_failed", "Deliveries given up on", value=gauges.outbox_failed)
        yield GaugeMetricFamily("monitor_feeds_failing", "Enabled feeds whose last poll failed", value=gauges.feeds_failing)


# -- the HTTP server ---------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def metrics_app(registry: CollectorRegistry, health: Callable[[], str | None]) -> Callable[..., Iterable[bytes]]:
    """/metrics from the registry; /healthz 200 "ok" or 503 with the reason; 404 otherwise."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            try:
                problem = health()
            except Exception as exc:  # noqa: BLE001
                problem = f"health check failed: {type(exc).__name__}"
            status = "200 OK" if problem is None else "503 Service Unavailable"
            body = ("ok" if problem is None else problem).encode("utf-8") + b"\n"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
            return [body]
        body = b"not found: try /metrics or /healthz\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class MetricsServer:
    """The daemon's /metrics and /healthz, served from a thread so a slow scrape or a slow
    database never holds up the event loop."""

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, health: Callable[[], str | None]):
        host, port = address
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self._httpd = make_server(host, port, metrics_app(registry, health), Server, handler_class=_QuietHandler)
        except OSError as exc:
            raise MetricsError(f"cannot listen on {shown}: {exc.strerror or exc}") from None
        self.address = shown
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        log.info("serving metrics", address=shown)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# -- database reads the daemon's hooks need ------------------------------------------------------


def ping(store: Any) -> None:
    """Raise unless the database answers a trivial query."""
    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1")).scalar()


def flagged_since(store: Any, feed_ids: Sequence[str], since: datetime) -> dict[str, int]:
    """Articles of these feeds first seen at/after `since` and flagged, counted per watch."""
    with store.session() as session:
        rows = session.exec(
            select(Article.watch, func.count())
            .where(Article.feed_id.in_(list(feed_ids)), Article.first_seen_at >= since, Article.flagged.is_(True))  # type: ignore[attr-defined]
            .group_by(Article.watch)
        ).all()
    return {watch or "": int(count) for watch, count in rows}
