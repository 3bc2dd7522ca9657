"""Digests and alerts through the outbox, against a real SMTP server and a real webhook
receiver on loopback, on SQLite and PostgreSQL: exactly once, retried, never lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor import notify
from monitor.config import Config
from monitor.daemon import open_store
from monitor.models import Article, Delivery, Feed, Story
from monitor.store import Store, make_engine
from tests.conftest import REPO, make_config
from tests.smtpserver import SmtpServer, free_port, smtp_server, start_smtp_server, tls_certs  # noqa: F401
from tests.webhookreceiver import WebhookReceiver, webhook_receiver  # noqa: F401

UTC = timezone.utc


def _config(tmp_path: Path, db_url: str, *, smtp_port: int, hook: WebhookReceiver, alerts: bool = False,
            extra: str = "") -> Config:
    body = f"""
[[feeds]]
id = "kuna"
name = "كونا"
url = "http://127.0.0.1:9/kuna.xml"

[[feeds]]
id = "alanba"
name = "الأنباء"
url = "http://127.0.0.1:9/alanba.xml"

[[channels]]
id = "desk"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Dialogue Monitor <monitor@example.org>"
to = ["desk@example.org"]
timeout = "3s"

[[channels]]
id = "hook"
type = "webhook"
url = "{hook.url}"
secret_env = "HOOK_SECRET"
timeout = "2s"

[[digests]]
id = "daily"
at = "07:30"
watches = ["kw-us", "kw-uk"]
channels = ["desk", "hook"]
"""
    if alerts:
        body += '\n[[alerts]]\nid = "urgent"\nwatches = ["kw-us"]\nchannels = ["hook"]\n'
    body += extra
    return make_config(tmp_path, body, db_url=db_url, environ={"HOOK_SECRET": hook.secret})


def _add_story(store: Store, *, feed_id: str, title: str, watch: str = "kw-us", flagged: bool = True,
               link: str | None = None, story: Story | None = None) -> Story:
    """Store one article as the pipeline would, with its decision, in a (new or given) story."""
    now = datetime.now(UTC)
    with store.session() as session:
        if story is None:
            story = Story(key=os.urandom(8).hex(), first_seen_at=now, watch=watch, round=4,
                          flagged_at=now if flagged else None, score=9.0)
            session.add(story)
            session.flush()
        decision = {"flagged": flagged, "watch": watch, "score": 9.0, "round": 4, "topics": ["security"],
                    "matches": [{"term": "الحوار الاستراتيجي", "field": "body", "start": 0, "end": 18}]}
        article = Article(feed_id=feed_id, guid=os.urandom(6).hex(), link=link, title=title,
                          summary="الحوار الاستراتيجي بين الكويت والولايات المتحدة يبحث التعاون الأمني",
                          fingerprint=os.urandom(8).hex(), published_at=now, first_seen_at=now, flagged=flagged,
                          watch=watch if flagged else None, score=9.0, round=4, decision=json.dumps(decision),
                          rules_fingerprint="test", story_id=story.id)
        session.add(article)
        session.flush()
        if story.headline_article_id is None:
            story.headline_article_id = article.id
            session.add(story)
        session.commit()
        return story


def _rows(store: Store) -> list[Delivery]:
    with store.session() as session:
        from sqlmodel import select

        return list(session.exec(select(Delivery).order_by(Delivery.channel_id)))


@pytest.fixture
def relay(smtp_server: Callable[..., SmtpServer]) -> SmtpServer:  # noqa: F811
    return smtp_server("none")


def test_digest_arrives_once_with_the_right_stories(tmp_path: Path, db_url: str, relay: SmtpServer,
                                                    webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    us = _add_story(store, feed_id="kuna", title="انطلاق الجولة الرابعة من الحوار الاستراتيجي الكويتي الأمريكي")
    _add_story(store, feed_id="alanba", title="الحوار الاستراتيجي: الجولة الرابعة", story=us)  # same story
    _add_story(store, feed_id="alanba", title="اجتماع مجموعة التوجيه المشتركة الكويتية البريطانية", watch="kw-uk")
    _add_story(store, feed_id="kuna", title="خبر غير ذي صلة", flagged=False)
    digest = config.digests[0]

    built = notify.build_digest(store, config, digest, slot=datetime.now(UTC))
    assert (built.stories, built.deliveries) == (2, 2)
    asyncio.run(notify.send_due(store, config))

    assert len(relay.received) == 1
    message = relay.received[0].message
    assert "2 خبران" in message["Subject"] or "خبران" in message["Subject"]
    html = message.get_body(("html",)).get_content()
    assert "انطلاق الجولة الرابعة" in html and "مجموعة التوجيه المشتركة" in html
    assert "خبر غير ذي صلة" not in html
    assert "الأنباء" in html  # "also reported by" for the second outlet of the US story
    [payload] = webhook_receiver.payloads()
    assert payload["type"] == "digest.published"
    published = [item["published"] for section in payload["data"]["sections"] for item in section["items"]]
    assert published and all(value.endswith("+00:00") for value in published)  # as docs/webhooks.md says
    headlines = [item["headline"] for section in payload["data"]["sections"] for item in section["items"]]
    assert len(headlines) == 2
    assert all(row.status == "sent" and row.attempts == 1 for row in _rows(store))
    rows = {row.channel_id: row for row in _rows(store)}
    assert message["Message-ID"] == f"<{rows['desk'].id}@dialogue-monitor>"
    assert webhook_receiver.accepted[0].webhook_id == rows["hook"].id

    # The same slot again builds nothing; a later digest carries only stories flagged since.
    assert notify.build_digest(store, config, digest, slot=built_slot(store)).run_id is None
    later = notify.build_digest(store, config, digest, slot=datetime.now(UTC) + timedelta(days=1))
    assert later.stories == 0 and later.deliveries == 0  # send_empty = false
    _add_story(store, feed_id="kuna", title="بيان ختامي للجولة الرابعة")
    third = notify.build_digest(store, config, digest, slot=datetime.now(UTC) + timedelta(days=2))
    assert third.stories == 1
    asyncio.run(notify.send_due(store, config))
    assert len(relay.received) == 2
    assert "بيان ختامي" in relay.received[1].message.get_body(("html",)).get_content()
    assert "انطلاق الجولة الرابعة" not in relay.received[1].message.get_body(("html",)).get_content()
    store.engine.dispose()


def built_slot(store: Store) -> datetime:
    from sqlmodel import select

    from monitor.models import DigestRun

    with store.session() as session:
        return session.exec(select(DigestRun.slot)).first()


def test_mail_server_down_is_retried_and_arrives_once(tmp_path: Path, db_url: str,
                                                      webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    port = free_port()
    config = _config(tmp_path, db_url, smtp_port=port, hook=webhook_receiver)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي الكويتي الأمريكي")
    notify.build_digest(store, config, config.digests[0], slot=datetime.now(UTC))

    asyncio.run(notify.send_due(store, config))  # nothing listens on the SMTP port
    rows = {row.channel_id: row for row in _rows(store)}
    assert rows["hook"].status == "sent"
    assert rows["desk"].status == "pending" and rows["desk"].attempts == 1
    assert rows["desk"].last_error and rows["desk"].next_attempt_at > datetime.now(UTC)

    # Not due yet: nothing is attempted.
    asyncio.run(notify.send_due(store, config))
    assert {row.channel_id: row.attempts for row in _rows(store)}["desk"] == 1

    server = start_smtp_server("none", port=port)
    try:
        later = datetime.now(UTC) + timedelta(minutes=5)
        asyncio.run(notify.send_due(store, config, now=later))
        asyncio.run(notify.send_due(store, config, now=later + timedelta(hours=1)))
        assert len(server.received) == 1
        rows = {row.channel_id: row for row in _rows(store)}
        assert rows["desk"].status == "sent" and rows["desk"].attempts == 2
        assert len(webhook_receiver.accepted) == 1
    finally:
        server.stop()
    store.engine.dispose()


def test_retries_give_up_loudly_after_the_deadline_and_can_be_retried_by_hand(
    tmp_path: Path, db_url: str, webhook_receiver: WebhookReceiver, relay: SmtpServer  # noqa: F811
) -> None:
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي")
    notify.build_digest(store, config, config.digests[0], slot=datetime.now(UTC))
    webhook_receiver.fail_next(100, status=503)
    moment = datetime.now(UTC)
    for _ in range(40):
        asyncio.run(notify.send_due(store, config, now=moment))
        moment += timedelta(hours=2)
    hook = {row.channel_id: row for row in _rows(store)}["hook"]
    assert hook.status == "failed" and "503" in (hook.last_error or "")
    assert 5 <= hook.attempts <= 20  # exponential backoff over 24 h, not one attempt per call
    assert [row.id for row in notify.list_deliveries(store, failed_only=True)] == [hook.id]

    webhook_receiver.fail_next(0)
    webhook_receiver._plans.clear()
    notify.retry_delivery(store, hook.id)
    [row] = asyncio.run(notify.send_due(store, config, only=hook.id))
    assert row.status == "sent"
    assert webhook_receiver.accepted[-1].webhook_id == hook.id
    with pytest.raises(ValueError, match="already sent"):
        notify.retry_delivery(store, hook.id)
    store.engine.dispose()


def test_crash_between_sending_and_recording_repeats_the_same_ids(
    tmp_path: Path, db_url: str, relay: SmtpServer, webhook_receiver: WebhookReceiver  # noqa: F811
) -> None:
    """The send happened, the process died before recording it: the next attempt sends the
    same message again under the same Message-ID / webhook-id, so receivers can drop it."""
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي")
    notify.build_digest(store, config, config.digests[0], slot=datetime.now(UTC))
    for row in _rows(store):
        asyncio.run(notify._attempt(config, row))  # sent, never recorded (the crash)
    asyncio.run(notify.send_due(store, config))
    assert len(relay.received) == 2
    assert relay.received[0].message["Message-ID"] == relay.received[1].message["Message-ID"]
    ids = [accepted.webhook_id for accepted in webhook_receiver.accepted]
    assert len(ids) == 2 and ids[0] == ids[1]
    assert all(row.status == "sent" for row in _rows(store))
    assert len(notify.list_deliveries(store)) == 2
    store.engine.dispose()


def test_sigkill_while_sending_then_restart_sends_once_more_with_the_same_id(
    tmp_path: Path, relay: SmtpServer, webhook_receiver: WebhookReceiver  # noqa: F811
) -> None:
    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي")
    webhook_receiver.hang_next(1, seconds=20)
    env = {**os.environ, "HOOK_SECRET": webhook_receiver.secret}
    command = [sys.executable, "-m", "monitor", "--config", str(config.source), "digest", "send", "daily"]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not webhook_receiver.attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert webhook_receiver.attempts, "the webhook was never attempted"
    process.send_signal(signal.SIGKILL)
    process.wait(10)

    pending = [row for row in _rows(store) if row.status == "pending"]
    assert [row.channel_id for row in pending] == ["hook"]  # the attempt was never recorded
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [a.webhook_id for a in webhook_receiver.attempts] == [pending[0].id, pending[0].id]
    assert len(webhook_receiver.accepted) == 1
    assert len(relay.received) == 1  # the email went out once, before the kill
    assert all(row.status == "sent" for row in _rows(store))
    store.engine.dispose()


def test_alerts_fire_once_per_story_and_rule(tmp_path: Path, db_url: str, relay: SmtpServer,
                                             webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver, alerts=True)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي الكويتي الأمريكي")
    _add_story(store, feed_id="kuna", title="مجموعة التوجيه", watch="kw-uk")  # not watched by the alert
    assert notify.queue_alerts(store, config) == 1
    assert notify.queue_alerts(store, config) == 0
    asyncio.run(notify.send_due(store, config))
    [payload] = webhook_receiver.payloads()
    assert payload["type"] == "story.alert"
    store.engine.dispose()


def test_missed_slot_is_built_once(tmp_path: Path, db_url: str, relay: SmtpServer,
                                   webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    digest = config.digests[0]
    first_start = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)  # 23:00 in Kuwait, the day before
    assert notify.missed_slot(store, digest, config.tz, first_start) is None  # that day's slot predates it
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 12:00 in Kuwait: the 07:30 slot passed while down
    slot = notify.missed_slot(store, digest, config.tz, now)
    assert slot == datetime(2026, 11, 22, 4, 30, tzinfo=UTC)
    notify.build_digest(store, config, digest, slot, now=now)
    assert notify.missed_slot(store, digest, config.tz, now) is None
    assert notify.missed_slot(store, digest, config.tz, now + timedelta(days=1)) is not None
    store.engine.dispose()


def test_the_first_start_does_not_send_a_slot_that_passed_before_it(tmp_path: Path, db_url: str, relay: SmtpServer,
                                                                   webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    digest = config.digests[0]
    first_start = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 12:00 in Kuwait, after today's 07:30
    assert notify.missed_slot(store, digest, config.tz, first_start) is None
    assert notify.missed_slot(store, digest, config.tz, first_start + timedelta(hours=3)) is None  # a restart
    assert notify.first_scheduled(store, digest.id, first_start + timedelta(days=5)) == first_start
    # Down over the next day's slot: that one was missed, and is caught up.
    assert notify.missed_slot(store, digest, config.tz, first_start + timedelta(days=1)) == datetime(
        2026, 11, 23, 4, 30, tzinfo=UTC
    )
    store.engine.dispose()


def test_losing_the_race_to_build_a_slot_is_normal(tmp_path: Path, db_url: str, relay: SmtpServer,
                                                   webhook_receiver: WebhookReceiver,  # noqa: F811
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A second daemon builds the slot between this one's look and its insert: this one
    builds nothing, logs no error, and the slot's messages are queued once."""
    from sqlalchemy import event

    from monitor.log import configure_logging

    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    rival = Store(make_engine(config.database_url))
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي الكويتي الأمريكي")
    digest, slot = config.digests[0], datetime(2026, 11, 22, 4, 30, tzinfo=UTC)
    rival_built: list[notify.BuiltDigest] = []

    def rival_first(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT INTO DIGEST_RUN") and not rival_built:
            rival_built.append(notify.build_digest(rival, config, digest, slot))

    event.listen(store.engine, "before_cursor_execute", rival_first)
    configure_logging("debug", json=True)
    capsys.readouterr()
    lost = notify.build_digest(store, config, digest, slot)
    event.remove(store.engine, "before_cursor_execute", rival_first)
    assert rival_built[0].run_id is not None and rival_built[0].deliveries == 2
    assert lost == notify.BuiltDigest(run_id=None, stories=0, deliveries=0)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert not [line for line in lines if line["level"] in ("error", "warning", "critical")]
    assert any(line["event"] == "digest slot already built by another process" and line["level"] == "debug"
               for line in lines)
    assert len(_rows(store)) == 2
    configure_logging("info")
    rival.engine.dispose()
    store.engine.dispose()


def test_feed_values_are_escaped_in_the_digest(tmp_path: Path, db_url: str, relay: SmtpServer,
                                               webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="<script>alert(1)</script> الحوار", link="javascript:alert(1)")
    notify.build_digest(store, config, config.digests[0], slot=datetime.now(UTC))
    asyncio.run(notify.send_due(store, config))
    html = relay.received[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    store.engine.dispose()


def test_feed_names_come_from_the_database(tmp_path: Path, db_url: str, relay: SmtpServer,
                                          webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    with store.session() as session:
        assert session.get(Feed, "kuna").name == "كونا"
    content = notify.preview_digest(store, config, config.digests[0])
    assert content.total == 0
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي")
    content = notify.preview_digest(store, config, config.digests[0])
    assert content.total == 1 and content.sections[0].items[0].source == "كونا"
    assert _rows(store) == []  # preview records nothing
    store.engine.dispose()


def test_cli_preview_and_deliveries_list(tmp_path: Path, relay: SmtpServer, webhook_receiver: WebhookReceiver,  # noqa: F811
                                         capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.cli import main

    db_url = f"sqlite:///{tmp_path / 'monitor.db'}"
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    monkeypatch.setenv("HOOK_SECRET", webhook_receiver.secret)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="انطلاق الجولة الرابعة من الحوار الاستراتيجي")
    out = tmp_path / "preview.html"
    assert main(["--config", str(config.source), "digest", "preview", "daily", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert 'dir="rtl"' in html and "انطلاق الجولة الرابعة" in html
    assert _rows(store) == [] and relay.received == []  # preview sends and records nothing
    assert main(["--config", str(config.source), "digest", "send", "daily"]) == 0
    assert len(relay.received) == 1 and len(webhook_receiver.accepted) == 1
    capsys.readouterr()
    assert main(["--config", str(config.source), "deliveries", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count(" sent ") == 2
    assert main(["--config", str(config.source), "deliveries", "list", "--failed"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1  # the header only
    store.engine.dispose()


def test_two_senders_at_once_send_each_message_once(tmp_path: Path, db_url: str, relay: SmtpServer,
                                                     webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    """Two daemons sharing one database (or `monitor digest send` beside the daemon) run the
    outbox at the same moment, in two threads with engines of their own: each delivery is
    leased to one of them, so every message arrives exactly once."""
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver, alerts=True)
    store = open_store(config)
    for number in range(6):
        _add_story(store, feed_id="kuna", title=f"الحوار الاستراتيجي الكويتي الأمريكي {number}")
    assert notify.queue_alerts(store, config) == 6
    notify.build_digest(store, config, config.digests[0], slot=datetime.now(UTC))
    webhook_receiver.answer_slowly(7, seconds=0.1)  # each send takes a moment: the senders overlap
    senders = [Store(make_engine(config.database_url)) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda sender: asyncio.run(notify.send_due(sender, config)), senders))
    assert sorted(len(batch) for batch in done) != [0, 8]  # both senders took part
    assert sum(len(batch) for batch in done) == 8
    ids = [accepted.webhook_id for accepted in webhook_receiver.accepted]
    assert len(ids) == 7 and len(set(ids)) == 7  # 6 alerts + 1 digest, each once
    assert len(relay.received) == 1
    assert all(row.status == "sent" and row.attempts == 1 and row.lease_owner is None for row in _rows(store))
    for sender in senders:
        sender.engine.dispose()
    store.engine.dispose()


def test_a_delivery_being_sent_cannot_be_retried_by_hand(tmp_path: Path, db_url: str, relay: SmtpServer,
                                                         webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي")
    notify.build_digest(store, config, config.digests[0], slot=datetime.now(UTC))
    claimed = notify._claim_next(store, datetime.now(UTC), None)  # this process is sending it
    assert claimed is not None and claimed.lease_owner is not None
    with pytest.raises(ValueError, match="being sent right now"):
        notify.retry_delivery(store, claimed.id)
    store.engine.dispose()


def test_an_alert_email_uses_the_alerts_own_templates(tmp_path: Path, db_url: str, relay: SmtpServer,
                                                      webhook_receiver: WebhookReceiver) -> None:  # noqa: F811
    templates = tmp_path / "alert-templates"
    templates.mkdir()
    (templates / "alert.txt").write_text("عاجل للمكتب: {{ alert.item.headline }}\n", encoding="utf-8")
    alert = f'\n[[alerts]]\nid = "desk-now"\nwatches = ["kw-us"]\nchannels = ["desk"]\ntemplate_dir = "{templates}"\n'
    config = _config(tmp_path, db_url, smtp_port=relay.port, hook=webhook_receiver, extra=alert)
    store = open_store(config)
    _add_story(store, feed_id="kuna", title="الحوار الاستراتيجي الكويتي الأمريكي")
    assert notify.queue_alerts(store, config) == 1
    asyncio.run(notify.send_due(store, config))
    [received] = relay.received
    text = received.message.get_body(("plain",)).get_content()
    assert text.startswith("عاجل للمكتب: الحوار الاستراتيجي")  # the override
    assert "الحوار الاستراتيجي" in received.message.get_body(("html",)).get_content()  # shipped alert.html
    store.engine.dispose()
