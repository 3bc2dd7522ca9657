"""send_email against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS and
implicit TLS with a throwaway CA, AUTH, refusals, a relay that is down or silent."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import TypeAdapter

from monitor.delivery import Channel, EmailChannel, send_email
from monitor.digest import digest_subject, render_email
from tests.smtpserver import SmtpServer, TlsCerts, free_port, smtp_server, tls_certs  # noqa: F401
from tests.test_digest import sample_content

StartServer = Callable[..., SmtpServer]
CREDENTIALS = ("monitor", "correct horse battery staple")


def email_channel(server_port: int, security: str = "none", **extra: Any) -> EmailChannel:
    data = {
        "id": "analysts",
        "type": "email",
        "host": "127.0.0.1",
        "port": server_port,
        "security": security,
        "from": "مرصد الحوارات <monitor@example.org>",
        "to": ["desk@example.org", "Analyst <analyst@example.org>"],
        "timeout": "5s",
        **extra,
    }
    parsed = TypeAdapter(Channel).validate_python(data)
    assert isinstance(parsed, EmailChannel)
    return parsed


def outbox_message(delivery_id: str = "m_test0001") -> EmailMessage:
    """The message as the sender gets it from the outbox: rendered, stored as bytes, parsed."""
    rendered = render_email(sample_content(delivery_id), "مرصد الحوارات <monitor@example.org>",
                            ["desk@example.org", "Analyst <analyst@example.org>"], f"<{delivery_id}@dialogue-monitor>")
    parsed = email.message_from_bytes(bytes(rendered), policy=email.policy.SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_plain_delivery_arrives_once_with_its_message_id(smtp_server: StartServer) -> None:
    server = smtp_server("none")
    result = await send_email(email_channel(server.port), None, outbox_message())
    assert (result.ok, result.error, result.status) == (True, None, 250)
    [received] = server.received
    assert received.mail_from == "monitor@example.org"
    assert received.rcpt_tos == ("desk@example.org", "analyst@example.org")
    assert not received.tls and received.login is None
    message = received.message
    assert message["Message-ID"] == "<m_test0001@dialogue-monitor>"
    assert str(message["Subject"]) == digest_subject(sample_content("m_test0001"))
    html = message.get_body(preferencelist=("html",))
    assert html is not None and 'dir="rtl"' in html.get_content()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd ignores implicit TLS
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_encrypted_and_authenticated(smtp_server: StartServer, tls_certs: TlsCerts, security: str) -> None:
    server = smtp_server(security, credentials=CREDENTIALS)
    channel = email_channel(server.port, security, username=CREDENTIALS[0], password_env="X", ca_file=str(tls_certs.ca_file))
    result = await send_email(channel, CREDENTIALS[1], outbox_message())
    assert result.ok, result.error
    [received] = server.received
    assert received.tls and received.login == "monitor"


async def test_ssl_context_argument_overrides_trust(smtp_server: StartServer, tls_certs: TlsCerts) -> None:
    server = smtp_server("starttls")
    result = await send_email(email_channel(server.port, "starttls"), None, outbox_message(), ssl_context=tls_certs.client_context())
    assert result.ok and server.received[0].tls


async def test_untrusted_certificate_is_not_used(smtp_server: StartServer) -> None:
    server = smtp_server("starttls")
    result = await send_email(email_channel(server.port, "starttls"), None, outbox_message())  # system trust only
    assert not result.ok and result.retryable
    assert "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
    assert server.received == []


async def test_starttls_required_but_not_offered_is_an_error_not_plain_text(smtp_server: StartServer, tls_certs: TlsCerts) -> None:
    server = smtp_server("none")  # speaks plain SMTP only
    channel = email_channel(server.port, "starttls", ca_file=str(tls_certs.ca_file))
    result = await send_email(channel, None, outbox_message())
    assert not result.ok
    assert "STARTTLS" in (result.error or "")
    assert server.received == [], "the message must not go out unencrypted"


async def test_wrong_password_is_permanent(smtp_server: StartServer, tls_certs: TlsCerts) -> None:
    server = smtp_server("starttls", credentials=CREDENTIALS)
    channel = email_channel(server.port, "starttls", username="monitor", password_env="X", ca_file=str(tls_certs.ca_file))
    result = await send_email(channel, "wrong", outbox_message())
    assert (result.ok, result.retryable, result.status) == (False, False, 535)
    assert server.received == []


async def test_auth_over_plain_text_refused_by_server_is_permanent(smtp_server: StartServer) -> None:
    server = smtp_server("none", credentials=CREDENTIALS, auth_require_tls=True)  # AUTH only after TLS
    channel = email_channel(server.port, "none", username="monitor", password_env="X")
    result = await send_email(channel, CREDENTIALS[1], outbox_message())
    assert not result.ok and not result.retryable
    assert "AUTH" in (result.error or "")
    assert server.received == []


@pytest.mark.parametrize(
    ("where", "reply", "retryable", "code"),
    [
        ("rcpt", "450 4.2.1 mailbox busy", True, 450),
        ("rcpt", "550 5.1.1 no such user", False, 550),
        ("data", "451 4.3.0 try again later", True, 451),
        ("data", "554 5.7.1 rejected as spam", False, 554),
    ],
)
async def test_4xx_is_retryable_and_5xx_permanent(smtp_server: StartServer, where: str, reply: str, retryable: bool, code: int) -> None:
    server = smtp_server("none")
    setattr(server.handler, f"{where}_reply", reply)
    result = await send_email(email_channel(server.port), None, outbox_message())
    assert (result.ok, result.retryable, result.status) == (False, retryable, code)
    assert reply.split(" ", 2)[2] in (result.error or "")
    assert server.received == []


async def test_relay_down_is_retryable_then_the_message_arrives_once(smtp_server: StartServer) -> None:
    port = free_port()
    channel = email_channel(port)
    message = outbox_message("m_down0001")
    result = await send_email(channel, None, message)  # nothing listens on the port yet
    assert not result.ok and result.retryable
    server = smtp_server("none", port=port)
    result = await send_email(channel, None, message)
    assert result.ok
    assert [r.message["Message-ID"] for r in server.received] == ["<m_down0001@dialogue-monitor>"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections (kernel backlog) but never sends a greeting."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


async def test_silent_relay_times_out_and_is_retryable(silent_port: int) -> None:
    channel = email_channel(silent_port, timeout="1s")
    result = await send_email(channel, None, outbox_message())
    assert not result.ok and result.retryable
    assert "Timeout" in (result.error or "") or "timed out" in (result.error or "").lower()


async def test_one_refused_recipient_of_two_still_delivers(smtp_server: StartServer) -> None:
    server = smtp_server("none")
    original = server.handler.handle_RCPT

    async def refuse_analyst(srv: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address.startswith("analyst@"):
            return "550 5.1.1 no such user"
        return await original(srv, session, envelope, address, options)

    server.handler.handle_RCPT = refuse_analyst  # type: ignore[method-assign]
    result = await send_email(email_channel(server.port), None, outbox_message())
    # Not retried: the accepted recipient would get a second copy.
    assert result.ok and "analyst@example.org" in (result.error or "")
    assert [r.rcpt_tos for r in server.received] == [("desk@example.org",)]
