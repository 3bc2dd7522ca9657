"""What the lease heartbeat costs (#13): one renewal UPDATE for the feeds a daemon is polling.

    .venv/bin/python bench/lease_bench.py [--feeds 2000] [--held 500,2000] [--rounds 50] [--database URL]

Builds a feed table of N feeds, claims H of them for this process (a cold pass in flight
holds them all; a warm daemon holds a handful) and times `Store.renew_leases` (the UPDATE the
daemon's heartbeat runs every `lease_heartbeat`) for each H, with the claim of the same feeds
(`claim_due_feeds`, what every tick does) as the peer: the renewal should cost about what a
claim costs, and a heartbeat runs once per 30 s against a tick every 10 s. SQLite in a
temporary file, and PostgreSQL when --database names one (a scratch database is created in
it and dropped).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import structlog
from sqlalchemy import update

from monitor.models import Feed, utcnow
from monitor.store import Store, make_engine, upgrade
from metrics_bench import BenchFeed, scratch_database  # noqa: E402 (same farm of feed rows, same scratch database)


def feed_table(url: str, feeds: int) -> Store:
    engine = make_engine(url)
    upgrade(engine)
    store = Store(engine)
    store.sync_feeds([BenchFeed(f"feed-{i:05d}", f"https://news{i}.example/rss") for i in range(feeds)], timedelta(minutes=15), utcnow())
    return store


def free_all(store: Store) -> None:
    with store.session() as session:
        session.execute(update(Feed).values(lease_owner=None, lease_until=None, next_poll_at=utcnow() - timedelta(minutes=1)))
        session.commit()


def measure(store: Store, held: int, rounds: int) -> tuple[float, float]:
    """Median milliseconds of one claim of `held` feeds and of one renewal of them."""
    owner = "bench-host:1"
    ids = [f"feed-{i:05d}" for i in range(held)]
    claims, renewals = [], []
    for _ in range(rounds):
        free_all(store)
        started = time.perf_counter()
        claimed = store.claim_due_feeds(utcnow(), owner, timedelta(minutes=2), limit=held, only=ids)
        claims.append(time.perf_counter() - started)
        assert len(claimed) == held
        started = time.perf_counter()
        renewed = store.renew_leases(owner, ids, utcnow() + timedelta(minutes=2))
        renewals.append(time.perf_counter() - started)
        assert renewed == held
    return statistics.median(claims) * 1000, statistics.median(renewals) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--held", default="10,500,2000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database", help="a PostgreSQL URL (a scratch database is made in it)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    held = [int(value) for value in args.held.split(",")]
    print(f"{args.feeds} feeds, median of {args.rounds} rounds")
    print(f"{'database':<12} {'held':>6} {'claim ms':>10} {'renew ms':>10} {'renew/claim':>12}")
    with tempfile.TemporaryDirectory() as directory:
        targets = [("SQLite", f"sqlite:///{Path(directory) / 'lease.db'}")]
        with scratch_database(args.database, directory) if args.database else nullcontext(None) as pg:
            if pg:
                targets.append(("PostgreSQL", pg))
            for label, url in targets:
                store = feed_table(url, args.feeds)
                for count in held:
                    claim, renew = measure(store, min(count, args.feeds), args.rounds)
                    print(f"{label:<12} {count:>6} {claim:>10.2f} {renew:>10.2f} {renew / claim:>12.2f}")
                store.engine.dispose()


if __name__ == "__main__":
    main()
