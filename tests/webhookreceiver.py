"""A real HTTP webhook receiver on 127.0.0.1 for tests.

It verifies every request with the `standardwebhooks` library (as a user's receiver would)
and can be told to fail the next N requests, answer 429 with Retry-After, or hang. Import
the fixture into a test module:

    from tests.webhookreceiver import webhook_receiver  # noqa: F401
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode("ascii")


@dataclass(frozen=True)
class Attempt:
    """Every request that arrived, with what the receiver answered."""

    webhook_id: str | None
    answered: int | None  # None: the receiver hung and never answered in time
    verified: bool


@dataclass(frozen=True)
class Accepted:
    """A request whose signature verified and that was answered 2xx."""

    webhook_id: str
    timestamp: int
    headers: dict[str, str]
    body: bytes
    payload: Any


@dataclass(frozen=True)
class _Plan:
    status: int
    retry_after: str | None
    hang: float
    delay: float = 0.0  # accept, but only after this many seconds


class WebhookReceiver:
    def __init__(self, secret: str):
        self.secret = secret
        self.attempts: list[Attempt] = []
        self.accepted: list[Accepted] = []
        self._plans: list[_Plan] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a hung handler must not block teardown
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/monitor"

    def fail_next(self, count: int, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self._plans.extend(_Plan(status, retry_after, 0.0) for _ in range(count))

    def answer_slowly(self, count: int, seconds: float) -> None:
        """Accept the next `count` requests normally, each after `seconds`."""
        with self._lock:
            self._plans.extend(_Plan(204, None, 0.0, delay=seconds) for _ in range(count))

    def hang_next(self, count: int, seconds: float = 30.0) -> None:
        with self._lock:
            self._plans.extend(_Plan(200, None, seconds) for _ in range(count))

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _next_plan(self) -> _Plan | None:
        with self._lock:
            return self._plans.pop(0) if self._plans else None

    def _handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        webhook_id = headers.get("webhook-id")
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            self.attempts.append(Attempt(webhook_id, 401, verified=False))
            return 401, {}, f"bad signature: {exc}".encode()
        plan = self._next_plan()
        if plan is not None and plan.hang:
            self.attempts.append(Attempt(webhook_id, None, verified=True))
            self._stopping.wait(plan.hang)
            return None
        if plan is not None and plan.delay:
            self._stopping.wait(plan.delay)
            plan = None
        if plan is not None:
            self.attempts.append(Attempt(webhook_id, plan.status, verified=True))
            extra = {"Retry-After": plan.retry_after} if plan.retry_after else {}
            return plan.status, extra, b"planned failure"
        self.attempts.append(Attempt(webhook_id, 204, verified=True))
        self.accepted.append(
            Accepted(
                webhook_id=str(webhook_id),
                timestamp=int(headers["webhook-timestamp"]),
                headers=headers,
                body=body,
                payload=payload,
            )
        )
        return 204, {}, b""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                answer = receiver._handle(headers, body)
                if answer is None:
                    self.close_connection = True
                    return
                status, extra, content = answer
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def payloads(self) -> list[Any]:
        return [json.loads(item.body) for item in self.accepted]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(new_secret())
    yield receiver
    receiver.stop()
