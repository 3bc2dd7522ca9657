"""Storage benchmark: the writer's share of a cold pass, without fetching or parsing.

    .venv/bin/python bench/store_bench.py [--feeds 500] [--items 40] [--database URL]

Builds the same feeds as poll_bench.py, parses and classifies them up front (in this
process, not timed), then times only what the poller's single writer does: recording each
feed's poll (dedup look-ups, stories, articles, band hashes, feed state) into an empty
database, first one feed per transaction, then, on a second empty database, the group
commit the poller uses. Prints articles/s, the ratio between the two, and the CPU time
the machine spent beside this process's own (with --database: mostly the PostgreSQL server).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import structlog  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.daemon import open_store  # noqa: E402
from monitor.sources.fetch import FetchOutcome  # noqa: E402
from monitor.models import utcnow  # noqa: E402
from monitor.sources.parse import parse_feed  # noqa: E402
from monitor.pipeline import prepare_entry  # noqa: E402
from monitor.store.search import catch_up  # noqa: E402
from monitor.store import PollResult  # noqa: E402
from poll_bench import (  # noqa: E402
    CORPUS, corpus_articles, filler_vocabulary, fresh_database, machine_cpu_seconds, make_items, own_cpu_seconds, rss,
)


def build_results(config, store, bodies: list[bytes]) -> list[PollResult]:  # noqa: ANN001
    due = {feed.id: feed for feed in store.claim_due_feeds(utcnow(), "bench", timedelta(minutes=10))}
    results = []
    now = utcnow()
    for index, body in enumerate(bodies):
        feed = due[f"f{index}"]
        parsed = parse_feed(body, {}, base_url=feed.url, fetched_at=now)
        candidates = tuple(prepare_entry(entry, config.rules, config.dedup) for entry in parsed.entries)
        outcome = FetchOutcome(
            feed_id=feed.id, requested_url=feed.url, final_url=feed.url, permanent_redirect=None, status="ok",
            http_status=200, body=None, headers={}, etag='"e"', last_modified=None, body_hash="h",
            retry_after=None, error=None, elapsed=0.0,
        )
        results.append(
            PollResult(
                feed=feed, outcome=outcome, candidates=candidates, error=None, fetched_at=now,
                next_poll_at=now + timedelta(minutes=15), rules_fingerprint=config.rules.fingerprint,
                dedup_config=config.dedup,
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--group", type=int, default=0, help="feeds per transaction in the second run (0 = all)")
    parser.add_argument("--database", metavar="URL", help="a PostgreSQL server URL: each run gets a database of its own there")
    parser.add_argument("--grouped-only", action="store_true", help="skip the one-feed-per-transaction run")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    rng = random.Random(20261123)
    articles = corpus_articles(CORPUS)
    vocabulary = filler_vocabulary(articles)
    bodies = [rss(feed, make_items(feed, args.items, articles, vocabulary, rng)) for feed in range(args.feeds)]
    rules = (REPO / "config" / "monitor.toml").read_text(encoding="utf-8")
    rules = rules[rules.index("# === RELEVANCE RULES"):]
    figures = {}
    for mode in ("grouped",) if args.grouped_only else ("per-feed", "grouped"):
        with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp, fresh_database(args.database, Path(tmp)) as url:
            feeds = "".join(f'[[feeds]]\nid = "f{i}"\nurl = "http://127.0.0.1/f{i}.xml"\n' for i in range(args.feeds))
            path = Path(tmp) / "bench.toml"
            database = f'[database]\nurl = "{url}"\n' if args.database else ""
            path.write_text(f'[monitor]\nstate_dir = "{tmp}/state"\n{database}{feeds}\n{rules}', encoding="utf-8")
            config = load_config(path, {})
            store = open_store(config)
            results = build_results(config, store, bodies)
            started, machine, own = time.perf_counter(), machine_cpu_seconds(), own_cpu_seconds()
            if mode == "per-feed":
                for result in results:
                    store.record_polls([result])
            else:
                size = args.group or len(results)
                for start in range(0, len(results), size):
                    store.record_polls(results[start:start + size])
            seconds = time.perf_counter() - started
            own = own_cpu_seconds() - own
            beside = machine_cpu_seconds() - machine - own
            stored = store.article_count()
            figures[mode] = seconds
            print(f"{mode:9}: {seconds:6.2f} s  {stored / seconds:8.0f} articles/s  stored={stored}"
                  f"  CPU: this process {own:.2f} s, the rest of the machine {beside:.2f} s")
            started = time.perf_counter()
            indexed = catch_up(store.engine)  # the search index, after the writes (as the daemon does)
            seconds = time.perf_counter() - started
            print(f"{'':9}  then the search index catches up: {seconds:6.2f} s  {indexed / seconds:8.0f} articles/s")
    if "per-feed" in figures:
        print(f"grouped is {figures['per-feed'] / figures['grouped']:.2f}x per-feed")


if __name__ == "__main__":
    main()
