"""`monitor status [--json]` (#11) on a database in a known state, on SQLite and PostgreSQL, and
the daemon's heartbeat row as a real `monitor run` starts and stops."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import update

from monitor.cli import main
from monitor.daemon import open_store
from monitor.models import Article, DaemonProcess, Delivery, DigestRun, Feed, utcnow
from monitor.status import heartbeat, next_slot, register_daemon
from monitor.store import HOST, Store
from tests.conftest import make_config, write_config
from tests.feedserver import FeedServer, feed_server  # noqa: F401
from tests.test_daemon import start_daemon, stop_daemon, wait_for
from tests.test_poll import filler, rss

FEEDS = """
[[feeds]]
id = "alrai"
url = "http://127.0.0.1:9/alrai.xml"

[[feeds]]
id = "kuna"
url = "http://127.0.0.1:9/kuna.xml"

[[feeds]]
id = "alanba"
url = "http://127.0.0.1:9/alanba.xml"

[[feeds]]
id = "old"
url = "http://127.0.0.1:9/old.xml"
enabled = false

[[feeds]]
id = "new"
url = "http://127.0.0.1:9/new.xml"

[[channels]]
id = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "HOOK_SECRET"

[[digests]]
id = "daily"
at = "07:30"
watches = ["kw-us", "kw-uk"]
channels = ["hook"]
"""


def _article(feed_id: str, guid: str, seen: datetime, watch: str | None = None) -> Article:
    return Article(
        feed_id=feed_id, guid=guid, link=f"https://{feed_id}.example/{guid}", fingerprint=guid, title=f"عنوان {guid}",
        summary="نص", published_at=seen, first_seen_at=seen, flagged=watch is not None, watch=watch,
        decision="{}", rules_fingerprint="r",
    )


def _delivery(delivery_id: str, status: str, now: datetime) -> Delivery:
    return Delivery(id=delivery_id, kind="digest", source_id="daily", channel_id="hook", status=status, payload=b"{}",
                    created_at=now, next_attempt_at=now, give_up_at=now + timedelta(days=1))


def known_state(store: Store, now: datetime) -> None:
    """Feeds: alrai ok, kuna failing 7 times, alanba failing twice, old disabled, new never
    polled. Articles: three stored in the last day (kw-us flags one), one flagged two days
    ago. One digest built yesterday; two deliveries pending, one failed, one sent. A running
    daemon on this host and one on another host silent for ten minutes."""
    with store.session() as session:
        session.execute(update(Feed).where(Feed.id.in_(["alrai", "kuna", "alanba"])).values(last_polled_at=now))  # type: ignore[attr-defined]
        session.execute(update(Feed).where(Feed.id == "kuna").values(consecutive_failures=7, last_error="HTTP 404"))  # type: ignore[arg-type]
        session.execute(update(Feed).where(Feed.id == "alanba").values(consecutive_failures=2, last_error="timed out"))  # type: ignore[arg-type]
        session.add_all([
            _article("alrai", "a1", now - timedelta(hours=1), "kw-us"),
            _article("alrai", "a2", now - timedelta(hours=2)),
            _article("kuna", "k1", now - timedelta(hours=23)),
            _article("kuna", "k0", now - timedelta(hours=48), "kw-uk"),
        ])
        session.add(DigestRun(id="d_1", digest_id="daily", slot=now - timedelta(hours=20), created_at=now - timedelta(hours=20),
                              story_count=4))
        session.add_all([_delivery("m_1", "pending", now), _delivery("m_2", "pending", now), _delivery("m_3", "failed", now),
                         _delivery("m_4", "sent", now)])
        session.add(DaemonProcess(owner="other-host:42", host="other-host", pid=42, started_at=now - timedelta(days=3),
                                  heartbeat_at=now - timedelta(minutes=10)))
        session.commit()
    register_daemon(store, f"{HOST}:{os.getpid()}", now - timedelta(hours=5), "127.0.0.1:9464")
    heartbeat(store, f"{HOST}:{os.getpid()}", now)


def run_status(config_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()  # what the set-up logged before main() configured logging
    assert main(["--config", str(config_path), "status", *extra]) == 0
    return capsys.readouterr().out


def test_status_json_describes_a_known_state(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, FEEDS, db_url=db_url)
    store = open_store(config)
    now = utcnow()
    known_state(store, now)
    store.engine.dispose()

    document = json.loads(run_status(config.source, capsys, "--json"))

    assert document["version"] == 1
    assert document["daemon_running"] is True
    daemons = {d["owner"]: d for d in document["daemons"]}
    mine = daemons[f"{HOST}:{os.getpid()}"]
    assert (mine["running"], mine["host"], mine["pid"], mine["metrics_listen"]) == (True, HOST, os.getpid(), "127.0.0.1:9464")
    assert abs(datetime.fromisoformat(mine["started_at"]) - (now - timedelta(hours=5))) < timedelta(milliseconds=1)
    assert daemons["other-host:42"]["running"] is False
    feeds = document["feeds"]
    assert (feeds["ok"], feeds["failing"], feeds["disabled"], feeds["never_polled"]) == (1, 2, 1, 1)
    assert [(w["id"], w["consecutive_failures"], w["last_error"]) for w in feeds["worst"]] == [
        ("kuna", 7, "HTTP 404"), ("alanba", 2, "timed out")]
    assert document["articles_24h"] == {"stored": 3, "flagged": 1, "flagged_by_watch": {"kw-us": 1, "kw-uk": 0}}
    [digest] = document["digests"]
    assert digest["id"] == "daily" and digest["last_stories"] == 4
    assert abs(datetime.fromisoformat(digest["last_slot"]) - (now - timedelta(hours=20))) < timedelta(milliseconds=1)
    next_at = datetime.fromisoformat(digest["next_at"])
    assert now < next_at <= now + timedelta(days=1)
    assert next_at.astimezone(config.tz).strftime("%H:%M") == "07:30"
    assert document["deliveries"] == {"pending": 2, "failed": 1}
    database = document["database"]
    assert database["engine"] == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    assert database["size_bytes"] > 0 and database["revision"] == _head()


def test_status_screen_names_the_daemon_the_worst_feeds_and_the_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, FEEDS)
    store = open_store(config)
    known_state(store, utcnow())
    store.engine.dispose()

    screen = run_status(config.source, capsys)

    assert f"Daemon:     running ({HOST}:{os.getpid()} since" in screen
    assert "gone:    other-host:42" in screen
    assert "Feeds:      1 ok, 2 failing, 1 disabled, 1 not polled yet" in screen
    assert screen.index("kuna") < screen.index("alanba")
    assert "Last 24 h:  3 articles stored, 1 flagged (kw-us 1, kw-uk 0)" in screen
    assert "Digest daily: last " in screen and "(4 stories), next " in screen
    assert "Outbox:     2 pending, 1 failed" in screen
    assert f"schema revision {_head()}" in screen
    assert len(screen.splitlines()) <= 24


def test_status_of_an_empty_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, "")
    document = json.loads(run_status(config.source, capsys, "--json"))
    assert document["daemon_running"] is False and document["daemons"] == []
    assert document["feeds"] == {"ok": 0, "failing": 0, "disabled": 0, "never_polled": 0, "worst": []}
    assert document["digests"] == []
    assert "not running against this database" in run_status(config.source, capsys)


def test_next_slot_is_the_first_one_after_now(tmp_path: Path) -> None:
    config = make_config(tmp_path, "")  # Asia/Kuwait, UTC+3 all year
    before = datetime(2026, 11, 26, 4, 29, tzinfo=UTC)
    assert next_slot("07:30", config, before) == datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    at = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    assert next_slot("07:30", config, at) == datetime(2026, 11, 27, 4, 30, tzinfo=UTC)


def test_a_running_daemon_is_seen_and_its_row_goes_when_it_stops(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    feed_server.route("/a.xml", body=rss([filler(1, 1)]))
    body = f'[polling]\nparse_workers = 1\ntick = "1s"\n[[feeds]]\nid = "a"\nurl = "{feed_server.url("/a.xml")}"\n'
    path = write_config(tmp_path, body)
    daemon = start_daemon(path)
    try:
        def running() -> bool:
            return json.loads(run_status(path, capsys, "--json"))["daemon_running"]

        wait_for(running)
        document = json.loads(run_status(path, capsys, "--json"))
    finally:
        stderr = stop_daemon(daemon)
    [row] = document["daemons"]
    assert row["owner"] == f"{HOST}:{daemon.pid}" and row["running"] and row["metrics_listen"] is None
    after = json.loads(run_status(path, capsys, "--json"))
    assert after["daemons"] == [] and after["daemon_running"] is False
    assert "Traceback" not in stderr


def _head() -> str:
    """The newest migration: what every test database is upgraded to."""
    from alembic.script import ScriptDirectory

    from monitor.store import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
