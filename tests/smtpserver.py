"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd in its own thread).

Plain, STARTTLS or implicit TLS with a throwaway CA from trustme, optional AUTH (LOGIN and
PLAIN), and switchable failure replies, so the sender is tested against the same protocol
a mail relay speaks. Import the fixtures into a test module:

    from tests.smtpserver import smtp_server, tls_certs  # noqa: F401
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope, the raw bytes and whether it came over TLS."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    """aiosmtpd handler that records messages; set `rcpt_reply` / `data_reply` to an SMTP
    reply line (e.g. "451 4.3.0 try again later") to make the server refuse."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        login = session.auth_data if session.authenticated else None
        self.received.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or envelope.content,
                tls=session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                login=login,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


@dataclass(frozen=True)
class TlsCerts:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""

    ca_file: Path
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


class SmtpServer:
    def __init__(self, controller: Controller, handler: Handler, security: Security):
        self.controller = controller
        self.handler = handler
        self.security = security

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def stop(self) -> None:
        self.controller.stop()

    def start(self) -> None:
        """Start again on the same port (after `stop`), to simulate a relay coming back."""
        self.controller.start()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _authenticator(credentials: tuple[str, str]) -> Callable[..., AuthResult]:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode(), auth_data.password.decode()) == credentials
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    return authenticate


def start_smtp_server(
    security: Security = "none",
    *,
    certs: TlsCerts | None = None,
    credentials: tuple[str, str] | None = None,
    port: int | None = None,
    auth_require_tls: bool | None = None,
) -> SmtpServer:
    """`auth_require_tls` defaults to True for STARTTLS servers (AUTH only after the upgrade,
    as real relays do); aiosmtpd does not count implicit TLS, so it is off there."""
    handler = Handler()
    smtp_options: dict[str, Any] = {}
    controller_options: dict[str, Any] = {}
    if security != "none":
        assert certs is not None, "TLS needs certificates"
    if security == "starttls":
        smtp_options["tls_context"] = certs.server_context  # type: ignore[union-attr]
    if security == "tls":
        controller_options["ssl_context"] = certs.server_context  # type: ignore[union-attr]
    if credentials is not None:
        smtp_options["authenticator"] = _authenticator(credentials)
        smtp_options["auth_required"] = True
        smtp_options["auth_require_tls"] = security == "starttls" if auth_require_tls is None else auth_require_tls
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port or free_port(),
        ready_timeout=10,
        server_hostname="localhost",
        **controller_options,
        **smtp_options,
    )
    controller.start()
    return SmtpServer(controller, handler, security)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsCerts(ca_file=ca_file, server_context=context)


@pytest.fixture
def smtp_server(tls_certs: TlsCerts) -> Iterator[Callable[..., SmtpServer]]:
    """Factory: `smtp_server("starttls", credentials=("u", "p"))`; all stopped at teardown."""
    started: list[SmtpServer] = []

    def start(security: Security = "none", **options: Any) -> SmtpServer:
        options.setdefault("certs", tls_certs)
        server = start_smtp_server(security, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        try:
            server.stop()
        except (AssertionError, RuntimeError):
            pass  # already stopped by the test
