"""Channel, digest and alert configuration sections, secret resolution and signing."""

from __future__ import annotations

import base64
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from standardwebhooks import Webhook

from monitor.delivery import (
    AlertConfig,
    Channel,
    DigestConfig,
    EmailChannel,
    WebhookChannel,
    parse_retry_after,
    resolve_secrets,
    sign_webhook,
    webhook_key,
)

ISSUE_EXAMPLE = """
[[channels]]
id = "analysts"
type = "email"
host = "smtp.example.org"
port = 587
security = "starttls"
username = "monitor"
password_env = "MONITOR_SMTP_PASSWORD"
from = "Dialogue Monitor <monitor@example.org>"
to = ["desk@example.org"]

[[channels]]
id = "ops-hook"
type = "webhook"
url = "https://hooks.example.org/monitor"
secret_env = "MONITOR_WEBHOOK_SECRET"

[[digests]]
id = "daily"
at = "07:30"
watches = ["kw-us", "kw-uk"]
channels = ["analysts", "ops-hook"]
send_empty = false

[[alerts]]
id = "urgent"
watches = ["kw-us", "kw-uk"]
min_score = 0
channels = ["ops-hook"]
"""

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Sections(BaseModel):
    """The delivery part of the root config, as monitor.config composes it."""

    model_config = ConfigDict(extra="forbid")
    channels: list[Channel] = []
    digests: list[DigestConfig] = []
    alerts: list[AlertConfig] = []


def load(text: str) -> Sections:
    return Sections.model_validate(tomllib.loads(text))


def channel(data: dict) -> EmailChannel | WebhookChannel:
    return TypeAdapter(Channel).validate_python(data)


def error_of(text: str) -> str:
    with pytest.raises(ValidationError) as caught:
        load(text)
    return str(caught.value)


def test_issue_example_parses_into_typed_sections() -> None:
    sections = load(ISSUE_EXAMPLE)
    email_channel, hook = sections.channels
    assert isinstance(email_channel, EmailChannel) and isinstance(hook, WebhookChannel)
    assert email_channel.from_ == "Dialogue Monitor <monitor@example.org>"
    assert email_channel.sender_address == "monitor@example.org"
    assert email_channel.effective_port == 587 and email_channel.timeout == timedelta(seconds=30)
    assert hook.timeout == timedelta(seconds=10)
    digest = sections.digests[0]
    assert (digest.at, digest.send_empty, digest.max_age, digest.template_dir) == ("07:30", False, None, None)
    assert sections.alerts[0].min_score == 0 and sections.alerts[0].channels == ["ops-hook"]


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_email_port_defaults_follow_security(security: str, port: int) -> None:
    parsed = channel({"id": "m", "type": "email", "host": "h", "security": security, "from": "a@b.c", "to": ["d@e.f"]})
    assert parsed.effective_port == port  # type: ignore[union-attr]


BASE_EMAIL = {"id": "m", "type": "email", "host": "h", "from": "a@b.c", "to": ["d@e.f"]}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"security": "ssl"}, "'starttls', 'tls' or 'none'"),
        ({"passwd_env": "X"}, "Extra inputs are not permitted"),
        ({"username": "u", "password_env": "A", "password_file": "/run/x"}, "not both"),
        ({"password_env": "A"}, "username is not"),
        ({"to": []}, "at least 1 item"),
        ({"to": ["desk"]}, "not an email address"),
        ({"timeout": "soon"}, "invalid duration"),
        ({"port": 70000}, "less than or equal to 65535"),
    ],
)
def test_email_channel_mistakes_are_rejected(change: dict, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        channel({**BASE_EMAIL, **change})
    assert problem in str(caught.value)


def test_username_without_password_source_is_rejected() -> None:
    text = ISSUE_EXAMPLE.replace('password_env = "MONITOR_SMTP_PASSWORD"\n', "", 1)
    assert "also set password_env or password_file" in error_of(text)


def test_header_injection_in_addresses_is_rejected() -> None:
    text = ISSUE_EXAMPLE.replace('to = ["desk@example.org"]', 'to = ["desk@example.org\\nBcc: x@evil.org"]')
    assert "line breaks" in error_of(text)


def test_webhook_channel_needs_exactly_one_secret_source_and_an_http_url() -> None:
    assert "exactly one of secret_env or secret_file" in error_of(ISSUE_EXAMPLE.replace('secret_env = "MONITOR_WEBHOOK_SECRET"', ""))
    assert "exactly one" in error_of(ISSUE_EXAMPLE.replace('secret_env = "MONITOR_WEBHOOK_SECRET"', 'secret_env = "A"\nsecret_file = "b"'))
    assert "http:// or https://" in error_of(ISSUE_EXAMPLE.replace("https://hooks.example.org/monitor", "ftp://hooks.example.org/"))


def test_unknown_channel_type_is_rejected() -> None:
    assert "sms" in error_of(ISSUE_EXAMPLE.replace('type = "webhook"', 'type = "sms"'))


@pytest.mark.parametrize("at", ["7:30", "24:00", "07:60", "0730", "07:30:00"])
def test_digest_time_must_be_hh_mm(at: str) -> None:
    assert "HH:MM" in error_of(ISSUE_EXAMPLE.replace('at = "07:30"', f'at = "{at}"'))


def test_digest_max_age_and_template_dir(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE.replace("send_empty = false", f'send_empty = true\nmax_age = "36h"\ntemplate_dir = "{tmp_path}"')
    digest = load(text).digests[0]
    assert digest.max_age == timedelta(hours=36) and digest.template_dir == tmp_path and digest.send_empty
    assert "does not exist" in error_of(text.replace(str(tmp_path), str(tmp_path / "missing")))


def test_alert_min_score_cannot_be_negative() -> None:
    assert "min_score" in error_of(ISSUE_EXAMPLE.replace("min_score = 0", "min_score = -1"))


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_resolve_from_environment_by_channel() -> None:
    channels = load(ISSUE_EXAMPLE).channels
    secrets = resolve_secrets(channels, {"MONITOR_SMTP_PASSWORD": "s3cret", "MONITOR_WEBHOOK_SECRET": SECRET})
    assert secrets == {"channels.analysts": "s3cret", "channels.ops-hook": SECRET}


def test_missing_secret_names_the_key_path() -> None:
    channels = load(ISSUE_EXAMPLE).channels
    with pytest.raises(ValueError) as caught:
        resolve_secrets(channels, {"MONITOR_SMTP_PASSWORD": "s3cret"})
    assert str(caught.value) == "channels[1].secret_env: environment variable MONITOR_WEBHOOK_SECRET is not set"
    with pytest.raises(ValueError, match=r"^channels\[0\]\.password_env: environment variable MONITOR_SMTP_PASSWORD is empty$"):
        resolve_secrets(channels, {"MONITOR_SMTP_PASSWORD": "", "MONITOR_WEBHOOK_SECRET": SECRET})


def test_malformed_webhook_secret_is_a_config_error() -> None:
    channels = load(ISSUE_EXAMPLE).channels
    for bad in ("not-a-secret", "whsec_", "whsec_***"):
        with pytest.raises(ValueError, match=r"^channels\[1\]\.secret_env: webhook secret"):
            resolve_secrets(channels, {"MONITOR_SMTP_PASSWORD": "x", "MONITOR_WEBHOOK_SECRET": bad})


def test_secret_files_absolute_and_relative_to_systemd_credentials(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "smtp-password").write_text("from-credential\n", encoding="utf-8")
    hook_file = tmp_path / "hook"
    hook_file.write_text(SECRET + "\n", encoding="utf-8")
    text = ISSUE_EXAMPLE.replace('password_env = "MONITOR_SMTP_PASSWORD"', 'password_file = "smtp-password"').replace(
        'secret_env = "MONITOR_WEBHOOK_SECRET"', f'secret_file = "{hook_file}"'
    )
    channels = load(text).channels
    secrets = resolve_secrets(channels, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert secrets == {"channels.analysts": "from-credential", "channels.ops-hook": SECRET}
    with pytest.raises(ValueError, match=r"^channels\[0\]\.password_file: cannot read"):
        resolve_secrets(channels, {})  # relative name and no $CREDENTIALS_DIRECTORY
    (credentials / "smtp-password").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^channels\[0\]\.password_file: file .* is empty$"):
        resolve_secrets(channels, {"CREDENTIALS_DIRECTORY": str(credentials)})


# -- signing and Retry-After -----------------------------------------------------------------


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    body = '{"type":"digest.published","data":{"subject":"موجز"}}'.encode()
    now = int(datetime.now(timezone.utc).timestamp())
    signature = sign_webhook(SECRET, "m_1", now, body)
    assert signature.startswith("v1,")
    headers = {"webhook-id": "m_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert Webhook(SECRET).verify(body, headers)["data"]["subject"] == "موجز"
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(body + b" ", headers)


def test_signature_depends_on_id_timestamp_body_and_key() -> None:
    base = sign_webhook(SECRET, "m_1", 1700000000, b"{}")
    assert base != sign_webhook(SECRET, "m_2", 1700000000, b"{}")
    assert base != sign_webhook(SECRET, "m_1", 1700000001, b"{}")
    assert base != sign_webhook(SECRET, "m_1", 1700000000, b"{ }")
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    assert base != sign_webhook(other, "m_1", 1700000000, b"{}")


def test_unpadded_secret_is_accepted_like_the_reference_library() -> None:
    assert webhook_key(SECRET.rstrip("=")) == webhook_key(SECRET)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 22, 4, 30, tzinfo=timezone.utc)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sun, 22 Nov 2026 04:31:30 GMT", now) == 90.0
    assert parse_retry_after("Sun, 22 Nov 2026 04:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("9999999", now) == 24 * 3600.0  # capped
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
