"""Archive scale benchmark (#13): what the daemon's everyday work costs with 10k, 100k and 1M
stored articles, on SQLite and on PostgreSQL, through the real code paths.

    flock /tmp/bench.lock .venv/bin/python bench/archive_bench.py [--sizes 10000,100000,1000000]
        [--engines sqlite,postgresql] [--database postgresql://postgres@127.0.0.1:5432/test]
        [--workdir /tmp/archive-bench] [--farm-feeds 50] [--farm-items 40] [--rebuild]

Archive: ARCHIVE_FEEDS feeds, 2,000 articles a day ending at midnight UTC of the build day
(10k = 5 days, 1M = 500 days), so each size holds the same last day and only the history
grows. Texts are drawn at run time from the words of ../shared/corpus/dev.jsonl (as
poll_bench's filler); 10 % of the filler names Kuwait and a partner, so it passes the
relevance prefilter and gets near-duplicate features and a story like real Kuwaiti news;
2 % are dialogue articles: events of three write-ups (the wire text, a near copy, an
independent write-up) a few hours apart. Every article is classified by the real rules
(in worker processes); those a watch could concern (~12 %) are featured by the real code
(monitor.pipeline.prepare_entry) and stored by the real writer (Store.record_polls, 50
feeds x 40 items per transaction, the archive's time passing between polls), then the
search index catches up on them. The filler the prefilter rejects (~88 %) is bulk-inserted
as the writer would store it (its rejected decision, canonical URL, an exact-copy
fingerprint: a blake2b of the raw text, not of the normalised words, same uniqueness at a
fraction of the cost) and left out of the search index: with it, a 1M build took over an
hour per engine on this box; so search figures cover the indexed 12 % only; the stories flagged before the last day
are recorded as carried by an earlier digest (as a running daemon leaves them). The built
archive is kept under --workdir (SQLite file; PostgreSQL database archive_bench_<size>) and
reused by later runs; each measurement runs on a copy, so runs do not drift.

Measured at each size, on the copy:
- dedup: the writer's look-ups for the farm's 2,000 new articles (keys, canonical URLs,
  fingerprints, LSH bands and their articles, the story search, the writes), in one
  transaction rolled back, 3 times: the median per article;
- poll: one cold pass of the farm (--farm-feeds x --farm-items new items, ~2 % about the
  dialogues, some continuing the archive's last events) served by nginx on loopback, through
  monitor.poll.Poller, then the search catch-up, then the warm pass (304s);
- `feeds list`, `status`, `search` (two queries), digest preview and build for today's slot,
  in-process (what the command does after start-up), and `feeds list` / `status` as commands
  (wall time, Python start-up included).
Prints a table per engine with the 1M/10k ratio of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from email.utils import format_datetime
from xml.sax.saxutils import escape
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import structlog  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.dedup import ArticleFeatures, features_to_bytes  # noqa: E402
from monitor.dedup.urls import canonical_url  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.daemon import open_store  # noqa: E402
from monitor.models import utcnow  # noqa: E402
from monitor.notify import build_digest, preview_digest  # noqa: E402
from monitor.pipeline import prepare_entry  # noqa: E402
from monitor.poll import Poller  # noqa: E402
from monitor.search import SearchRequest, parse_query  # noqa: E402
from monitor.sources.fetch import FetchOutcome  # noqa: E402
from monitor.sources.parse import ParsedEntry  # noqa: E402
from monitor.status import collect_status  # noqa: E402
from monitor.store import DueFeed, Incoming, PollResult, decision_json, normalise_url  # noqa: E402
from monitor.store.search import catch_up, search_archive  # noqa: E402
from monitor.store.bulk import insert_rows  # noqa: E402
from monitor.store.writer import _ARTICLE_COLUMNS, SqlDedup  # noqa: E402
from poll_bench import CORPUS, Nginx, corpus_articles, filler_vocabulary  # noqa: E402

ARCHIVE_FEEDS = 200
PER_DAY = 2000
BATCH_FEEDS, BATCH_ITEMS = 50, 40  # one simulated poll: 50 feeds x 40 items, one transaction
SECRET = "whsec_" + "QmVuY2htYXJrIHNlY3JldCBvZiAzMiBieXRlcyEhISE="
LAYOUT = 3  # bump when the archive's content changes: cached archives are rebuilt


# -- synthetic articles -----------------------------------------------------------------------


class Synth:
    """Deterministic articles: article i of an archive, or an item of the farm, from its number."""

    def __init__(self, seed: int = 20261126):
        articles = corpus_articles(CORPUS)
        self.vocabulary = filler_vocabulary(articles)
        self.relevant = [a for a in articles if a["relevant"]]
        self.seed = seed

    def words(self, rng: random.Random, low: int, high: int) -> str:
        return " ".join(rng.choices(self.vocabulary, k=rng.randint(low, high)))

    def filler(self, rng: random.Random) -> tuple[str, str]:
        title, body = self.words(rng, 6, 12), self.words(rng, 80, 300)
        if rng.random() < 0.10:  # Kuwaiti news naming a partner: passes the prefilter, not flagged
            partner = rng.choice(["الولايات المتحدة", "واشنطن", "بريطانيا", "لندن"])
            title = f"الكويت {title}"
            body = f"{self.words(rng, 10, 30)} الكويت و{partner} {body}"
        return title, body

    def event(self, event: int, member: int) -> tuple[str, str]:
        """Member 0: the wire text; 1: a near copy of it (new headline, 2 % of words changed);
        2: an independent write-up (the corpus article's lead, other text around it)."""
        source = self.relevant[event % len(self.relevant)]
        lead = source["body"].split("\n\n")[0]
        rng = random.Random(self.seed * 7919 + event)
        body = f"{lead} {self.words(rng, 60, 160)}"
        title = source["title"]
        if member == 1:
            rng = random.Random(self.seed * 104729 + event)
            title = f"{self.words(rng, 2, 4)} {title}"
            body = " ".join(rng.choice(self.vocabulary) if rng.random() < 0.02 else w for w in body.split())
        elif member == 2:
            rng = random.Random(self.seed * 1299709 + event)
            title = f"{title} {self.words(rng, 2, 4)}"
            body = f"{self.words(rng, 20, 60)} {lead} {self.words(rng, 60, 160)}"
        return title, body

    def archive_entry(self, index: int, size: int, end: datetime) -> tuple[str, ParsedEntry]:
        rng = random.Random(self.seed * 1_000_003 + index)
        feed = f"f{index % ARCHIVE_FEEDS}"
        if index % 50 == 7:  # 2 %: dialogue articles, three write-ups per event
            title, body = self.event(index // 150, (index // 50) % 3)
        else:
            title, body = self.filler(rng)
        published = end - timedelta(days=(size - index) / PER_DAY)
        link = f"https://news{index % ARCHIVE_FEEDS}.example/a/{index}"
        return feed, ParsedEntry(link, link, title, body, published, False, None, "ar")


_synth: Synth | None = None
_rules = None


def _prepare(job: tuple[int, int, int, datetime]) -> tuple[list[tuple[str, object]], list[tuple]]:
    """One batch: (feed, Candidate) for the articles a watch could concern, through the real
    classifier and features (monitor.pipeline.prepare_entry); for the filler the relevance
    prefilter rejects (~88 %), the article row as the writer would store it, but with a
    blake2b of the raw text as fingerprint instead of the normalised-word one (the same
    uniqueness, a fraction of the cost), to be bulk-inserted."""
    start, stop, size, end = job
    assert _synth is not None and _rules is not None
    rules, dedup_config, rules_fingerprint = _rules
    candidates, plain = [], []
    for index in range(start, stop):
        feed, entry = _synth.archive_entry(index, size, end)
        decision = rules.classify(entry.title, entry.summary)
        if rules.could_concern(decision):
            candidates.append((feed, prepare_entry(entry, rules, dedup_config)))
            continue
        canonical = canonical_url(entry.link)
        fingerprint = hashlib.blake2b(f"{entry.title}\n{entry.summary}".encode(), digest_size=16).hexdigest()
        features = ArticleFeatures(canonical, fingerprint, b"", (), frozenset(), entry.published)
        plain.append((
            feed, entry.guid, entry.link, canonical, fingerprint, entry.title, entry.summary, None, entry.language,
            entry.published, False, None, rules_fingerprint, features_to_bytes(features), None, None,
            False, None, None, decision.score, decision_json(decision.to_json_dict()), False, "rss", False, None,
            False,  # search_pending: the bulk rows stay out of the search index (see measure)
        ))
    return candidates, plain


# -- configuration and databases -----------------------------------------------------------


def write_config(path: Path, database_url: str, state: Path, feed_base: str) -> object:
    rules = (REPO / "config" / "monitor.toml").read_text(encoding="utf-8")
    rules = rules[rules.index("# === RELEVANCE RULES"):]
    feeds = "".join(f'[[feeds]]\nid = "f{i}"\nname = "Feed {i}"\nurl = "{feed_base}/f{i}.xml"\n' for i in range(ARCHIVE_FEEDS))
    path.write_text(
        f'[monitor]\nstate_dir = "{state}"\n[database]\nurl = "{database_url}"\n'
        "[polling]\nconcurrency = 16\nper_host = 16\n"
        '[[channels]]\nid = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\nsecret_env = "BENCH_SECRET"\n'
        '[[digests]]\nid = "daily"\nat = "07:30"\nwatches = ["kw-us", "kw-uk"]\nchannels = ["hook"]\n'
        f"{feeds}\n{rules}",
        encoding="utf-8",
    )
    return load_config(path, {"BENCH_SECRET": SECRET})


class Engine:
    """Where one engine's archives live and how a scratch copy of one is made."""

    def __init__(self, name: str, workdir: Path, server_url: str):
        self.name, self.workdir = name, workdir
        self.server = make_url(normalise_url(server_url)) if name == "postgresql" else None

    def url(self, label: str) -> str:
        if self.server is None:
            return f"sqlite:///{self.workdir / label}.db"
        return self.server.set(database=label).render_as_string(hide_password=False)

    def marker(self, size: int) -> Path:
        return self.workdir / f"{self.name}-{size}.json"

    def cached(self, size: int) -> dict | None:
        path = self.marker(size)
        if not path.exists():
            return None
        info = json.loads(path.read_text())
        return info if info.get("layout") == LAYOUT else None

    def _admin(self, statement: str) -> None:
        admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(statement))
        admin.dispose()

    def drop(self, label: str) -> None:
        if self.server is None:
            for suffix in (".db", ".db-wal", ".db-shm"):
                (self.workdir / f"{label}{suffix}").unlink(missing_ok=True)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{label}" WITH (FORCE)')

    def create(self, label: str, template: str | None = None) -> None:
        self.drop(label)
        if self.server is None:
            if template:
                shutil.copyfile(self.workdir / f"{template}.db", self.workdir / f"{label}.db")
        else:
            self._admin(f'CREATE DATABASE "{label}"' + (f' TEMPLATE "{template}"' if template else ""))


# -- building ----------------------------------------------------------------------------------


def build(engines: list[Engine], size: int, workers: int) -> None:
    """Build the archive of `size` articles on each engine at once: the articles are
    classified and featured once, and each batch is written to every engine in turn."""
    label = f"archive_bench_{size}"
    end = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    stores = []
    for engine in engines:
        engine.create(label)
        config = write_config(engine.workdir / f"build-{engine.name}.toml", engine.url(label), engine.workdir / "state",
                              "http://127.0.0.1:9")
        stores.append(open_store(config))
    global _synth, _rules
    _synth, _rules = Synth(), (config.rules, config.dedup, config.rules.fingerprint)
    batch = BATCH_FEEDS * BATCH_ITEMS
    jobs = [(start, min(start + batch, size), size, end) for start in range(0, size, batch)]
    started = time.perf_counter()
    write_s = [0.0] * len(engines)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for done, (prepared, plain) in enumerate(pool.imap(_prepare, jobs, chunksize=1)):
            seen_at = end - timedelta(days=(size - jobs[done][1]) / PER_DAY) + timedelta(minutes=5)
            plain = [(*row[:11], seen_at, *row[12:]) for row in plain]  # first_seen_at
            by_feed: dict[str, list] = defaultdict(list)
            for feed, candidate in prepared:
                by_feed[feed].append(candidate)
            results = [_poll_result(feed, tuple(cands), seen_at, config) for feed, cands in by_feed.items()]
            for position, store in enumerate(stores):
                t0 = time.perf_counter()
                with store.engine.begin() as connection:
                    insert_rows(connection, Article.__table__, _ARTICLE_COLUMNS, plain)  # type: ignore[attr-defined]
                store.record_polls(results)
                write_s[position] += time.perf_counter() - t0
            if (done + 1) % 50 == 0:
                print(f"  {size:,}: {(done + 1) * batch:,} articles, {time.perf_counter() - started:.0f} s,"
                      " writers " + ", ".join(f"{e.name} {w:.0f} s" for e, w in zip(engines, write_s)), flush=True)
    for engine, store, write in zip(engines, stores, write_s, strict=True):
        t0 = time.perf_counter()
        catch_up(store.engine)
        index_s = time.perf_counter() - t0
        carried = _carry_old_stories(store, end - timedelta(days=1))
        with store.engine.begin() as connection:  # the bulk rows count too
            connection.execute(text("UPDATE feed SET article_count = (SELECT count(*) FROM article WHERE article.feed_id = feed.id)"))
        _analyze(store.engine)
        store.engine.dispose()
        info = {"layout": LAYOUT, "label": label, "size": size, "end": end.isoformat(),
                "build_s": time.perf_counter() - started, "write_s": write, "index_s": index_s, "carried": carried}
        engine.marker(size).write_text(json.dumps(info))
        print(f"  built {engine.name} {size:,}: writer {write:.0f} s ({size / write:,.0f} articles/s),"
              f" search index {index_s:.0f} s, {carried} stories carried by earlier digests", flush=True)


def _poll_result(feed: str, candidates: tuple, seen_at: datetime, config) -> PollResult:  # noqa: ANN001
    due = DueFeed(id=feed, url=f"http://127.0.0.1:9/{feed}.xml", etag=None, last_modified=None, last_body_hash=None,
                  interval_seconds=900, consecutive_failures=0, language="ar")
    outcome = FetchOutcome(
        feed_id=feed, requested_url=due.url, final_url=due.url, permanent_redirect=None, status="ok",
        http_status=200, body=None, headers={}, etag='"e"', last_modified=None, body_hash="h",
        retry_after=None, error=None, elapsed=0.0,
    )
    return PollResult(feed=due, outcome=outcome, candidates=candidates, error=None, fetched_at=seen_at,
                      next_poll_at=seen_at + timedelta(minutes=15), rules_fingerprint=config.rules.fingerprint,
                      dedup_config=config.dedup)


def _carry_old_stories(store, before: datetime) -> int:  # noqa: ANN001
    """The stories flagged before the last day went out in earlier digests (one run stands
    for them all): a day's digest then carries a day's stories, as on a running daemon."""
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO digest_run (id, digest_id, slot, created_at, story_count) VALUES ('backfill', 'daily', :t, :t, 0)"),
            {"t": before})
        return connection.execute(text(
            "INSERT INTO digest_item (run_id, digest_id, story_id) SELECT 'backfill', 'daily', id FROM story"
            " WHERE flagged_at IS NOT NULL AND flagged_at < :t"), {"t": before}).rowcount


def _analyze(engine) -> None:  # noqa: ANN001
    """PostgreSQL's autovacuum analyses a table that grew; do it now rather than when it
    happens to run. SQLite is left as the daemon leaves it (it never runs ANALYZE)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")


# -- measuring ---------------------------------------------------------------------------------


def farm_entries(synth: Synth, feeds: int, items: int, end: datetime) -> dict[str, list[ParsedEntry]]:
    """The farm's new items, an hour after the archive ends: filler, new dialogue events, and
    write-ups of the archive's last events (their stories are stored: a join, not a start)."""
    rng = random.Random(4242)
    last_event = (10**9) // 150  # event numbers beyond any archive's
    farm: dict[str, list[ParsedEntry]] = {}
    for feed in range(feeds):
        entries = []
        for i in range(items):
            roll = rng.random()
            if roll < 0.01:
                title, body = synth.event(last_event + rng.randint(0, 20), rng.randint(0, 2))
            elif roll < 0.02:
                title, body = synth.event(rng.randint(0, 5), rng.choice([1, 2]))  # low numbers recur every 32
            else:
                title, body = synth.filler(rng)
            link = f"https://farm{feed}.example/new/{i}"
            entries.append(ParsedEntry(link, link, title, f"{body} [{feed}-{i}]",
                                       end + timedelta(minutes=60 + feed + i), False, None, "ar"))
        farm[f"f{feed}"] = entries
    return farm


def rss_of(entries: list[ParsedEntry]) -> bytes:
    """Each item with its own link (poll_bench's rss() numbers links by position, which would
    make the farm's feeds copies of each other by canonical URL)."""
    items = "".join(
        f"<item><title>{escape(e.title)}</title><link>{escape(e.link or e.guid)}</link><guid>{escape(e.guid)}</guid>"
        f"<pubDate>{format_datetime(e.published)}</pubDate><description>{escape(e.summary)}</description></item>"
        for e in entries
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>farm</title>'
            f"<link>https://farm.example/</link><description>bench</description>{items}</channel></rss>").encode("utf-8")


class TimedDedup(SqlDedup):
    """The store's writer with a clock on each of its look-ups."""

    times: dict[str, float] = defaultdict(float)

    def _timed(self, name: str, call: Callable, *args):  # noqa: ANN202
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.times[name] += time.perf_counter() - started

    def _stored_keys(self, items):  # noqa: ANN001, ANN202
        return self._timed("keys", super()._stored_keys, items)

    def _stored_urls(self, urls):  # noqa: ANN001, ANN202
        return self._timed("urls", super()._stored_urls, urls)

    def _by_fingerprint(self, fingerprints):  # noqa: ANN001, ANN202
        return self._timed("fingerprints", super()._by_fingerprint, fingerprints)

    def _by_band(self, features):  # noqa: ANN001, ANN202
        return self._timed("bands", super()._by_band, features)

    def _matching_story(self, features):  # noqa: ANN001, ANN202
        return self._timed("story", super()._matching_story, features)

    def _write(self, plans, fresh, rules_fingerprint):  # noqa: ANN001, ANN202
        return self._timed("write", super()._write, plans, fresh, rules_fingerprint)


def measure_dedup(store, config, farm: dict[str, list[ParsedEntry]], repeats: int = 3) -> dict[str, float]:  # noqa: ANN001
    now = utcnow()
    incoming = [Incoming(feed, prepare_entry(entry, config.rules, config.dedup), now)
                for feed, entries in farm.items() for entry in entries]
    runs = []
    for _ in range(repeats):
        TimedDedup.times = defaultdict(float)
        with store.session() as session:
            started = time.perf_counter()
            TimedDedup(session, config.dedup).insert_all(incoming, config.rules.fingerprint)
            total = time.perf_counter() - started
            session.rollback()
        runs.append({"total": total, **TimedDedup.times})
    best = min(runs, key=lambda r: r["total"])
    return {"dedup_us": statistics.median(r["total"] for r in runs) / len(incoming) * 1e6,
            **{f"dedup_{k}_ms": v * 1000 for k, v in best.items() if k != "total"}}


def timed(call: Callable, repeats: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


def command_ms(config_path: Path, *args: str) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "monitor", "--config", str(config_path), *args], check=True,
                       capture_output=True, cwd=REPO, env={**os.environ, "BENCH_SECRET": SECRET})
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _passes(config, store, ids: list[str]) -> tuple[float, float, float, list]:  # noqa: ANN001
    async with Poller(config, store) as poller:
        started = time.perf_counter()
        cold = await poller.poll_due(only=ids)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        catch_up(store.engine)
        index_s = time.perf_counter() - started
        started = time.perf_counter()
        await poller.poll_due(only=ids)
        warm_s = time.perf_counter() - started
    return cold_s, index_s, warm_s, cold


def measure(engine: Engine, info: dict, args: argparse.Namespace, synth: Synth) -> dict[str, float]:
    end = datetime.fromisoformat(info["end"])
    scratch = f"archive_bench_scratch_{os.getpid()}"
    engine.create(scratch, template=info["label"])
    farm = farm_entries(synth, args.farm_feeds, args.farm_items, end)
    root = engine.workdir / "www"
    root.mkdir(exist_ok=True)
    for feed, entries in farm.items():
        (root / f"{feed}.xml").write_bytes(rss_of(entries))
    server = Nginx(root, engine.workdir)
    figures: dict[str, float] = {}
    try:
        config_path = engine.workdir / f"measure-{engine.name}.toml"
        config = write_config(config_path, engine.url(scratch), engine.workdir / "state", f"http://127.0.0.1:{server.port}")
        store = open_store(config)
        figures.update(measure_dedup(store, config, farm))
        cold_s, index_s, warm_s, cold = asyncio.run(_passes(config, store, list(farm)))
        figures.update(poll_s=cold_s, poll_index_s=index_s, warm_s=warm_s,
                       poll_new=sum(r.new_articles for r in cold), poll_flagged=sum(r.flagged for r in cold),
                       poll_errors=sum(r.status == "error" for r in cold))
        figures["feeds_list_ms"], _ = timed(store.feed_health)
        figures["status_ms"], _ = timed(lambda: collect_status(store, config))
        for name, query, flagged in (("search_common_ms", "الكويت", False), ("search_phrase_ms", '"الحوار الاستراتيجي"', True)):
            figures[name], _ = timed(lambda q=query, f=flagged: search_archive(store.engine, SearchRequest(parse_query(q), None, f, None, 20)))
        digest = config.digests[0]
        now = utcnow()
        figures["digest_preview_ms"], content = timed(lambda: preview_digest(store, config, digest, now))
        started = time.perf_counter()
        built = build_digest(store, config, digest, now.replace(second=0, microsecond=0), now)
        figures["digest_build_ms"] = (time.perf_counter() - started) * 1000
        figures["digest_stories"] = built.stories
        figures["feeds_list_cmd_ms"] = command_ms(config_path, "feeds", "list")
        figures["status_cmd_ms"] = command_ms(config_path, "status")
        store.engine.dispose()
    finally:
        server.stop()
        engine.drop(scratch)
    return figures


ROWS = [
    ("dedup_us", "dedup: writer per new article (µs)"),
    ("dedup_keys_ms", "  feed+guid look-up (ms / 2,000)"),
    ("dedup_urls_ms", "  canonical URL look-up (ms / 2,000)"),
    ("dedup_fingerprints_ms", "  fingerprint look-up (ms / 2,000)"),
    ("dedup_bands_ms", "  LSH band candidates (ms / 2,000)"),
    ("dedup_story_ms", "  story search (ms / 2,000)"),
    ("dedup_write_ms", "  writes (ms / 2,000)"),
    ("poll_s", "poll pass, cold (s)"),
    ("poll_index_s", "  then search catch-up (s)"),
    ("warm_s", "poll pass, warm: 304s (s)"),
    ("feeds_list_ms", "feeds list, in-process (ms)"),
    ("feeds_list_cmd_ms", "monitor feeds list, command (ms)"),
    ("status_ms", "status, in-process (ms)"),
    ("status_cmd_ms", "monitor status, command (ms)"),
    ("search_common_ms", "search 'الكويت' (ms)"),
    ("search_phrase_ms", "search phrase --flagged (ms)"),
    ("digest_preview_ms", "digest preview (ms)"),
    ("digest_build_ms", "digest build for the slot (ms)"),
    ("digest_stories", "  stories in the digest"),
]


def report(engine: str, results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    print(f"\n{engine}: farm {results[sizes[0]].get('poll_new', 0):.0f} new articles per pass")
    header = f"{'':44}" + "".join(f"{size:>12,}" for size in sizes) + (f"{'ratio':>9}" if len(sizes) > 1 else "")
    print(header)
    for key, label in ROWS:
        values = [results[size].get(key) for size in sizes]
        if all(v is None for v in values):
            continue
        line = f"{label:44}" + "".join(f"{v:>12.1f}" if v is not None else f"{'-':>12}" for v in values)
        if len(sizes) > 1 and values[0] and values[-1] is not None:
            line += f"{values[-1] / values[0]:>8.2f}x"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test", help="the PostgreSQL server")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/archive-bench"))
    parser.add_argument("--farm-feeds", type=int, default=50)
    parser.add_argument("--farm-items", type=int, default=40)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--rebuild", action="store_true", help="build the archives again")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.workdir.chmod(0o755)  # nginx workers may run as an unprivileged user
    synth = Synth()
    engines = [Engine(name, args.workdir, args.database) for name in args.engines.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        missing = [e for e in engines if args.rebuild or e.cached(size) is None]
        if missing:
            build(missing, size, args.workers)
    if args.build_only:
        return
    for engine in engines:
        results = {}
        for size in sizes:
            results[size] = measure(engine, engine.cached(size), args, synth)
            print(f"  measured {engine.name} {size:,}: " + json.dumps({k: round(v, 2) for k, v in results[size].items()}),
                  flush=True)
        report(engine.name, results)

if __name__ == "__main__":
    main()
