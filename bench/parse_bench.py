"""Parsing benchmark: monitor.parse.parse_feed against plain feedparser, one core.

    .venv/bin/python bench/parse_bench.py [--corpus ../shared/corpus/dev.jsonl] [--feeds 40] [--items 40] [--rounds 5]

Builds FEEDS RSS 2.0 feeds of ITEMS Arabic items from the dev corpus (titles and bodies as
published, bodies as HTML paragraphs in CDATA, as Arabic news sites serve them; about 2-4 KB
per item), then times, interleaved over ROUNDS rounds so machine noise hits all alike
(best round reported):

- baseline:  feedparser.parse(...) with its defaults (HTML sanitizer and URI resolver on);
- sanitizer: parse_feed(..., sanitize_html=True), i.e. feedparser defaults + our post-processing;
- parse_feed: what the poller runs (sanitizer off, our regex HTML-to-text instead).

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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import feedparser  # noqa: E402

from monitor.parse import from_feedparser, parse_feed  # noqa: E402

HEADERS = {"content-type": "application/rss+xml; charset=utf-8"}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "dev.jsonl")
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    bodies = build_feeds(args.corpus, args.feeds, args.items, random.Random(42))
    now = datetime.now(UTC)
    contenders: dict[str, Callable[[bytes], object]] = {
        "baseline feedparser defaults": lambda b: feedparser.parse(io.BytesIO(b), response_headers=HEADERS),
        "feedparser, sanitizer off": lambda b: feedparser.parse(
            io.BytesIO(b), response_headers=HEADERS, sanitize_html=False, resolve_relative_uris=False
        ),
        "parse_feed sanitize_html=True": lambda b: parse_feed(
            b, HEADERS, base_url="https://x.example/rss", fetched_at=now, sanitize_html=True
        ),
        "parse_feed (as polled)": lambda b: parse_feed(b, HEADERS, base_url="https://x.example/rss", fetched_at=now),
    }
    check = parse_feed(bodies[0], HEADERS, base_url="https://x.example/rss", fetched_at=now)
    assert check.error is None and len(check.entries) == args.items, check.error
    best = {name: float("inf") for name in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            best[name] = min(best[name], time_once(fn, bodies))

    items = args.feeds * args.items
    size = sum(len(b) for b in bodies)
    print(f"{args.feeds} feeds x {args.items} items, {size / items / 1024:.1f} KiB/item, best of {args.rounds} rounds, one core")
    baseline = best["baseline feedparser defaults"]
    for name, seconds in best.items():
        print(f"  {name:32s} {items / seconds:8.0f} items/s   x{baseline / seconds:4.2f} vs baseline")
    # Our own post-processing, timed alone on feedparser results computed beforehand, since the
    # difference of two noisy totals says little on a shared machine.
    results = [
        feedparser.parse(io.BytesIO(b), response_headers=HEADERS, sanitize_html=False, resolve_relative_uris=False)
        for b in bodies
    ]
    post = min(
        time_once_results(
            lambda r: from_feedparser(r, b"", HEADERS, base_url="https://x.example/rss", fetched_at=now, default_language=None),
            results,
        )
        for _ in range(args.rounds)
    )
    feedparser_only = best["feedparser, sanitizer off"]
    print(
        f"  post-processing alone: {post / items * 1e6:.0f} us/item "
        f"= {post / feedparser_only:.1%} of feedparser's own time ({feedparser_only / items * 1e6:.0f} us/item)"
    )


if __name__ == "__main__":
    main()
