"""`monitor rules diff` on a large archive: time, and peak memory at 10k vs 100k articles.

    flock /tmp/bench.lock .venv/bin/python bench/rules_diff_bench.py [--sizes 10000,100000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--workdir /tmp/rules_diff_bench]

Fills a SQLite file (and, with --postgres or $MONITOR_TEST_POSTGRES_URL, a PostgreSQL
database of its own per size) with synthetic stored articles: Arabic text of 0.6-2.5 KB made
of the development corpus's words (those no rule can match) around template sentences:
~3 % about a strategic dialogue round (US or UK, varied partners, ordinals, cities), ~1 %
about "strategic talks" (which the changed rules add), ~10 % Kuwait and a partner without a
dialogue, ~3 % another country's dialogue with Washington or London. Each is stored with the
decision of the shipped rules (config/monitor.toml), as the poller would have stored it; first
seen over the last 90 days. The databases are kept in --workdir and reused by a re-run.

Then runs the real command as a child process, `monitor --config OLD rules diff NEW --json`
(NEW: the shipped rules with «المحادثات الاستراتيجية» added to the US dialogue terms and the
UK watch's threshold raised from 5 to 7), and reads its wall time and peak RSS (/usr/bin/time).
Peer: `monitor export` over the same archive, which streams the same rows without
classifying, so the ratio shows what the re-classification costs; and the same diff with
`--since 30d`; and the fixed cost of starting (`rules test` with no labels: the interpreter,
one config's rules compiled, the schema checked; `rules diff` compiles two). Streaming shows
as a peak RSS that does not grow with the archive (10k vs 100k).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from monitor.arabic import normalize  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.daemon import open_store  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.relevance import RuleSet  # noqa: E402
from monitor.store.records import decision_json  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "dev.jsonl"
SHIPPED = REPO / "config" / "monitor.toml"
MONITOR = REPO / ".venv" / "bin" / "monitor"
RULES_MARKER = "# === RELEVANCE RULES"
NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)
BATCH = 2000

US = ["الولايات المتحدة", "واشنطن", "الجانب الأمريكي", "الولايات المتحدة الأميركية", "وزير الخارجية الأمريكي بلينكن"]
UK = ["المملكة المتحدة", "بريطانيا", "لندن", "الجانب البريطاني", "وزير الخارجية البريطاني لامي"]
ORDINALS = ["الأولى", "الثانية", "الثالثة", "الرابعة", "الخامسة", "السادسة", "السابعة", "الثامنة", "التاسعة", "العاشرة"]
CITIES = ["الكويت", "واشنطن", "لندن", "مدينة الكويت"]
OTHERS = ["قطر", "السعودية", "الإمارات", "البحرين", "سلطنة عمان"]
DIALOGUE = (
    "اختتمت في {city} أعمال الجولة {ordinal} من الحوار الاستراتيجي بين دولة الكويت و{us}.",
    "وبحث الجانبان في الجولة {ordinal} للحوار الإستراتيجي الكويتي مع {us} التعاون الدفاعي والتعليم.",
    "عقدت مجموعة التوجيه المشتركة بين الكويت و{uk} اجتماعها {ordinal_m} في {city}.",
    "وترأس نائب وزير الخارجية اجتماع لجنة التوجيه الكويتية مع {uk} في دورتها {ordinal}.",
    "وأكد وزير الخارجية أن الحوار الاستراتيجي مع {us} يعزز الشراكة بين البلدين.",
)
TALKS = (
    "انطلقت في {city} المحادثات الاستراتيجية بين دولة الكويت و{us} بمشاركة وفدين رفيعي المستوى.",
    "وتناولت المحادثات الاستراتيجية بين الكويت و{us} الأمن الإقليمي والاستثمار.",
)
NEAR = (
    "واستقبل وزير الخارجية في الكويت سفير {us} لدى البلاد وبحثا العلاقات الثنائية.",
    "والتقى الوزير الكويتي نظيره في {uk} لبحث التعاون بين البلدين الصديقين.",
)
OTHER = (
    "وانطلقت في {city} أعمال الحوار الاستراتيجي بين {other} و{us} بمشاركة وزراء البلدين.",
    "وعقدت {other} و{uk} الجولة {ordinal} من حوارهما الاستراتيجي.",
)
ORDINALS_M = ["الأول", "الثاني", "الثالث", "الرابع", "الخامس", "السادس", "السابع", "الثامن", "التاسع", "العاشر"]


# -- configs ---------------------------------------------------------------------------------------------


def write_configs(workdir: Path, url: str, name: str) -> tuple[Path, Path]:
    """OLD: the shipped rules; NEW: the same with two edits (each asserted to apply)."""
    text = SHIPPED.read_text(encoding="utf-8")
    rules = text[text.index(RULES_MARKER):]
    changed = rules.replace('us_dialogue = [\n  "الحوار الاستراتيجي",', 'us_dialogue = [\n  "المحادثات الاستراتيجية", "الحوار الاستراتيجي",', 1)
    assert changed != rules, "config/monitor.toml: us_dialogue no longer starts as expected"
    uk_at = changed.index('id = "kw-uk"')
    uk_threshold = changed.index("threshold = 5.0", uk_at)
    changed = changed[:uk_threshold] + "threshold = 7.0" + changed[uk_threshold + len("threshold = 5.0"):]
    head = f'[monitor]\nstate_dir = "{workdir / "state"}"\n[database]\nurl = "{url}"\n[[feeds]]\nid = "bench"\nurl = "http://127.0.0.1:9/bench.xml"\n'
    old, new = workdir / f"{name}-old.toml", workdir / f"{name}-new.toml"
    old.write_text(head + rules, encoding="utf-8")
    new.write_text(head + changed, encoding="utf-8")
    return old, new


# -- synthetic archive -----------------------------------------------------------------------------------


def filler_words(rules: RuleSet) -> list[str]:
    """The corpus's words that no rule term reacts to (so filler never decides anything)."""
    vocabulary = rules.vocabulary()
    words: list[str] = []
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8") as handle:
            for line in handle:
                article = json.loads(line)
                words.extend((article.get("title") or "").split() + (article.get("body") or "").split())
    clean = []
    for word in words:
        norm = normalize(word)
        if not norm or any(name in norm for name in ("كويت", "كونا")):
            continue
        if any(part in vocabulary for part in re.findall(r"\w+", norm)):
            continue
        clean.append(word)
    return clean or "قال المسؤول في تصريح اليوم إن الاجتماع بحث سبل تعزيز التعاون في مختلف المجالات".split()


def sentence(rng: random.Random, templates: Sequence[str]) -> str:
    return rng.choice(templates).format(
        us=rng.choice(US), uk=rng.choice(UK), ordinal=rng.choice(ORDINALS), ordinal_m=rng.choice(ORDINALS_M),
        city=rng.choice(CITIES), other=rng.choice(OTHERS),
    )


def synthetic(rng: random.Random, words: Sequence[str]) -> tuple[str, str]:
    roll = rng.random()
    templates = DIALOGUE if roll < 0.03 else TALKS if roll < 0.04 else NEAR if roll < 0.14 else OTHER if roll < 0.17 else ()
    lead = sentence(rng, templates) if templates else ""
    target = rng.randint(600, 2500)
    body: list[str] = []
    size = 0
    while size < target:
        word = rng.choice(words) if rng.random() > 0.02 else str(rng.randint(1, 10**6))
        body.append(word)
        size += len(word.encode("utf-8")) + 1
        if rng.random() < 0.06:
            body[-1] += "."
    if lead:
        body.insert(rng.randrange(min(len(body), 40) + 1), lead)
    title = lead.rstrip(".") if lead and rng.random() < 0.6 else " ".join(rng.choice(words) for _ in range(rng.randint(6, 12)))
    return title, " ".join(body)


def rows(count: int, rules: RuleSet, words: Sequence[str], seed: int = 7) -> Iterator[list[dict]]:
    rng = random.Random(seed)
    step = timedelta(days=90) / count
    batch = []
    for number in range(count):
        title, body = synthetic(rng, words)
        decision = rules.classify(title, body)
        seen = NOW - timedelta(days=90) + step * number
        guid = f"https://bench.example/{number}"
        batch.append({
            "feed_id": "bench", "guid": guid, "link": guid, "canonical_url": None,
            "fingerprint": hashlib.sha1(guid.encode()).hexdigest(), "title": title, "summary": body, "author": None,
            "language": "ar", "published_at": seen, "published_is_fallback": False, "first_seen_at": seen,
            "flagged": decision.flagged, "watch": decision.watch, "score": decision.score, "round": decision.round,
            "decision": decision_json(decision.to_json_dict()), "rules_fingerprint": rules.fingerprint,
        })
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(old: Path, count: int) -> float:
    """Make the archive hold `count` articles (reused when it does); seconds spent filling."""
    config = load_config(old, {})
    store = open_store(config)
    with store.engine.connect() as connection:
        have = connection.execute(select(func.count()).select_from(Article)).scalar_one()
    if have == count:
        return 0.0
    if have:
        raise SystemExit(f"{config.database_url}: holds {have} articles, not {count}: remove it")
    started = time.perf_counter()
    for batch in rows(count, config.rules, filler_words(config.rules)):
        with store.engine.begin() as connection:
            connection.execute(insert(Article), batch)
    return time.perf_counter() - started


# -- measuring the command ---------------------------------------------------------------------------------


def measured(args: Sequence[str], output: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, output lines) of one `monitor` process.

    The peak is what /usr/bin/time reports for its own child: a process forked straight from
    this one would start with this process's peak (Linux carries the parent's high-water
    mark into a forked child and across its exec), ~150 MB of rules and rows that are not
    the command's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}
    peak_file = output.with_suffix(".rss")
    with output.open("wb") as out:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(peak_file), str(MONITOR), "--log-level", "warning", *args],
            stdout=out, stderr=subprocess.PIPE, env=env, check=False,
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.decode()}")
    peak_kb = int(peak_file.read_text().split()[-1])
    with output.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return wall, peak_kb / 1024, lines


def bench(engine_name: str, url_for: dict[int, str], workdir: Path, sizes: Sequence[int]) -> None:
    print(f"\n{engine_name}")
    print(f"{'articles':>9} {'fill s':>7} | {'diff s':>7} {'art/s':>7} {'peak MB':>8} {'changes':>7} | "
          f"{'since 30d s':>11} {'MB':>6} | {'export s':>8} {'MB':>6} | {'diff/export':>11} | {'start s':>7} {'MB':>6}")
    peaks = {}
    for size in sizes:
        old, new = write_configs(workdir, url_for[size], f"{engine_name}-{size}")
        filled = fill(old, size)
        out = workdir / "out.jsonl"
        diff_s, diff_mb, changes = measured(["--config", str(old), "rules", "diff", str(new), "--json"], out)
        since_s, since_mb, _ = measured(["--config", str(old), "rules", "diff", str(new), "--json", "--since", "30d"], out)
        export_s, export_mb, exported = measured(["--config", str(old), "export"], out)
        start_s, start_mb, _ = measured(["--config", str(old), "rules", "test"], out)  # no labels: the fixed cost
        assert exported == size, (exported, size)
        peaks[size] = diff_mb
        print(f"{size:>9} {filled:>7.1f} | {diff_s:>7.2f} {size / diff_s:>7.0f} {diff_mb:>8.1f} {changes:>7} | "
              f"{since_s:>11.2f} {since_mb:>6.1f} | {export_s:>8.2f} {export_mb:>6.1f} | {diff_s / export_s:>11.1f} | "
              f"{start_s:>7.2f} {start_mb:>6.1f}")
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        print(f"peak RSS {large:,} vs {small:,} articles: {peaks[large] / peaks[small]:.2f}x for {large / small:.0f}x the articles")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rules_diff_bench"))
    parser.add_argument("--postgres", default=os.environ.get("MONITOR_TEST_POSTGRES_URL"),
                        help="a server to create the benchmark databases on (default $MONITOR_TEST_POSTGRES_URL)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"rules diff bench: sizes {sizes}, {os.cpu_count()} CPUs, workdir {args.workdir}")
    if not args.no_sqlite:
        bench("sqlite", {size: f"sqlite:///{args.workdir / f'archive-{size}.db'}" for size in sizes}, args.workdir, sizes)
    if args.postgres:
        base = make_url(args.postgres)
        urls = {}
        for size in sizes:
            name = f"monitor_bench_rules_diff_{size}"
            _create_database(base, name)
            urls[size] = base.set(database=name).render_as_string(hide_password=False)
        bench("postgresql", urls, args.workdir, sizes)
    return 0


def _create_database(base: object, name: str) -> None:
    import psycopg

    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    raise SystemExit(main())
