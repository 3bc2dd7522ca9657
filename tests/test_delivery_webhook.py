"""send_webhook against a real HTTP receiver on 127.0.0.1 that verifies every request with
the `standardwebhooks` library and can fail, rate-limit or hang on demand."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from pydantic import TypeAdapter

from monitor.delivery import Channel, WebhookChannel, send_webhook
from monitor.digest import alert_payload, digest_payload
from tests.test_digest import GENERATED, make_item, sample_content
from tests.webhookreceiver import WebhookReceiver, new_secret, webhook_receiver  # noqa: F401


def hook_channel(url: str, timeout: str = "5s") -> WebhookChannel:
    parsed = TypeAdapter(Channel).validate_python(
        {"id": "ops-hook", "type": "webhook", "url": url, "secret_env": "MONITOR_WEBHOOK_SECRET", "timeout": timeout}
    )
    assert isinstance(parsed, WebhookChannel)
    return parsed


def digest_body(delivery_id: str = "m_hook0001") -> bytes:
    return json.dumps(digest_payload(sample_content(delivery_id)), ensure_ascii=False).encode("utf-8")


async def test_digest_arrives_signed_once_with_the_delivery_id(webhook_receiver: WebhookReceiver) -> None:
    body = digest_body()
    result = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, "m_hook0001", body)
    assert (result.ok, result.status, result.error) == (True, 204, None)
    [accepted] = webhook_receiver.accepted
    assert accepted.webhook_id == "m_hook0001"
    assert accepted.body == body  # byte for byte, so the signature covers what was built
    assert accepted.headers["content-type"] == "application/json; charset=utf-8"
    assert abs(accepted.timestamp - time.time()) < 60
    assert accepted.payload["data"]["delivery_id"] == "m_hook0001"
    assert accepted.payload["data"]["sections"][0]["items"][0]["headline"].startswith("انطلاق الجولة السادسة")


async def test_alert_payload_is_delivered_too(webhook_receiver: WebhookReceiver) -> None:
    body = json.dumps(alert_payload(make_item(), alert_id="urgent", delivery_id="a_1", generated_at=GENERATED), ensure_ascii=False).encode()
    result = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, "a_1", body)
    assert result.ok
    assert webhook_receiver.payloads()[0]["type"] == "story.alert"


async def test_wrong_secret_is_rejected_by_the_receiver_and_permanent(webhook_receiver: WebhookReceiver) -> None:
    result = await send_webhook(hook_channel(webhook_receiver.url), new_secret(), "m_bad", digest_body())
    assert (result.ok, result.retryable, result.status) == (False, False, 401)
    assert [attempt.verified for attempt in webhook_receiver.attempts] == [False]
    assert webhook_receiver.accepted == []


async def test_failures_are_retryable_and_every_retry_keeps_the_webhook_id(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail_next(2, status=503)
    channel = hook_channel(webhook_receiver.url)
    body = digest_body("m_retry01")
    outcomes = [await send_webhook(channel, webhook_receiver.secret, "m_retry01", body) for _ in range(3)]
    assert [(r.ok, r.retryable, r.status) for r in outcomes] == [(False, True, 503), (False, True, 503), (True, False, 204)]
    assert [a.webhook_id for a in webhook_receiver.attempts] == ["m_retry01"] * 3
    assert all(a.verified for a in webhook_receiver.attempts), "a retry must carry a fresh valid signature"
    assert [a.webhook_id for a in webhook_receiver.accepted] == ["m_retry01"]


@pytest.mark.parametrize(("retry_after", "expected"), [("7", 7.0), (None, None)])
async def test_429_is_retryable_and_retry_after_is_reported(webhook_receiver: WebhookReceiver, retry_after: str | None, expected: float | None) -> None:
    webhook_receiver.fail_next(1, status=429, retry_after=retry_after)
    result = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, "m_429", digest_body())
    assert (result.ok, result.retryable, result.status, result.retry_after) == (False, True, 429, expected)


async def test_retry_after_as_http_date(webhook_receiver: WebhookReceiver) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    webhook_receiver.fail_next(1, status=503, retry_after=when)
    result = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, "m_date", digest_body())
    assert result.retryable and result.retry_after is not None and 100 < result.retry_after <= 120


@pytest.mark.parametrize(("status", "retryable"), [(408, True), (500, True), (502, True), (400, False), (404, False), (410, False), (301, False)])
async def test_status_classification(webhook_receiver: WebhookReceiver, status: int, retryable: bool) -> None:
    webhook_receiver.fail_next(1, status=status)
    result = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, "m_s", digest_body())
    assert (result.ok, result.retryable, result.status) == (False, retryable, status)
    assert f"HTTP {status}" in (result.error or "")


async def test_hanging_receiver_times_out_and_is_retryable(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.hang_next(1, seconds=30)
    started = time.monotonic()
    result = await send_webhook(hook_channel(webhook_receiver.url, timeout="1s"), webhook_receiver.secret, "m_hang", digest_body())
    assert not result.ok and result.retryable
    assert "timed out after 1s" in (result.error or "")
    assert time.monotonic() - started < 20, "the configured timeout must bound the attempt"
    # The receiver is answering again: the same delivery goes through.
    again = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, "m_hang", digest_body())
    assert again.ok and [a.webhook_id for a in webhook_receiver.accepted] == ["m_hang"]


async def test_nothing_listening_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await send_webhook(hook_channel(f"http://127.0.0.1:{port}/hook"), new_secret(), "m_x", b"{}")
    assert not result.ok and result.retryable and "ConnectError" in (result.error or "")


async def test_a_shared_client_is_used_and_left_open(webhook_receiver: WebhookReceiver) -> None:
    async with httpx.AsyncClient() as client:
        for n in range(2):
            result = await send_webhook(hook_channel(webhook_receiver.url), webhook_receiver.secret, f"m_c{n}", digest_body(), client=client)
            assert result.ok
        assert not client.is_closed
    assert [a.webhook_id for a in webhook_receiver.accepted] == ["m_c0", "m_c1"]
