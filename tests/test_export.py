"""`monitor export`, the archive as JSON Lines for tools outside this repo, on SQLite and
PostgreSQL: every stored field comes back, the filters and their errors, constant memory on a
large archive, Arabic as UTF-8, and a reader that leaves early."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlmodel import select

from monitor.cli import main
from monitor.config import Config
from monitor.daemon import open_store
from monitor.export import ExportError, ExportFilter, iso_utc, parse_since, stored_topics, write_export
from monitor.models import Article
from monitor.pipeline import prepare_entry
from monitor.relevance import Decision
from monitor.sources.fetch import FetchOutcome
from monitor.sources.parse import ParsedEntry
from monitor.store import DueFeed, PollResult, Store
from tests.conftest import make_config, write_config
from tests.test_cli import MONITOR, UNREACHABLE, monitor, one_line

UTC = timezone.utc
NOW = datetime.now(UTC).replace(microsecond=0)
FEEDS = ("kuna", "alanba")

US_TITLE = "الكويت وواشنطن تختتمان الجولة الخامسة من الحوار الاستراتيجي"
US_BODY = (
    "اختتمت في مدينة الكويت الجولة الخامسة من الحوار الاستراتيجي بين دولة الكويت والولايات المتحدة "
    "الأمريكية، وتناول الوفدان التعاون الدفاعي والأمن السيبراني والتبادل التجاري والتعليم وتبادل الطلبة."
)
UK_TITLE = "اجتماع لجنة التوجيه المشتركة بين الكويت والمملكة المتحدة في لندن"
UK_BODY = (
    "عقدت لجنة التوجيه المشتركة بين دولة الكويت والمملكة المتحدة اجتماعها في لندن لمتابعة الحوار "
    "الاستراتيجي بين البلدين، وبحث الجانبان الاستثمار والتعليم والأمن والدفاع."
)
BOOKS_TITLE = "افتتاح معرض الكتاب في مشرف"
BOOKS_BODY = "افتتح معرض الكتاب أبوابه اليوم في أرض المعارض بمشاركة مئات دور النشر العربية والأجنبية."
KEYS = [
    "id", "feed_id", "url", "title", "text", "published", "first_seen", "language", "flagged", "watch", "score",
    "round", "topics", "story", "duplicate_of", "source_type", "full_text", "page_error", "canonical_url",
]


# -- storing articles the way the poller does ---------------------------------------------------


def _config(tmp_path: Path, db_url: str) -> Config:
    body = "".join(f'[[feeds]]\nid = "{feed}"\nurl = "http://127.0.0.1:9/{feed}.xml"\n' for feed in FEEDS)
    return make_config(tmp_path, body, db_url=db_url)


def _candidate(config: Config, url: str, title: str, body: str, published: datetime, **source: Any) -> Any:
    entry = ParsedEntry(guid=url, link=url, title=title, summary=body, published=published,
                        published_is_fallback=False, author=None, language="ar")
    return dataclasses.replace(prepare_entry(entry, config.rules, config.dedup), **source)


def _record(store: Store, config: Config, feed_id: str, candidates: list, seen_at: datetime) -> None:
    feed = DueFeed(feed_id, f"http://127.0.0.1:9/{feed_id}.xml", None, None, None, 900, 0, None)
    outcome = FetchOutcome(
        feed_id=feed_id, requested_url=feed.url, final_url=feed.url, permanent_redirect=None, status="ok",
        http_status=200, body=None, headers={}, etag=None, last_modified=None, body_hash=None,
        retry_after=None, error=None, elapsed=0.01,
    )
    store.record_poll(PollResult(
        feed=feed, outcome=outcome, candidates=tuple(candidates), error=None, fetched_at=seen_at,
        next_poll_at=seen_at + timedelta(minutes=15), rules_fingerprint=config.rules.fingerprint,
        dedup_config=config.dedup,
    ))


def _archive(tmp_path: Path, db_url: str) -> tuple[Config, Store]:
    """Five articles over 40 days: kw-us (and a near-copy of it), kw-uk, two unflagged; RSS,
    sitemap and listing-page sources; one page that failed."""
    config = _config(tmp_path, db_url)
    store = open_store(config)
    published = NOW - timedelta(days=41)
    _record(store, config, "kuna", [
        _candidate(config, "https://kuna.example/books", BOOKS_TITLE, BOOKS_BODY, published),
    ], NOW - timedelta(days=40))
    _record(store, config, "kuna", [
        _candidate(config, "https://kuna.example/us-5?utm_source=rss", US_TITLE, US_BODY,
                   NOW - timedelta(days=2, hours=3), source_type="sitemap", full_text=True),
        _candidate(config, "https://kuna.example/uk", UK_TITLE, UK_BODY, NOW - timedelta(days=2),
                   source_type="html", page_error="HTTP 404 on the article page"),
    ], NOW - timedelta(days=2))
    _record(store, config, "alanba", [
        _candidate(config, "https://alanba.example/n/5", US_TITLE,
                   US_BODY.replace("اختتمت في مدينة الكويت", "اختتمت اليوم في الكويت"), NOW - timedelta(hours=5)),
        _candidate(config, "https://alanba.example/n/6", "Book fair opens", "The book fair opened today.",
                   NOW - timedelta(hours=4, minutes=30, microseconds=250)),
    ], NOW - timedelta(hours=1, microseconds=1500))
    return config, store


def _export(config: Config, capsys: pytest.CaptureFixture[str], *options: str) -> list[dict]:
    capsys.readouterr()  # what setting up the archive logged
    assert main(["--config", str(config.source), "export", *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


# -- round trip -------------------------------------------------------------------------------


def test_every_stored_article_comes_back_field_for_field(tmp_path: Path, db_url: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config, store = _archive(tmp_path, db_url)
    exported = _export(config, capsys)
    with store.session() as session:
        rows = session.exec(select(Article).order_by(Article.id)).all()  # type: ignore[arg-type]
    assert len(exported) == len(rows) == 5
    for line, row in zip(exported, rows, strict=True):
        assert list(line) == KEYS
        assert line == {
            "id": row.id, "feed_id": row.feed_id, "url": row.link, "title": row.title, "text": row.summary,
            "published": row.published_at.isoformat().replace("+00:00", "Z"),
            "first_seen": row.first_seen_at.isoformat().replace("+00:00", "Z"),
            "language": row.language, "flagged": row.flagged, "watch": row.watch, "score": row.score,
            "round": row.round, "topics": list(Decision.from_json_dict(json.loads(row.decision)).topics),
            "story": row.story_id, "duplicate_of": row.duplicate_of, "source_type": row.source_type,
            "full_text": row.full_text, "page_error": row.page_error, "canonical_url": row.canonical_url,
        }
        assert datetime.fromisoformat(line["first_seen"]) == row.first_seen_at
    by_url = {line["url"]: line for line in exported}
    us, copy, uk = (by_url[url] for url in ("https://kuna.example/us-5?utm_source=rss", "https://alanba.example/n/5",
                                            "https://kuna.example/uk"))
    assert [line["id"] for line in exported] == sorted(line["id"] for line in exported)
    assert (us["flagged"], us["watch"], us["round"], us["source_type"], us["full_text"]) == (True, "kw-us", 5, "sitemap", True)
    assert {"defense", "education"} <= set(us["topics"]) and isinstance(us["score"], float)
    assert (uk["watch"], uk["round"], uk["source_type"], uk["page_error"]) == ("kw-uk", None, "html",
                                                                              "HTTP 404 on the article page")
    assert copy["duplicate_of"] == us["id"] and copy["story"] == us["story"] is not None
    assert us["canonical_url"] == "https://kuna.example/us-5"  # tracking parameters dropped; `url` as the feed gave it
    assert by_url["https://kuna.example/books"]["flagged"] is False and by_url["https://kuna.example/books"]["watch"] is None
    assert all(line["published"].endswith("Z") and line["first_seen"].endswith("Z") for line in exported)
    store.engine.dispose()


def test_the_file_written_with_output_is_what_stdout_gets(tmp_path: Path, db_url: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    config, store = _archive(tmp_path, db_url)
    capsys.readouterr()
    assert main(["--config", str(config.source), "export", "--flagged"]) == 0
    printed = capsys.readouterr().out
    target = tmp_path / "out" / "flagged.jsonl"
    target.parent.mkdir()
    target.write_text("an older export\n", encoding="utf-8")
    assert main(["--config", str(config.source), "export", "--flagged", "--output", str(target)]) == 0
    assert capsys.readouterr().out == ""
    assert target.read_text(encoding="utf-8") == printed and printed.count("\n") == 3
    assert sorted(p.name for p in target.parent.iterdir()) == ["flagged.jsonl"]  # no partial file left
    store.engine.dispose()


def test_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "", db_url=f"sqlite:///{tmp_path / 'm.db'}")
    target = tmp_path / "exports"
    target.mkdir()  # a directory where the file should go: the final rename fails
    assert main(["--config", str(config), "export", "--output", str(target)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"monitor: --output {target}: cannot write there: Is a directory")
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    assert main(["--config", str(config), "export", "--output", str(tmp_path / "missing" / "x.jsonl")]) == 2
    assert "cannot write there: No such file or directory" in capsys.readouterr().err


# -- filters ------------------------------------------------------------------------------------


def test_flagged_watch_and_since_filters(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    config, store = _archive(tmp_path, db_url)
    urls = lambda *options: [line["url"] for line in _export(config, capsys, *options)]  # noqa: E731
    assert len(urls()) == 5
    assert urls("--flagged") == ["https://kuna.example/us-5?utm_source=rss", "https://kuna.example/uk",
                                 "https://alanba.example/n/5"]
    assert urls("--watch", "kw-uk") == ["https://kuna.example/uk"]
    assert urls("--watch", "kw-us") == urls("--watch", "kw-us", "--flagged") == [
        "https://kuna.example/us-5?utm_source=rss", "https://alanba.example/n/5"]
    # first_seen, not published: the article published 5 hours ago but first seen 1 hour ago is in.
    assert urls("--since", "90m") == ["https://alanba.example/n/5", "https://alanba.example/n/6"]
    assert len(urls("--since", "30d")) == 4
    assert len(urls("--since", "41d")) == 5
    assert urls("--since", "3d", "--watch", "kw-us") == ["https://kuna.example/us-5?utm_source=rss",
                                                        "https://alanba.example/n/5"]
    # A date is its midnight UTC; a time names its offset, or is UTC.
    two_days_ago = NOW - timedelta(days=2)
    assert len(urls("--since", (two_days_ago - timedelta(days=1)).date().isoformat())) == 4
    assert len(urls("--since", iso_utc(two_days_ago) or "")) == 4  # at the instant: included
    assert len(urls("--since", (two_days_ago + timedelta(seconds=1)).isoformat())) == 2
    kuwait = timezone(timedelta(hours=3))
    assert len(urls("--since", two_days_ago.astimezone(kuwait).isoformat())) == 4
    assert len(urls("--since", two_days_ago.replace(tzinfo=None).isoformat())) == 4
    store.engine.dispose()


@pytest.mark.parametrize("value", ["3x", "yesterday", "2026-13-01", "0d", "-5d", "999999999999d", "30", "", "1 week"])
def test_a_bad_since_is_one_line_naming_the_option_with_an_example(tmp_path: Path, value: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "", db_url=f"sqlite:///{tmp_path / 'db' / 'm.db'}")
    assert main(["--config", str(config), "export", f"--since={value}"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("monitor: --since:") and "30d" in line and "2026-11-01" in line
    assert not (tmp_path / "db").exists()  # refused before the database was opened


@pytest.mark.parametrize("future", [timedelta(days=1), timedelta(minutes=5)])
def test_a_since_in_the_future_is_refused(tmp_path: Path, future: timedelta, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "", db_url=f"sqlite:///{tmp_path / 'm.db'}")
    when = datetime.now(UTC) + future
    value = when.date().isoformat() if future >= timedelta(days=1) else when.isoformat()
    assert main(["--config", str(config), "export", "--since", value]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("monitor: --since:") and "in the future" in line


def test_an_unknown_watch_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "", db_url=f"sqlite:///{tmp_path / 'm.db'}")
    assert main(["--config", str(config), "export", "--watch", "kw-fr"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["monitor: --watch: unknown watch 'kw-fr' (known: kw-us, kw-uk)"]


def test_since_forms() -> None:
    now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since(" 12h ", now) == now - timedelta(hours=12)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00:00Z", now) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00Z", now) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00:00+03:00", now) == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert parse_since("2026-11-01 08:00", now) == datetime(2026, 11, 1, 8, tzinfo=UTC)
    assert parse_since("2026-11-26T12:30:00Z", now) == now  # now itself is not the future
    with pytest.raises(ExportError, match="in the future"):
        parse_since("2026-11-26T12:30:01Z", now)
    with pytest.raises(ExportError, match="--since: cannot read"):
        parse_since("2026-11-01T25:00Z", now)


def test_times_are_utc_with_z_and_topics_are_read_leniently() -> None:
    assert iso_utc(datetime(2026, 11, 1, 8, tzinfo=UTC)) == "2026-11-01T08:00:00Z"
    assert iso_utc(datetime(2026, 11, 1, 8, 0, 0, 1500, tzinfo=UTC)) == "2026-11-01T08:00:00.001500Z"
    assert iso_utc(datetime(2026, 11, 1, 11, tzinfo=timezone(timedelta(hours=3)))) == "2026-11-01T08:00:00Z"
    assert iso_utc(None) is None
    assert stored_topics('{"flagged":true,"topics":["defense","trade_investment"]}') == ["defense", "trade_investment"]
    assert stored_topics("{}") == stored_topics("not json") == stored_topics('["x"]') == []
    assert stored_topics('{"topics":"defense"}') == stored_topics('{"topics":[1,null]}') == []


# -- streaming ----------------------------------------------------------------------------------

ARTICLE_TEXT = ("نص تجريبي طويل عن الأخبار المحلية في الكويت والأسواق والطقس. " * 25).strip()  # ~1.5k chars


def _bulk_archive(tmp_path: Path, db_url: str, count: int) -> tuple[Config, Store]:
    """`count` rows written straight into the article table: volume, not the decision path,
    is what these tests need (the round trip above goes through the store's writer)."""
    config = _config(tmp_path, db_url)
    store = open_store(config)
    decision = json.dumps({"flagged": False, "watch": None, "score": 0.0, "round": None, "topics": ["trade_investment"],
                           "matches": [], "threshold": 5.0, "explanation": ""}, ensure_ascii=False)
    with store.engine.begin() as connection:
        for start in range(0, count, 2000):
            connection.execute(insert(Article.__table__), [  # type: ignore[arg-type]
                {"feed_id": "kuna", "guid": f"g{n}", "link": f"https://kuna.example/{n}", "canonical_url": None,
                 "fingerprint": f"{n:064x}", "title": f"خبر رقم {n}", "summary": f"{n} {ARTICLE_TEXT}",
                 "language": "ar", "published_at": NOW, "published_is_fallback": False, "first_seen_at": NOW,
                 "flagged": False, "score": 0.0, "decision": decision, "rules_fingerprint": "r",
                 "source_type": "rss", "full_text": False}
                for n in range(start, min(start + 2000, count))
            ])
    return config, store


def _clean_environ() -> dict[str, str]:
    """This environment without the monitor's own variables: the config file decides."""
    return {key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")}


class CountingSink:
    """A binary stream that keeps only how much it was given."""

    def __init__(self) -> None:
        self.lines = 0
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def test_a_large_archive_is_exported_in_constant_memory(tmp_path: Path, db_url: str) -> None:
    rows = 20_000
    config, store = _bulk_archive(tmp_path, db_url, rows)
    cursors: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def remember_cursor(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if "FROM article" in statement:
            cursors.append(type(cursor).__name__)

    sink = CountingSink()
    tracemalloc.start()
    try:
        written = write_export(store.engine, ExportFilter(), sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == sink.lines == rows
    exported_mb = sink.bytes / 2**20
    peak_mb = peak / 2**20
    # The export is ~60 MB of JSON (~80 MB as Python strings); one chunk of 1,000 rows is ~4 MB.
    assert exported_mb > 50
    assert peak_mb < 12, f"peak {peak_mb:.1f} MB for {exported_mb:.0f} MB exported"
    if store.engine.dialect.name == "postgresql":
        assert cursors == ["ServerCursor"]  # psycopg's named cursor: the server holds the rows
    store.engine.dispose()


def test_arabic_is_written_as_utf8_whatever_the_locale(tmp_path: Path, db_url: str) -> None:
    config, store = _archive(tmp_path, db_url)
    store.engine.dispose()
    done = subprocess.run(
        [str(MONITOR), "--config", str(config.source), "export", "--watch", "kw-uk"], capture_output=True,
        env={**_clean_environ(), "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert b"\\u06" not in done.stdout and UK_TITLE.encode("utf-8") in done.stdout
    [line] = done.stdout.decode("utf-8").splitlines()
    assert json.loads(line)["text"] == UK_BODY


def test_a_reader_that_leaves_early_ends_the_export_quietly(tmp_path: Path, db_url: str) -> None:
    config, store = _bulk_archive(tmp_path, db_url, 3000)  # ~9 MB: far more than a pipe holds
    store.engine.dispose()
    done = subprocess.run(
        ["bash", "-c", f'set -o pipefail; "{MONITOR}" --config "{config.source}" export | head -1'],
        capture_output=True, timeout=120, env=_clean_environ(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == 1
    assert b"Traceback" not in done.stderr and b"BrokenPipe" not in done.stderr and b"Exception" not in done.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "", with_rules=True)
    done = monitor("--config", str(config), "export", "--flagged", env={"MONITOR_DATABASE_URL": UNREACHABLE})
    line = one_line(done)
    assert done.returncode == 75
    assert "postgresql://monitor:***@127.0.0.1:1/monitor" in line and "cannot connect" in line
