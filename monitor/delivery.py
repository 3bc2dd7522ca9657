"""Delivery channels: their configuration sections and the two senders (SMTP, webhook).

A sender makes exactly one attempt and reports what happened as a `DeliveryResult`; it never
retries, sleeps or records anything itself. The outbox (monitor.notify) owns the retry policy,
so a crash can never leave a half-retried message that nobody knows about.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.utils
import hashlib
import hmac
import os
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import aiosmtplib
import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.durations import Duration

log = structlog.get_logger(__name__)

USER_AGENT = "dialogue-monitor/0.1 (+webhook)"
WEBHOOK_SECRET_PREFIX = "whsec_"
MAX_RETRY_AFTER = 24 * 3600.0

# -- configuration sections ------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Named(_Section):
    """A section other sections refer to by `id`."""

    id: str

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("ids are letters, digits, '.', '_' or '-' (at most 64)")
        return value


def _addr_spec(value: str) -> str:
    """The bare address of "Name <a@b>" as SMTP wants it in the envelope."""
    _, address = email.utils.parseaddr(value)
    return address


def _check_address(value: str) -> str:
    if any(ch in value for ch in "\r\n"):
        raise ValueError("an address may not contain line breaks")
    address = _addr_spec(value)
    local, _, domain = address.rpartition("@")
    if not local or not domain:
        raise ValueError(f"not an email address: {value!r}")
    return value


def require_http_url(value: str) -> str:
    """Feeds and webhooks are fetched or posted over HTTP(S) only."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


class EmailChannel(_Named):
    """`[[channels]] type = "email"`: one SMTP relay and the recipients of every message."""

    type: Literal["email"] = "email"
    host: str
    port: int | None = Field(None, ge=1, le=65535, description="default: 587 starttls, 465 tls, 25 none")
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=30)
    ca_file: str | None = Field(None, description="PEM bundle to trust instead of the system store")

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_check_address(item) for item in value]

    @model_validator(mode="after")
    def _credentials(self) -> EmailChannel:
        if self.password_env and self.password_file:
            raise ValueError("set password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ValueError("a password is configured but username is not")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError("username is set: also set password_env or password_file")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]

    @property
    def sender_address(self) -> str:
        return _addr_spec(self.from_)

    @property
    def recipient_addresses(self) -> list[str]:
        return [_addr_spec(item) for item in self.to]


class WebhookChannel(_Named):
    """`[[channels]] type = "webhook"`: an HTTPS endpoint verified with Standard Webhooks."""

    type: Literal["webhook"] = "webhook"
    url: str
    secret_env: str | None = None
    secret_file: str | None = None
    timeout: Duration = timedelta(seconds=10)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return require_http_url(value)

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookChannel:
        if bool(self.secret_env) == bool(self.secret_file):
            raise ValueError("set exactly one of secret_env or secret_file (the whsec_... signing secret)")
        return self


Channel = Annotated[EmailChannel | WebhookChannel, Field(discriminator="type")]


class _Templated(_Named):
    """A section whose emails are rendered from templates a user may override."""

    template_dir: Path | None = Field(None, description="templates here override the shipped ones by name")

    @field_validator("template_dir")
    @classmethod
    def _existing_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"template directory {str(value)!r} does not exist")
        return value


class DigestConfig(_Templated):
    """`[[digests]]`: what goes into a daily digest, when, and where it is sent."""

    at: str
    watches: list[str] = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    send_empty: bool = False
    max_age: Duration | None = None
    # The reader's language: labels, dates, tags, and each story's headline article when the
    # story has one in it (else the other language's). "ar" or "en".
    language: Literal["ar", "en"] = "ar"

    @field_validator("at")
    @classmethod
    def _wall_clock(cls, value: str) -> str:
        if not _AT.match(value):
            raise ValueError(f'must be a 24-hour local time "HH:MM", got {value!r}')
        return value


class AlertConfig(_Templated):
    """`[[alerts]]`: stories sent on their own as soon as they are flagged (alert.html and
    alert.txt in `template_dir` override the shipped ones)."""

    watches: list[str] = Field(min_length=1)
    min_score: float = Field(0, ge=0)
    channels: list[str] = Field(min_length=1)
    language: Literal["ar", "en"] = "ar"  # as for [[digests]]


# -- secrets ---------------------------------------------------------------------------------


def secret_key(channel: EmailChannel | WebhookChannel) -> str:
    """The name under which `resolve_secrets` files a channel's secret."""
    return f"channels.{channel.id}"


def resolve_secrets(channels: Sequence[EmailChannel | WebhookChannel], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Read every channel's password or signing secret, keyed by `secret_key(channel)`;
    raise ValueError("channels[i].key: problem") for the first one missing or malformed."""
    secrets, problems = read_secrets(channels, environ)
    if problems:
        raise ValueError(problems[0])
    return secrets


def read_secrets(
    channels: Sequence[EmailChannel | WebhookChannel], environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, str], list[str]]:
    """Every secret that can be read, and one "channels[i].key: problem" line per one that
    cannot. Only the commands that send need them all (`run`, `digest send`, `deliveries
    retry`, which refuse to start without them, so a missing one shows at start-up and not at
    07:30); `config check` lists every problem; the other commands never look."""
    secrets: dict[str, str] = {}
    problems: list[str] = []
    for index, channel in enumerate(channels):
        kind, name = _secret_source(channel)
        if not name:
            continue
        try:
            value = _read_env(name, environ) if kind.endswith("_env") else _read_file(name, environ)
            if isinstance(channel, WebhookChannel):
                webhook_key(value)
        except ValueError as exc:
            problems.append(f"channels[{index}].{kind}: {exc}")
            continue
        secrets[secret_key(channel)] = value
    return secrets, problems


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks signing secret: whsec_ and 32 random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def _secret_source(channel: EmailChannel | WebhookChannel) -> tuple[str, str | None]:
    if isinstance(channel, EmailChannel):
        return ("password_env", channel.password_env) if channel.password_env else ("password_file", channel.password_file)
    return ("secret_env", channel.secret_env) if channel.secret_env else ("secret_file", channel.secret_file)


def _read_env(name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set" if value is None else f"environment variable {name} is empty")
    return value


def _read_file(name: str, environ: Mapping[str, str]) -> str:
    """Relative names are looked up in systemd's $CREDENTIALS_DIRECTORY (LoadCredential=)."""
    path = Path(name)
    if not path.is_absolute() and environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(environ["CREDENTIALS_DIRECTORY"]) / path
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if not value:
        raise ValueError(f"file {str(path)!r} is empty")
    return value


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one attempt; `retryable` tells the outbox whether to try again."""

    ok: bool
    retryable: bool
    error: str | None
    retry_after: float | None
    status: int | None


def _success(status: int | None = None, note: str | None = None) -> DeliveryResult:
    return DeliveryResult(ok=True, retryable=False, error=note, retry_after=None, status=status)


def _failure(error: str, *, retryable: bool, status: int | None = None, retry_after: float | None = None) -> DeliveryResult:
    return DeliveryResult(ok=False, retryable=retryable, error=error, retry_after=retry_after, status=status)


# -- email -----------------------------------------------------------------------------------


def tls_context(channel: EmailChannel) -> ssl.SSLContext:
    """System trust, or the channel's own CA bundle (a private relay, or a test's throwaway CA)."""
    return ssl.create_default_context(cafile=channel.ca_file)


class StartTLSMissing(Exception):
    """The server did not offer STARTTLS although the channel requires it."""


async def send_email(
    channel: EmailChannel,
    password: str | None,
    message: email.message.EmailMessage,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> DeliveryResult:
    """One SMTP transaction. With security="starttls" a server that does not offer STARTTLS is
    an error: the message is never sent in plain text because a server (or an attacker in
    between) stopped advertising encryption."""
    bound = log.bind(channel=channel.id, host=channel.host, port=channel.effective_port, message_id=message.get("Message-ID"))
    try:
        errors, reply = await _smtp_transaction(channel, password, message, ssl_context)
    except StartTLSMissing:
        # Retryable: the relay may offer STARTTLS again later (or the attacker who stripped
        # it may go away); nothing is sent meanwhile, and `deliveries list` shows why.
        return _failure("server does not offer STARTTLS; refusing to send in plain text", retryable=True)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return _recipients_refused(exc)
    except aiosmtplib.SMTPResponseException as exc:
        retryable = 400 <= exc.code < 500
        return _failure(f"SMTP {exc.code}: {exc.message}", retryable=retryable, status=exc.code)
    except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected) as exc:
        return _failure(f"{type(exc).__name__}: {exc}", retryable=True)
    except aiosmtplib.SMTPException as exc:
        # What remains is a configuration mismatch, such as AUTH not offered or no common
        # authentication mechanism: retrying will not fix it.
        return _failure(f"{type(exc).__name__}: {exc}", retryable=False)
    except (ssl.SSLError, OSError) as exc:
        return _failure(f"{type(exc).__name__}: {exc}", retryable=True)
    if errors:
        refused = "; ".join(f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in errors.items())
        bound.warning("some recipients refused", refused=refused)
        return _success(status=250, note=f"some recipients refused: {refused}")
    bound.debug("email accepted", reply=reply)
    return _success(status=250)


async def _smtp_transaction(
    channel: EmailChannel,
    password: str | None,
    message: email.message.EmailMessage,
    context: ssl.SSLContext | None,
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """Connect, upgrade, authenticate and send step by step, because aiosmtplib's
    opportunistic STARTTLS would otherwise decide on its own whether to encrypt."""
    if context is None and channel.security != "none":
        context = tls_context(channel)
    client = aiosmtplib.SMTP(
        hostname=channel.host,
        port=channel.effective_port,
        use_tls=channel.security == "tls",
        start_tls=False,
        tls_context=context,
        timeout=channel.timeout.total_seconds(),
    )
    async with client:
        if channel.security == "starttls":
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise StartTLSMissing
            await client.starttls()
        if channel.username:
            await client.login(channel.username, password or "")
        return await client.send_message(message, sender=channel.sender_address, recipients=channel.recipient_addresses)


def _recipients_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> DeliveryResult:
    codes = [item.code for item in exc.recipients]
    detail = "; ".join(f"{item.recipient}: {item.code} {item.message}" for item in exc.recipients)
    retryable = all(400 <= code < 500 for code in codes)
    return _failure(f"all recipients refused: {detail}", retryable=retryable, status=max(codes) if codes else None)


# -- webhook ---------------------------------------------------------------------------------


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret `whsec_<base64>`."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("webhook secret must look like whsec_<base64> (Standard Webhooks)")
    encoded = secret[len(WEBHOOK_SECRET_PREFIX):].strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("webhook secret: the part after whsec_ is not valid base64") from None
    if not key:
        raise ValueError("webhook secret is empty after whsec_")
    return key


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` value: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


async def send_webhook(
    channel: WebhookChannel,
    secret: str,
    delivery_id: str,
    body: bytes,
    client: httpx.AsyncClient | None = None,
) -> DeliveryResult:
    """One signed POST. The delivery id is the `webhook-id`, identical on every retry, so the
    receiver can drop a repeat; the timestamp and signature are fresh on each attempt because
    receivers reject old timestamps."""
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json; charset=utf-8",
        "user-agent": USER_AGENT,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, delivery_id, timestamp, body),
    }
    seconds = channel.timeout.total_seconds()
    own_client = client is None
    http = client or httpx.AsyncClient(follow_redirects=False)
    try:
        response = await http.post(channel.url, content=body, headers=headers, timeout=seconds)
    except httpx.TimeoutException as exc:
        return _failure(f"timed out after {seconds:g}s ({type(exc).__name__})", retryable=True)
    except httpx.HTTPError as exc:
        return _failure(f"{type(exc).__name__}: {exc}", retryable=True)
    finally:
        if own_client:
            await http.aclose()
    return _classify_response(response)


def _classify_response(response: httpx.Response) -> DeliveryResult:
    status = response.status_code
    if 200 <= status < 300:
        return _success(status=status)
    snippet = response.text[:200].strip()
    error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    if status in (408, 429) or status >= 500:
        return _failure(error, retryable=True, status=status, retry_after=parse_retry_after(response.headers.get("retry-after")))
    if 300 <= status < 400:
        error += f" (redirects are not followed; configure the final URL {response.headers.get('location', '')!s})"
    return _failure(error, retryable=False, status=status)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delay = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(delay, 0.0), MAX_RETRY_AFTER)
