"""Archive search benchmark: query time over a large archive, the index's size, and what
indexing costs an article.

    .venv/bin/python bench/search_bench.py [--articles 100000] [--database URL] [--keep PATH]

Builds an archive of synthetic articles (titles of ~10 and texts of ~150 words drawn from
the words of ../shared/corpus, Arabic and English, in their corpus frequencies, with a
corpus sentence now and then so that phrases occur), straight into the article table and
the search index (not through the poller: the writer's share is store_bench.py's). Then
runs a fixed mix of queries (names, common and rare words, phrases, filters), each several
times, and prints the median and p95 of the time `monitor search` spends: the query, and
the snippets of its 20 results. SQLite by default (a temporary file); --database
postgresql://... builds it in a new database there, dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url

from monitor.arabic import normalized_words
from monitor.search import (
    SearchRequest,
    index_text,
    mark_snippet,
    parse_query,
    search_word,
)
from monitor.store import make_engine, upgrade
from monitor.store.search import insert_rows, search

CORPUS = REPO.parent / "shared" / "corpus"
BATCH = 5000
FEEDS = 50
NOW = datetime(2026, 11, 26, tzinfo=UTC)

QUERIES = [
    ("الحوار الاستراتيجي", {}),
    ('"الحوار الاستراتيجي"', {}),
    ("الحوار الاستراتيجي الكويت", {"since": "30d"}),
    ("الكويت", {}),
    ("الكويت بريطانيا", {}),
    ("مجموعة التوجيه المشتركة", {}),
    ('"مجموعة التوجيه"', {}),
    ("وزير الخارجية", {}),
    ("الجولة الخامسة", {}),
    ("روبرتسون", {}),
    ("الطاقة", {"flagged": True}),
    ("واشنطن", {"since": "7d"}),
    ("strategic dialogue", {}),
    ('"strategic dialogue"', {}),
    ("Kuwait", {}),
    ("talks London", {}),
    ("steering group", {}),
    ("القمة الخليجية", {}),
    ("الاستثمار والتجارة", {}),
    ("مباحثات", {}),
]


def corpus_words() -> tuple[list[tuple[str, str]], list[str]]:
    """(raw word, its search word) for every word of the corpus, repeats kept (so drawing
    uniformly draws words in their corpus frequency), and the corpus's sentences."""
    words: list[tuple[str, str]] = []
    sentences: list[str] = []
    for name in ("dev.jsonl", "dev-en.jsonl"):
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            article = json.loads(line)
            for field in (article.get("title") or "", article.get("body") or ""):
                for raw in field.split():
                    norm = normalized_words(raw)
                    if norm:
                        words.append((raw, " ".join(search_word(w) for w in norm)))
                sentences.extend(s.strip() for s in field.split(".") if len(s.split()) >= 6)
    return words, sentences


def synthetic_rows(count: int, words, sentences, rng: random.Random, start_id: int = 1):
    """Batches of (id, feed, title, text, title words, text words, published, flagged, watch)."""
    batch = []
    for article_id in range(start_id, start_id + count):
        title = rng.choices(words, k=rng.randint(7, 13))
        body = rng.choices(words, k=rng.randint(100, 200))
        title_raw, title_words = " ".join(w[0] for w in title), " ".join(w[1] for w in title)
        body_raw, body_words = " ".join(w[0] for w in body), " ".join(w[1] for w in body)
        if rng.random() < 0.3:
            sentence = rng.choice(sentences)
            body_raw, body_words = sentence + ". " + body_raw, index_text(sentence) + " " + body_words
        if rng.random() < 0.05:
            sentence = rng.choice(sentences)
            title_raw, title_words = sentence, index_text(sentence)
        flagged = rng.random() < 0.02
        # an archive grows with time: ids follow the dates, two years of them, give or take a day
        age = (start_id + count - article_id) / count * 2 * 365 * 86400 + rng.randint(-86400, 86400)
        published = NOW - timedelta(seconds=max(0, age))
        batch.append((article_id, f"f{article_id % FEEDS}", title_raw, body_raw, title_words, body_words, published,
                      flagged, ("kw-us" if rng.random() < 0.5 else "kw-uk") if flagged else None))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build(engine, count: int, seed: int) -> dict[str, float]:
    words, sentences = corpus_words()
    rng = random.Random(seed)
    figures = {"insert_article_s": 0.0, "insert_index_s": 0.0}
    with engine.begin() as connection:
        for feed in range(FEEDS):
            connection.execute(text(
                "INSERT INTO feed (id, url, configured_url, name, enabled, interval_seconds, consecutive_failures,"
                " next_poll_at, article_count, last_warning) VALUES (:id, 'u', 'u', :name, true, 900, 0, :t, 0, NULL)"),
                {"id": f"f{feed}", "name": f"Feed {feed}", "t": NOW})
    from monitor.models import Article

    table = Article.__table__  # type: ignore[attr-defined]
    for rows in synthetic_rows(count, words, sentences, rng):
        with engine.begin() as connection:
            started = time.perf_counter()
            connection.execute(table.insert(), [
                {"id": r[0], "feed_id": r[1], "guid": str(r[0]), "link": f"https://example.org/{r[0]}", "fingerprint": str(r[0]),
                 "title": r[2], "summary": r[3], "published_at": r[6], "published_is_fallback": False, "first_seen_at": r[6],
                 "flagged": r[7], "watch": r[8], "score": 0.0, "decision": "{}", "rules_fingerprint": "r"}
                for r in rows
            ])
            middle = time.perf_counter()
            insert_rows(connection, [(r[0], r[4], r[5]) for r in rows])
            figures["insert_article_s"] += middle - started
            figures["insert_index_s"] += time.perf_counter() - middle
        if rows[-1][0] % 100_000 < BATCH:
            print(f"  {rows[-1][0]:>9,} articles", flush=True)
    return figures


def run_queries(engine, repeats: int) -> list[tuple[str, float, float, int, list[float]]]:
    """(query, median ms, p95 ms, results, every time) per query, the snippets of the results included."""
    from monitor.export import parse_since

    measured = []
    with engine.connect() as connection:
        for query_text, options in QUERIES:
            since = parse_since(options["since"], NOW) if "since" in options else None
            request = SearchRequest(parse_query(query_text), since, bool(options.get("flagged")), None, 20)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                hits = search(connection, request)
                for hit in hits:
                    mark_snippet(hit.summary, request.query)
                times.append((time.perf_counter() - started) * 1000)
            measured.append((query_text + (f"  {options}" if options else ""), statistics.median(times),
                             _p95(times), len(hits), times))
    return measured


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def index_size(engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            try:
                size = connection.exec_driver_sql(
                    "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'article_search%'").scalar()
            except Exception:  # noqa: BLE001 (no dbstat in this build)
                return "n/a (no dbstat)"
        else:
            size = connection.exec_driver_sql(
                "SELECT pg_total_relation_size('article_search')").scalar()
        article = (connection.exec_driver_sql("SELECT sum(pgsize) FROM dbstat WHERE name = 'article'").scalar()
                   if engine.dialect.name == "sqlite" else
                   connection.exec_driver_sql("SELECT pg_total_relation_size('article')").scalar())
    return f"index {size / 1e6:,.0f} MB, article table {article / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--database", help="postgresql://USER@HOST/DB: build in a new database there")
    parser.add_argument("--keep", help="SQLite file to build into (kept; reused when it exists)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    admin = None
    if args.database:
        admin = make_url(args.database).set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"search_bench_{uuid.uuid4().hex[:8]}"
        _postgres(admin, f'CREATE DATABASE "{name}"')
        url = make_url(args.database).set(database=name).render_as_string(hide_password=False)
    else:
        path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="search-bench-")) / "bench.db"
        url = f"sqlite:///{path}"
    reuse = not args.database and args.keep and Path(args.keep).exists()
    engine = make_engine(url)
    try:
        upgrade(engine)
        if not reuse:
            started = time.perf_counter()
            figures = build(engine, args.articles, args.seed)
            built = time.perf_counter() - started
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                    connection.exec_driver_sql("VACUUM ANALYZE article")
                    connection.exec_driver_sql("VACUUM ANALYZE article_search")
            else:
                with engine.begin() as connection:
                    connection.exec_driver_sql("INSERT INTO article_search(article_search) VALUES ('optimize')")
            print(f"built {args.articles:,} articles in {built:.0f} s: article rows "
                  f"{figures['insert_article_s'] / args.articles * 1e6:.1f} µs each, index rows "
                  f"{figures['insert_index_s'] / args.articles * 1e6:.1f} µs each")
        print(f"{engine.dialect.name}: {index_size(engine)}")
        run_queries(engine, 2)  # warm the cache
        measured = run_queries(engine, args.repeats)
        for query, median, p95, results, _ in measured:
            print(f"  {median:8.1f} ms median {p95:8.1f} ms p95  {results:>3} results  {query}")
        every = [time_ for *_, times in measured for time_ in times]
        print(f"all {len(every)} runs of the {len(measured)} queries: median {statistics.median(every):.1f} ms, "
              f"p95 {_p95(every):.1f} ms, worst {max(every):.1f} ms")
    finally:
        engine.dispose()
        if admin:
            _postgres(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        elif not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)


def _postgres(admin_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)


if __name__ == "__main__":
    main()
