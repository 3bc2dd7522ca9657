"""Do the new sources (#9) find what full text finds? The monitor polls a loopback site farm
(bench/sitefarm.py) through its CLI and is judged on the corpus labels.

    .venv/bin/python bench/eval_sources.py [--sites 100] [--articles 50] [--mode candidates] [--no-modes]
                                           [--extract-only | --reference] [--keep]

For each full_text mode (MODE first, then the other two unless --no-modes), every feed of the
farm set to it: `monitor db upgrade` on a fresh SQLite file, a cold `monitor poll`, a warm
`monitor poll`, `monitor export`. MODE is judged in detail, the others by fetches and finds.
`--extract-only` runs monitor.sources.extract on the farm's pages in-process (no poller);
`--reference` fetches and extracts with plain trafilatura (a yardstick). Prints:

1. relevance per source kind: recall and precision of the stored `flagged` against the labels,
   beside the same articles' full text classified directly (`Config.rules.classify(title,
   body)`) and beside the feed's own text alone (title, or title + first sentence);
2. extracted text: per fetched article, the share of its words found in the exported `text`
   (median, p10) and the share of pages where boilerplate leaked in (a «most read» headline, a
   reader comment, the footer);
3. requests per pass (cold, warm): robots.txt, sitemaps/listings/feeds, article pages, pages
   under a robots.txt-disallowed path (must be 0), strays (links that are not entries), article
   pages fetched again on the warm pass (must be 0);
4. wall time of each pass, article pages per second, and per CPU-second of the monitor.

The rules are the shipped ones ([terms], [[watches]], [topics], [dedup] copied from
config/monitor.toml at run time); each run gets a fresh SQLite database in a temp directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from datetime import UTC

from sitefarm import (
    COMMENTS,
    CORPUS,
    KINDS,
    LINKS_SELECTOR,
    Farm,
    FarmArticle,
    Request,
    Site,
    SiteFarm,
    build_farm,
    first_sentence,
    read_corpus,
)

from monitor.arabic import normalized_words
from monitor.config import load_config
from monitor.relevance import RuleSet

MONITOR = REPO / ".venv" / "bin" / "monitor"
RULE_TABLES = {"terms", "watches", "watches.clauses", "topics", "dedup"}
TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")
SOURCE_DOCUMENTS = {"/sitemap.xml", "/sitemap-news.xml", "/sitemap-pages.xml", "/section/local", "/rss.xml"}
FOOTER_MARK = "جميع الحقوق محفوظة"
MODES = ("never", "candidates", "always")


# -- configuration -------------------------------------------------------------------------


def rules_part(config_text: str) -> str:
    """The [terms], [[watches]], [topics] and [dedup] tables of a monitor.toml, as written."""
    keep, out = False, []
    for line in config_text.splitlines():
        header = TABLE_HEADER.match(line)
        if header:
            keep = header.group(1) in RULE_TABLES
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def feed_table(server: SiteFarm, site: Site, mode: str, max_pages: int) -> str:
    lines = ["[[feeds]]", f"id = {toml_string(site.feed_id)}", f"url = {toml_string(server.entry_url(site))}"]
    lines.append(f'type = "{ {"rss": "rss", "sitemap": "sitemap", "html": "html"}[site.discovery] }"')
    if site.discovery == "html":
        lines.append(f"links = {toml_string(LINKS_SELECTOR)}")
    if site.discovery == "sitemap":
        lines.append(f"include = {toml_string('^https?://[^/]+/(news|private)/')}")
    if site.text_selector:
        lines.append(f"text = {toml_string(site.text_selector)}")
    lines += [f'full_text = "{mode}"', f"max_pages = {max_pages}", 'max_age = "7d"']
    return "\n".join(lines)


def farm_config(server: SiteFarm, workdir: Path, mode: str, max_pages: int, rules_source: Path) -> Path:
    """A config whose feeds are the farm's sites; per_host is generous because every site is
    its own host (port) on one loopback address, and nothing else shares it."""
    parts = [
        f'[monitor]\nstate_dir = {toml_string(str(workdir / "state"))}\nlog_level = "warning"\n',
        f'[database]\nurl = {toml_string("sqlite:///" + str(workdir / "monitor.db"))}\n',
        "[polling]\nconcurrency = 32\nper_host = 8\ntimeout = \"20s\"\n",
        *(feed_table(server, site, mode, max_pages) + "\n" for site in server.farm.sites),
        rules_part(rules_source.read_text(encoding="utf-8")),
    ]
    path = workdir / "monitor.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# -- running the monitor -------------------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    seconds: float
    cpu_seconds: float  # user + system of the monitor process and its workers
    farm_cpu_seconds: float  # this process: the farm's servers (the baseline's share of the box)
    requests: tuple[Request, ...]
    returncode: int
    output: str


@dataclass(frozen=True)
class Run:
    mode: str
    cold: Pass
    warm: Pass
    rows: tuple[dict, ...]
    export_error: str


def monitor_command(config: Path, *args: str) -> list[str]:
    return [str(MONITOR), "--config", str(config), *args]


def child_environment() -> dict[str, str]:
    """Nothing from the caller's environment may point the monitor at another database."""
    return {k: v for k, v in os.environ.items() if k not in ("MONITOR_DATABASE_URL", "MONITOR_CONFIG", "MONITOR_STATE_DIR")}


def timed_poll(server: SiteFarm, config: Path) -> Pass:
    server.take_requests()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    farm_before = time.process_time()
    started = time.perf_counter()
    done = subprocess.run(monitor_command(config, "poll"), capture_output=True, text=True, env=child_environment(), check=False)
    seconds = time.perf_counter() - started
    farm_cpu = time.process_time() - farm_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Pass(seconds, cpu, farm_cpu, tuple(server.take_requests()), done.returncode, done.stdout + done.stderr)


def export_rows(config: Path) -> tuple[tuple[dict, ...], str]:
    done = subprocess.run(monitor_command(config, "export"), capture_output=True, text=True, env=child_environment(), check=False)
    if done.returncode != 0:
        return (), f"exit {done.returncode}: {done.stderr.strip()[-800:]}"
    rows, bad = [], 0
    for line in done.stdout.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    return tuple(rows), f"{bad} lines not JSON" if bad else ""


def run_monitor(server: SiteFarm, mode: str, max_pages: int, rules_source: Path, workdir: Path) -> Run:
    config = farm_config(server, workdir, mode, max_pages, rules_source)
    upgrade = subprocess.run(monitor_command(config, "db", "upgrade"), capture_output=True, text=True, env=child_environment(), check=False)
    if upgrade.returncode != 0:
        raise SystemExit(f"monitor db upgrade failed ({upgrade.returncode}): {upgrade.stderr.strip()[-800:]}")
    cold = timed_poll(server, config)
    warm = timed_poll(server, config)
    rows, error = export_rows(config)
    return Run(mode, cold, warm, rows, error)


# -- judging -------------------------------------------------------------------------------


def farm_index(server: SiteFarm) -> dict[tuple[int, str], FarmArticle]:
    """(port, path) → article: the key an exported URL is matched on."""
    ports = {site.index: urlsplit(server.site_base(site.index)).port for site in server.farm.sites}
    return {(ports[a.site], a.path): a for a in server.farm.articles()}


def row_key(row: dict) -> tuple[int, str]:
    parts = urlsplit(row.get("url") or "")
    return (parts.port or 0, parts.path)


@dataclass(frozen=True)
class Scores:
    relevant: int
    flagged: int
    true_positives: int

    @property
    def recall(self) -> float:
        return self.true_positives / self.relevant if self.relevant else 0.0

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged if self.flagged else 1.0

    def show(self) -> str:
        return f"R {self.recall:.3f} P {self.precision:.3f} ({self.true_positives}/{self.relevant}, {self.flagged} flagged)"


def score(articles: list[FarmArticle], flagged: set[FarmArticle]) -> Scores:
    return Scores(
        relevant=sum(a.relevant for a in articles), flagged=sum(a in flagged for a in articles),
        true_positives=sum(a.relevant and a in flagged for a in articles),
    )


def feed_text(site: Site, article: FarmArticle) -> str:
    """What the source itself carries besides the title, before any page is fetched."""
    return first_sentence(article.body) if site.kind == "sentence-rss" else ""


def relevance_report(farm: Farm, rows: dict[FarmArticle, dict], rules: RuleSet) -> list[str]:
    lines = [f"{'kind':<13} {'through the source (stored flagged)':<40} {'full text, direct':<40} {'feed text only':<40} missing"]
    for kind in (*KINDS, "all"):
        sites = [s for s in farm.sites if kind in (s.kind, "all")]
        articles = [a for s in sites for a in s.articles]
        site_of = {a: s for s in sites for a in s.articles}
        through = {a for a in articles if rows.get(a, {}).get("flagged")}
        direct = {a for a in articles if rules.classify(a.title, a.body).flagged}
        alone = {a for a in articles if rules.classify(a.title, feed_text(site_of[a], a)).flagged}
        missing = sum(a not in rows for a in articles)
        source, full = score(articles, through), score(articles, direct)
        met = full.recall - source.recall <= 0.03 and source.precision >= full.precision
        lines.append(
            f"{kind:<13} {source.show():<40} {full.show():<40} "
            f"{score(articles, alone).show():<40} {missing:>7}  target {'met' if met else 'NOT met'}"
        )
    return lines


def missed_relevant(farm: Farm, rows: dict[FarmArticle, dict], rules: RuleSet) -> list[str]:
    """Relevant articles full text finds and the source does not: what to look at first."""
    out = []
    for site in farm.sites:
        for a in site.articles:
            if a.relevant and not rows.get(a, {}).get("flagged") and rules.classify(a.title, a.body).flagged:
                row = rows.get(a)
                state = "not stored" if row is None else f"full_text={row.get('full_text')} page_error={row.get('page_error')!r} text={len(row.get('text') or '')} chars"
                out.append(f"  {site.feed_id} {a.corpus_id}: {state}")
    return out


def word_share(expected: str, got: str) -> float:
    want = Counter(normalized_words(expected))
    have = Counter(normalized_words(got))
    total = sum(want.values())
    return sum(min(n, have[w]) for w, n in want.items()) / total if total else 1.0


def leaks(article: FarmArticle, text: str) -> tuple[bool, bool]:
    """(a «most read» headline leaked, any boilerplate leaked: headline, comment or footer)."""
    flat = " ".join(normalized_words(text))
    headline = any(" ".join(normalized_words(h)) in flat for h in article.most_read if normalized_words(h))
    other = any(" ".join(normalized_words(c)) in flat for c in (*COMMENTS, FOOTER_MARK))
    return headline, headline or other


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def text_report(farm: Farm, rows: dict[FarmArticle, dict]) -> list[str]:
    lines = [f"{'kind':<13} {'fetched':>7} {'median':>7} {'p10':>6} {'headline leak':>13} {'any boilerplate':>15} {'page errors':>11}"]
    for kind in (*KINDS, "all"):
        fetched = [(a, rows[a]) for s in farm.sites if kind in (s.kind, "all") for a in s.articles if rows.get(a, {}).get("full_text")]
        errors = sum(bool(rows[a].get("page_error")) for s in farm.sites if kind in (s.kind, "all") for a in s.articles if a in rows)
        shares = [word_share(a.body, row.get("text") or "") for a, row in fetched]
        leaked = [leaks(a, row.get("text") or "") for a, row in fetched]
        n = len(fetched) or 1
        median = statistics.median(shares) if shares else float("nan")
        headline_leaks = sum(h for h, _ in leaked) / n
        met = median >= 0.95 and headline_leaks < 0.05
        lines.append(
            f"{kind:<13} {len(fetched):>7} {median:>7.3f} {percentile(shares, 0.1):>6.3f}"
            f" {headline_leaks:>13.3f} {sum(b for _, b in leaked) / n:>15.3f} {errors:>11}  target {'met' if met else 'NOT met'}"
        )
    return lines


def request_kind(path: str) -> str:
    bare = path.split("?", 1)[0]
    if bare == "/robots.txt":
        return "robots"
    if bare in SOURCE_DOCUMENTS:
        return "source"
    if bare.startswith("/news/"):
        return "article"
    if bare.startswith("/private/"):
        return "disallowed"
    return "stray"


def requests_line(label: str, run_pass: Pass, earlier: tuple[Request, ...] = ()) -> str:
    kinds = Counter(request_kind(r.path) for r in run_pass.requests)
    not_modified = sum(r.status == 304 for r in run_pass.requests)
    unconditional = sorted({r.path for r in run_pass.requests if request_kind(r.path) == "source" and not r.conditional})
    seen = {(r.site, r.path) for r in earlier if request_kind(r.path) == "article"}
    again = sum((r.site, r.path) in seen for r in run_pass.requests if request_kind(r.path) == "article")
    anonymous = sum("dialogue-monitor" not in r.user_agent for r in run_pass.requests)
    pages = kinds["article"]
    per_site = Counter(r.site for r in run_pass.requests if request_kind(r.path) == "article")
    return (
        f"{label:<5} {run_pass.seconds:>6.2f}s cpu {run_pass.cpu_seconds:>6.2f}s (farm {run_pass.farm_cpu_seconds:.2f}s)  robots {kinds['robots']:>4}  source {kinds['source']:>4}"
        f" (304: {not_modified:>4})  article pages {pages:>5} (max {max(per_site.values(), default=0)}/site)  again {again:>4}  disallowed {kinds['disallowed']}  stray {kinds['stray']}"
        f"  UA without 'dialogue-monitor' {anonymous}  pages/s {pages / run_pass.seconds if run_pass.seconds else 0:.1f}"
        f"  pages/cpu-s {pages / run_pass.cpu_seconds if run_pass.cpu_seconds else 0:.1f}  exit {run_pass.returncode}"
        + (f"\n      source documents asked without a validator: {', '.join(unconditional)}" if earlier and unconditional else "")
    )


def stray_entries(server: SiteFarm, run: Run) -> int:
    known = farm_index(server)
    return sum(row_key(row) not in known for row in run.rows)


def matched_rows(server: SiteFarm, run: Run) -> dict[FarmArticle, dict]:
    known = farm_index(server)
    return {known[row_key(row)]: row for row in run.rows if row_key(row) in known}


def report_run(server: SiteFarm, run: Run, rules: RuleSet, detailed: bool) -> None:
    farm = server.farm
    print(f"\n== full_text = {run.mode}: {len(farm.sites)} sites x {len(farm.sites[0].articles)} articles ==")
    print(requests_line("cold", run.cold))
    print(requests_line("warm", run.warm, run.cold.requests))
    for label, run_pass in (("cold", run.cold), ("warm", run.warm)):
        if run_pass.returncode != 0:
            print(f"  {label} poll exited {run_pass.returncode}; last output:\n{run_pass.output[-1500:]}")
    if run.export_error:
        print(f"  monitor export: {run.export_error}")
    if not run.rows:
        return
    rows = matched_rows(server, run)
    published = sum(bool(r.get("published")) for r in rows.values())
    print(
        f"exported {len(run.rows)} rows; {len(rows)} of {sum(1 for _ in farm.articles())} farm articles stored; "
        f"{stray_entries(server, run)} entries that are no article; {published} with a date; "
        f"{sum(bool(r.get('full_text')) for r in rows.values())} with full text"
    )
    fetched = {(r.site, r.path.split("?", 1)[0]) for r in run.cold.requests if request_kind(r.path) == "article"}
    lost = [a for a, r in rows.items() if (a.site, a.path) in fetched and not r.get("full_text") and not r.get("page_error")]
    if lost:
        kinds = Counter(farm.sites[a.site].kind + "/" + farm.sites[a.site].discovery for a in lost)
        print(f"pages fetched whose text was not stored (no full_text, no page_error): {len(lost)} ({dict(kinds)})")
    relevant = [a for a in farm.articles() if a.relevant]
    unread = [a for a in relevant if not rows.get(a, {}).get("full_text")]
    flagged = sum(bool(rows.get(a, {}).get("flagged")) for a in relevant)
    print(f"relevant placements: {len(relevant)}, flagged {flagged}, page not read {len(unread)}"
          + (f" (e.g. {', '.join(f'site{a.site}:{a.corpus_id}' for a in unread[:6])})" if unread else ""))
    if not detailed:
        return
    print("\n1. relevance (labels: corpus; filler is irrelevant)")
    print("\n".join(relevance_report(farm, rows, rules)))
    missed = missed_relevant(farm, rows, rules)
    if missed:
        print(f"relevant articles full text flags but the source does not ({len(missed)}):")
        print("\n".join(missed[:40]))
    print("\n2. extracted text (articles whose page was fetched)")
    print("\n".join(text_report(farm, rows)))
    errors = Counter(re.sub(r"http://127\.0\.0\.1:\d+", "<site>", row["page_error"]) for row in rows.values() if row.get("page_error"))
    for error, count in errors.most_common(6):
        print(f"  page_error x{count}: {error}")


def reference_extract(site: Site, page: str) -> str:
    """The issue's extraction order done plainly: the site's selector, else JSON-LD
    articleBody, else trafilatura; a yardstick for the monitor's own extraction."""
    import trafilatura
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    if site.text_selector:
        nodes = HTMLParser(page).css(site.text_selector)
        return "\n".join(node.text(separator=" ") for node in nodes)
    for block in re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, flags=re.DOTALL):
        body = json.loads(block).get("articleBody")
        if body:
            return body
    return trafilatura.extract(page, include_comments=False) or ""


def reference_run(server: SiteFarm, rules: RuleSet) -> tuple[Run, float]:
    """Fetch every allowed article page once and extract it in this process: no monitor
    involved. Returns the rows as an export would have them, and extraction seconds."""
    import httpx

    rows, extracting = [], 0.0
    server.take_requests()
    started = time.perf_counter()
    with httpx.Client(timeout=20) as client:
        for site in server.farm.sites:
            for article in site.articles:
                if article.private:
                    continue
                page = client.get(server.article_url(article)).text
                began = time.perf_counter()
                text = reference_extract(site, page)
                extracting += time.perf_counter() - began
                flagged = rules.classify(article.title, text).flagged
                rows.append({"url": server.article_url(article), "title": article.title, "text": text, "flagged": flagged, "full_text": True})
    seconds = time.perf_counter() - started
    cold = Pass(seconds, extracting, 0.0, tuple(server.take_requests()), 0, "")
    return Run("reference", cold, Pass(0.0, 0.0, 0.0, (), 0, ""), tuple(rows), ""), extracting


def extraction_only(server: SiteFarm, rules: RuleSet) -> None:
    """The monitor's extractor (monitor.sources.extract) on every allowed article page in this
    process, one core, no poller: text quality and pages/s per core apart from fetching."""
    from datetime import datetime

    from monitor.sources.extract import extract_page

    rows: dict[FarmArticle, dict] = {}
    seconds = 0.0
    now = datetime.now(UTC)
    for site in server.farm.sites:
        for article in site.articles:
            if article.private:
                continue
            page = server.page(article)
            began = time.perf_counter()
            extracted = extract_page(
                page.body, {"content-type": page.content_type}, url=server.article_url(article), fetched_at=now,
                text_selector=site.text_selector,
            )
            seconds += time.perf_counter() - began
            flagged = rules.classify(article.title, extracted.text).flagged
            rows[article] = {"text": extracted.text, "full_text": not extracted.error, "flagged": flagged, "page_error": extracted.error}
    print(f"\n== monitor.sources.extract alone: {len(rows)} pages in {seconds:.2f}s on one core = {len(rows) / seconds:.1f} pages/s ==")
    print("\n".join(relevance_report(server.farm, rows, rules)))
    print("\n".join(text_report(server.farm, rows)))
    errors = Counter(row["page_error"] for row in rows.values() if row["page_error"])
    for error, count in errors.most_common(5):
        print(f"  page error x{count}: {error}")


def modes_summary(server: SiteFarm, runs: list[Run]) -> list[str]:
    """One line per full_text mode: what it costs in fetches and time, what it finds."""
    lines = [f"{'full_text':<11} {'cold':>7} {'warm':>7} {'pages cold':>10} {'pages warm':>10} {'full text':>9} {'relevant flagged':>16} {'precision':>9}"]
    for run in runs:
        rows = matched_rows(server, run)
        relevant = [a for a in server.farm.articles() if a.relevant]
        flagged = [a for a, row in rows.items() if row.get("flagged")]
        precision = sum(a.relevant for a in flagged) / len(flagged) if flagged else 1.0
        pages = [sum(request_kind(r.path) == "article" for r in p.requests) for p in (run.cold, run.warm)]
        lines.append(
            f"{run.mode:<11} {run.cold.seconds:>6.2f}s {run.warm.seconds:>6.2f}s {pages[0]:>10} {pages[1]:>10}"
            f" {sum(bool(r.get('full_text')) for r in rows.values()):>9} {sum(a in flagged for a in relevant):>7}/{len(relevant):<8} {precision:>9.3f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--articles", type=int, default=50)
    parser.add_argument("--mode", choices=MODES, default="candidates", help="the mode judged in detail")
    parser.add_argument("--max-pages", type=int, help="per source and poll (default: ARTICLES, so a cold pass can read all)")
    parser.add_argument("--no-modes", action="store_true", help="only --mode, not the other full_text modes")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rules", type=Path, default=REPO / "config" / "monitor.toml", help="where the rule tables come from")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--extract-only", action="store_true", help="no poller: the monitor's extractor on the farm's pages")
    parser.add_argument("--reference", action="store_true", help="no monitor: fetch and extract in-process (the yardstick)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directories (configs, databases)")
    args = parser.parse_args(argv)
    if not MONITOR.exists():
        raise SystemExit(f"{MONITOR} not found: install the project into .venv first")
    corpus = read_corpus(args.corpus)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="eval-sources-"))
    try:
        farm = build_farm(corpus, args.sites, args.articles, args.seed)
        with SiteFarm(farm) as server:
            (work / "rules").mkdir()
            config = farm_config(server, work / "rules", args.mode, args.max_pages or args.articles, args.rules)
            rules = load_config(config, child_environment()).rules
            if args.extract_only:
                extraction_only(server, rules)
                return 0
            if args.reference:
                run, extracting = reference_run(server, rules)
                report_run(server, run, rules, detailed=True)
                pages = len(run.rows)
                print(f"reference extraction: {pages} pages in {extracting:.2f}s on one core = {pages / extracting:.1f} pages/s")
                return 0
            modes = [args.mode, *([] if args.no_modes else [m for m in MODES if m != args.mode])]
            runs = []
            for mode in modes:
                (work / mode).mkdir()
                runs.append(run_monitor(server, mode, args.max_pages or args.articles, args.rules, work / mode))
                report_run(server, runs[-1], rules, detailed=mode == args.mode)
            print("\n" + "\n".join(modes_summary(server, runs)))
    finally:
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
