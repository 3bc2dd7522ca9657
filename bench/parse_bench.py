"""Parsing benchmark: monitor.sources.parse.parse_feed (fast path and feedparser) against plain feedparser, one core.

    .venv/bin/python bench/parse_bench.py [--corpus ../shared/corpus/dev.jsonl] [--feeds 40] [--items 40]
                                          [--rounds 5] [--shapes corpus,poll]

Two sets of feeds, each FEEDS RSS 2.0 feeds of ITEMS Arabic items:

- corpus: items from the dev corpus (titles and bodies as published, bodies as HTML paragraphs
  in CDATA, with dc:creator, as Arabic news sites serve them; about 2 KiB per item);
- poll: the feeds bench/poll_bench.py serves (its rss() and make_items(): title, link, guid,
  pubDate, an escaped plain-text description; about 4 KiB per item; served without a charset).

For each set, times interleaved over ROUNDS rounds so machine noise hits all alike (best round
reported):

- baseline:  feedparser.parse(...) with its defaults (HTML sanitizer and URI resolver on);
- feedparser with the sanitizer and URI resolver off;
- parse_feed(..., sanitize_html=True): feedparser defaults + our post-processing;
- parse_feed(..., fast=False): feedparser (sanitizer off) + our post-processing;
- parse_feed: what the poller runs: the ElementTree fast path (monitor.sources.fastfeed) where it
  applies, which it does for every feed here (checked), + the same post-processing;
- ElementTree alone (xml.etree.ElementTree.fromstring) and monitor.sources.fastfeed.parse_fast alone,
  for scale.

Prints items/s for each and the ratio to the baseline, plus the cost of our post-processing
(feedparser result -> ParsedEntry) timed on its own.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import feedparser  # noqa: E402

from monitor.sources.fastfeed import parse_fast  # noqa: E402
from monitor.sources.parse import _response_headers, from_feedparser, parse_feed  # noqa: E402

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}
POLL_HEADERS = {"content-type": "application/rss+xml"}  # what poll_bench's nginx sends


def build_feeds(corpus: Path, feeds: int, items: int, rng: random.Random) -> list[bytes]:
    articles = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    bodies = []
    for f in range(feeds):
        entries = []
        for i in range(items):
            article = rng.choice(articles)
            paragraphs = "".join(f"<p>{escape(p)}</p>" for p in article["body"].split("\n") if p.strip())
            link = f"https://news{f}.example/article/{i}"
            entries.append(
                f"<item><title>{escape(article['title'])}</title><link>{link}</link><guid>{link}</guid>"
                f"<pubDate>{format_datetime(start + timedelta(minutes=f * items + i))}</pubDate>"
                f"<dc:creator>{escape(article.get('source') or 'كونا')}</dc:creator>"
                f"<description><![CDATA[{paragraphs}]]></description></item>"
            )
        bodies.append(
            (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
                f"<title>مصدر {f}</title><link>https://news{f}.example/</link><language>ar</language>"
                + "".join(entries)
                + "</channel></rss>"
            ).encode()
        )
    return bodies


def build_poll_feeds(corpus: Path, feeds: int, items: int, rng: random.Random) -> list[bytes]:
    """The feeds poll_bench.py generates, from its own functions (imported lazily: it pulls in
    the whole poller)."""
    sys.path.insert(0, str(REPO / "bench"))
    import poll_bench

    articles = poll_bench.corpus_articles(corpus)
    vocabulary = poll_bench.filler_vocabulary(articles)
    return [poll_bench.rss(f, poll_bench.make_items(f, items, articles, vocabulary, rng)) for f in range(feeds)]


def time_once(fn: Callable[[bytes], object], bodies: list[bytes]) -> float:
    started = time.perf_counter()
    for body in bodies:
        fn(body)
    return time.perf_counter() - started


def time_once_results(fn: Callable[[object], object], results: list[object]) -> float:
    started = time.perf_counter()
    for result in results:
        fn(result)
    return time.perf_counter() - started


def contenders(headers: dict[str, str], now: datetime) -> dict[str, Callable[[bytes], object]]:
    lowered = _response_headers(headers)
    base = "https://x.example/rss"
    return {
        "feedparser with defaults": lambda b: feedparser.parse(io.BytesIO(b), response_headers=headers),
        "feedparser, sanitizer off": lambda b: feedparser.parse(
            io.BytesIO(b), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        ),
        "parse_feed sanitize_html=True": lambda b: parse_feed(
            b, headers, base_url=base, fetched_at=now, sanitize_html=True
        ),
        "parse_feed via feedparser (fast=False)": lambda b: parse_feed(
            b, headers, base_url=base, fetched_at=now, fast=False
        ),
        "parse_feed via fast path (as polled)": lambda b: parse_feed(b, headers, base_url=base, fetched_at=now),
        "ElementTree.fromstring alone": ET.fromstring,
        "fastfeed.parse_fast alone": lambda b: parse_fast(b, lowered),
    }


def bench_set(label: str, bodies: list[bytes], headers: dict[str, str], items_per_feed: int, rounds: int) -> None:
    now = datetime.now(UTC)
    lowered = _response_headers(headers)
    # The fast-path figure means nothing unless the fast path is taken, and equal results.
    assert all(parse_fast(b, lowered) is not None for b in bodies), f"{label}: fast path not taken"
    check = parse_feed(bodies[0], headers, base_url="https://x.example/rss", fetched_at=now)
    assert check == parse_feed(bodies[0], headers, base_url="https://x.example/rss", fetched_at=now, fast=False)
    assert check.error is None and len(check.entries) == items_per_feed, check.error
    timed = contenders(headers, now)
    best = {name: float("inf") for name in timed}
    for _ in range(rounds):
        for name, fn in timed.items():
            best[name] = min(best[name], time_once(fn, bodies))

    items = len(bodies) * items_per_feed
    size = sum(len(b) for b in bodies)
    print(
        f"{label}: {len(bodies)} feeds x {items_per_feed} items, {size / items / 1024:.1f} KiB/item, "
        f"best of {rounds} rounds, one core"
    )
    baseline = best["feedparser with defaults"]
    for name, seconds in best.items():
        print(f"  {name:40s} {items / seconds:8.0f} items/s   x{baseline / seconds:5.2f} vs baseline")
    # Our own post-processing, timed alone on feedparser results computed beforehand, since the
    # difference of two noisy totals says little on a shared machine.
    results = [
        feedparser.parse(io.BytesIO(b), response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
        for b in bodies
    ]
    post = min(
        time_once_results(
            lambda r: from_feedparser(r, b"", lowered, base_url="https://x.example/rss", fetched_at=now, default_language=None),
            results,
        )
        for _ in range(rounds)
    )
    feedparser_only = best["feedparser, sanitizer off"]
    print(
        f"  post-processing alone: {post / items * 1e6:.0f} us/item "
        f"= {post / feedparser_only:.1%} of feedparser's own time ({feedparser_only / items * 1e6:.0f} us/item)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "dev.jsonl")
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shapes", default="corpus,poll", help="comma-separated: corpus, poll")
    args = parser.parse_args()

    shapes = {shape.strip() for shape in args.shapes.split(",")}
    if "corpus" in shapes:
        bodies = build_feeds(args.corpus, args.feeds, args.items, random.Random(42))
        bench_set("corpus", bodies, HEADERS, args.items, args.rounds)
    if "poll" in shapes:
        bodies = build_poll_feeds(args.corpus, args.feeds, args.items, random.Random(42))
        bench_set("poll_bench", bodies, POLL_HEADERS, args.items, args.rounds)


if __name__ == "__main__":
    main()
