"""The daemon's /metrics and /healthz (#11): the real `monitor run` polling a loopback feed and
delivering to a loopback webhook receiver, scraped over HTTP and read with prometheus_client's
own parser; /healthz turning 503 when the database goes; a metrics port already taken."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from monitor.metrics import count_pass, fetch_buckets
from monitor.poll import FeedReport
from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer, feed_server  # noqa: F401
from tests.test_daemon import start_daemon, stop_daemon, wait_for
from tests.test_poll import RELEVANT_BODY, RELEVANT_TITLE, filler, item, rss
from tests.webhookreceiver import WebhookReceiver, webhook_receiver  # noqa: F401

COUNTERS = (
    "monitor_polls", "monitor_entries_parsed", "monitor_articles_stored", "monitor_near_duplicates",
    "monitor_articles_flagged", "monitor_article_pages_fetched", "monitor_deliveries", "monitor_digests_built",
)
GAUGES = ("monitor_outbox_pending", "monitor_outbox_failed", "monitor_feeds_failing", "monitor_last_poll_success_timestamp_seconds")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:  # not listening yet
        return 0, str(exc)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics_config(tmp_path: Path, server: FeedServer, receiver: WebhookReceiver, port: int, db_url: str) -> Path:
    body = f"""[polling]
parse_workers = 1
timeout = "5s"
interval = "15m"
tick = "1s"

[metrics]
listen = "127.0.0.1:{port}"

[[feeds]]
id = "kuna"
url = "{server.url('/kuna.xml')}"
full_text = "never"

[[feeds]]
id = "broken"
url = "{server.url('/missing.xml')}"

[[channels]]
id = "hook"
type = "webhook"
url = "{receiver.url}"
secret_env = "HOOK_SECRET"
timeout = "2s"

[[alerts]]
id = "now"
watches = ["kw-us"]
channels = ["hook"]
"""
    return write_config(tmp_path, body, db_url=db_url)


def test_buckets_reach_the_timeout_and_the_download_cap() -> None:
    assert fetch_buckets(20.0)[-2:] == (20.0, 60.0)
    assert fetch_buckets(3.0) == (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 9.0)


def test_a_pass_is_counted_from_its_reports() -> None:
    reports = [
        FeedReport("a", "ok", 200, 10, 4, 1, 2, None, 0.5, pages_fetched=3),
        FeedReport("b", "error", None, 0, 0, 0, 0, "HTTP 404", 0.1),
        FeedReport("c", "not_modified", 304, 0, 0, 0, 0, None, 0.05),
    ]
    counts = count_pass(reports)
    assert counts.polls == {"ok": 1, "error": 1, "not_modified": 1}
    assert (counts.entries, counts.stored, counts.near_duplicates, counts.pages_fetched) == (10, 4, 2, 3)
    assert counts.any_success
    assert not count_pass(reports[1:2]).any_success


def test_metrics_move_after_a_poll_and_a_delivery(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver  # noqa: F811
) -> None:
    feed_server.route("/kuna.xml", body=rss([item("https://kuna.example/1", RELEVANT_TITLE, RELEVANT_BODY),
                                             filler(1, 1), filler(1, 2)]))
    feed_server.route("/missing.xml", status=503, body=b"down", retry_after="3600")  # not retried during the test
    port = free_port()
    daemon = start_daemon(metrics_config(tmp_path, feed_server, webhook_receiver, port, db_url),
                          {"HOOK_SECRET": webhook_receiver.secret})
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200)
        wait_for(lambda: scrape(port).get(("monitor_polls_total", (("outcome", "ok"),)), 0) >= 1)
        # The alert is queued and sent at the outbox's next tick (every 15 s).
        wait_for(lambda: scrape(port).get(
            ("monitor_deliveries_total", (("channel_type", "webhook"), ("outcome", "sent"))), 0) >= 1, timeout=60)
        samples = scrape(port)
    finally:
        stderr = stop_daemon(daemon)
    assert "Traceback" not in stderr
    assert samples[("monitor_polls_total", (("outcome", "ok"),))] == 1
    assert samples[("monitor_polls_total", (("outcome", "error"),))] == 1
    assert samples[("monitor_entries_parsed_total", ())] == 3
    assert samples[("monitor_articles_stored_total", ())] == 3
    assert samples[("monitor_articles_flagged_total", (("watch", "kw-us"),))] == 1
    assert samples[("monitor_articles_flagged_total", (("watch", "kw-uk"),))] == 0
    assert samples[("monitor_near_duplicates_total", ())] == 0
    assert samples[("monitor_article_pages_fetched_total", ())] == 0
    assert samples[("monitor_feed_fetch_duration_seconds_count", ())] == 2
    assert samples[("monitor_feed_fetch_duration_seconds_bucket", (("le", "15.0"),))] == 2
    assert samples[("monitor_digests_built_total", ())] == 0
    assert samples[("monitor_outbox_pending", ())] == 0
    assert samples[("monitor_outbox_failed", ())] == 0
    assert samples[("monitor_feeds_failing", ())] == 1
    assert samples[("monitor_last_poll_success_timestamp_seconds", ())] > 1.7e9
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert len(webhook_receiver.accepted) == 1


def test_every_contracted_name_is_exported(tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    feed_server.route("/kuna.xml", body=rss([filler(1, 1)]))
    feed_server.route("/missing.xml", body=rss([filler(2, 1)]))
    port = free_port()
    config = metrics_config(tmp_path, feed_server, webhook_receiver, port, f"sqlite:///{tmp_path / 'm.db'}")
    daemon = start_daemon(config, {"HOOK_SECRET": webhook_receiver.secret})
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200)
        _, text = get(f"http://127.0.0.1:{port}/metrics")
        missing_path, _ = get(f"http://127.0.0.1:{port}/other")
    finally:
        stop_daemon(daemon)
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    for name in COUNTERS:
        assert families.get(name) == "counter", name
    for name in GAUGES:
        assert families.get(name) == "gauge", name
    assert families["monitor_feed_fetch_duration_seconds"] == "histogram"
    assert missing_path == 404


def _make_database_disappear(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        path = Path(make_url(db_url).database or "")
        for suffix in ("", "-wal", "-shm"):
            target = path.with_name(path.name + suffix)
            if target.exists():
                target.write_bytes(b"not a database any more" * 512)
        return
    import psycopg

    url = make_url(db_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')


def test_healthz_is_200_then_503_when_the_database_is_gone(
    tmp_path: Path, db_url: str, feed_server: FeedServer, webhook_receiver: WebhookReceiver  # noqa: F811
) -> None:
    feed_server.route("/kuna.xml", body=rss([filler(1, 1)]))
    feed_server.route("/missing.xml", body=rss([filler(2, 1)]))
    port = free_port()
    daemon = start_daemon(metrics_config(tmp_path, feed_server, webhook_receiver, port, db_url),
                          {"HOOK_SECRET": webhook_receiver.secret})
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n"))
        _make_database_disappear(db_url)
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 503)
        _, reason = get(f"http://127.0.0.1:{port}/healthz")
        metrics_status, _ = get(f"http://127.0.0.1:{port}/metrics")
    finally:
        daemon.terminate()
        daemon.wait(20)
    assert "database does not answer" in reason
    assert metrics_status == 200  # the process metrics still scrape; the database gauges are left out


def test_a_metrics_port_in_use_stops_the_start_with_one_line(
    tmp_path: Path, feed_server: FeedServer, webhook_receiver: WebhookReceiver  # noqa: F811
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = metrics_config(tmp_path, feed_server, webhook_receiver, port, f"sqlite:///{tmp_path / 'm.db'}")
        result = subprocess.run(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            cwd=REPO, env={"HOOK_SECRET": webhook_receiver.secret, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("monitor:")]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_listen_address_is_a_config_error(tmp_path: Path) -> None:
    from monitor.config import ConfigError, load_config

    path = write_config(tmp_path, '[metrics]\nlisten = "9464"\n')
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        load_config(path, {})


def test_the_grafana_dashboard_uses_only_exported_names() -> None:
    import json
    import re

    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {re.sub(r"_(total|bucket)$", "", name) for expr in exprs for name in re.findall(r"monitor_\w+", expr)}
    contract = set(COUNTERS) | set(GAUGES) | {"monitor_feed_fetch_duration_seconds"}
    assert used <= contract, used - contract
    assert used == contract  # every contracted metric has a panel
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
