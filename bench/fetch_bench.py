"""Fetch benchmark: monitor.sources.fetch.Fetcher over a local nginx feed farm, cold (200) and warm (304).

    .venv/bin/python bench/fetch_bench.py [--feeds 500] [--kib 80] [--concurrency 16] [--per-host 2] [--rounds 3]

Writes FEEDS files of KIB KiB each, serves them from nginx on 127.0.0.1 (Python's threading
server when nginx is missing), then times, best of ROUNDS:

- Fetcher cold:  every feed fetched with a body (streamed, capped, hashed);
- Fetcher warm:  every feed again with the ETag it returned, answered 304;
- baseline:      a bare httpx.AsyncClient doing the same GETs with asyncio.gather and the same
                 overall connection limit, no per-host limit, no cap, no hashing.

All feeds live on one host here, so `--per-host` throttles the whole farm; the default
config's per_host=2 is meant for real publishers. The numbers for the real setting
(per_host = concurrency, since the farm stands in for many hosts) are what the poll pass sees.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.poll_bench import Nginx, PythonServer  # noqa: E402
from monitor.sources.fetch import FeedRequest, Fetcher  # noqa: E402


def write_farm(root: Path, feeds: int, kib: int) -> list[str]:
    rng = random.Random(1)
    words = ["الكويت", "الحوار", "الاستراتيجي", "واشنطن", "لندن", "مجموعة", "التوجيه", "وزير", "الخارجية"]
    names = []
    for f in range(feeds):
        text = " ".join(rng.choices(words, k=kib * 1024 // 12))
        body = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{f}</title>'
        body += f"<item><title>t</title><description>{text}</description></item></channel></rss>"
        (root / f"feed{f}.xml").write_text(body, encoding="utf-8")
        names.append(f"feed{f}.xml")
    return names


async def fetcher_pass(urls: list[str], etags: dict[str, str | None], concurrency: int, per_host: int) -> tuple[float, dict]:
    async with Fetcher(
        concurrency=concurrency, per_host=per_host, timeout=20, max_bytes=10_000_000, user_agent="bench"
    ) as fetcher:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(fetcher.fetch(FeedRequest(u, u, etag=etags.get(u))) for u in urls))
        elapsed = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        etags[outcome.feed_id] = outcome.etag
    return elapsed, statuses


async def baseline_pass(urls: list[str], etags: dict[str, str | None], concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=20) as client:
        started = time.perf_counter()

        async def get(url: str) -> None:
            headers = {"if-none-match": etags[url]} if etags.get(url) else {}
            response = await client.get(url, headers=headers)
            if response.status_code != 304:
                response.raise_for_status()

        await asyncio.gather(*(get(u) for u in urls))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--kib", type=int, default=80, help="size of each feed (40 Arabic items ~ 80 KiB)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--per-host", type=int, default=0, help="0 = same as --concurrency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", choices=["nginx", "python"], default="nginx")
    args = parser.parse_args()
    per_host = args.per_host or args.concurrency

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # nginx workers run as an unprivileged user when started by root
        root, work = Path(tmp) / "farm", Path(tmp) / "work"
        root.mkdir()
        work.mkdir()
        names = write_farm(root, args.feeds, args.kib)
        server = Nginx(root, work) if args.server == "nginx" else PythonServer(root, work)
        try:
            urls = [f"http://127.0.0.1:{server.port}/{name}" for name in names]
            best = {"Fetcher cold": float("inf"), "Fetcher warm": float("inf"), "baseline cold": float("inf"), "baseline warm": float("inf")}
            statuses = {}
            for _ in range(args.rounds):
                etags: dict[str, str | None] = {}
                cold, statuses["cold"] = asyncio.run(fetcher_pass(urls, etags, args.concurrency, per_host))
                warm, statuses["warm"] = asyncio.run(fetcher_pass(urls, etags, args.concurrency, per_host))
                best["Fetcher cold"] = min(best["Fetcher cold"], cold)
                best["Fetcher warm"] = min(best["Fetcher warm"], warm)
                best["baseline cold"] = min(best["baseline cold"], asyncio.run(baseline_pass(urls, {}, args.concurrency)))
                best["baseline warm"] = min(best["baseline warm"], asyncio.run(baseline_pass(urls, etags, args.concurrency)))
        finally:
            server.stop()

    print(
        f"{args.feeds} feeds x {args.kib} KiB, server={args.server}, concurrency={args.concurrency}, "
        f"per_host={per_host}, best of {args.rounds}"
    )
    print(f"  statuses: cold {statuses['cold']}, warm {statuses['warm']}")
    for kind in ("cold", "warm"):
        ours, base = best[f"Fetcher {kind}"], best[f"baseline {kind}"]
        print(
            f"  {kind}: Fetcher {ours:6.2f} s ({args.feeds / ours:6.0f} feeds/s)   "
            f"bare httpx {base:6.2f} s   ratio x{ours / base:4.2f}"
        )


if __name__ == "__main__":
    main()
