"""Configuration: read the TOML file once at start-up and validate it into typed objects.

Nothing else in the package reads TOML or the environment for settings; every other module
receives the objects defined (or composed) here. Errors name the file, the key path and the
problem, because the person reading them is editing that file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.dedup import DedupConfig
from monitor.durations import Duration, parse_duration  # noqa: F401  (parse_duration re-exported)
from monitor.delivery import AlertConfig, Channel, DigestConfig, read_secrets, require_http_url
from monitor.relevance import RuleSet, RulesError, WatchConfig, compile_rules

DEFAULT_LOCATIONS = (Path("config/monitor.toml"), Path("/etc/monitor/monitor.toml"))

class ConfigError(Exception):
    """A configuration problem, reported as `file: key: problem` and exit status 2."""

    def __init__(self, file: Path | str, key: str, problem: str):
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")
        self.file = str(file)
        self.key = key
        self.problem = problem


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MonitorSection(_Section):
    timezone: str = "Asia/Kuwait"
    state_dir: str = "state"
    log_level: str = "info"
    # A daemon holds the feeds it polls and the deliveries it sends for `lease`, renewed every
    # `lease_heartbeat` while the work runs: a daemon killed on another host frees its work
    # after at most `lease`. The heartbeat also refreshes the daemon's row (`monitor status`,
    # which calls a daemon gone after 90 s of silence: hence at most 30 s).
    lease: Duration = timedelta(minutes=2)
    lease_heartbeat: Duration = timedelta(seconds=30)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as \"Asia/Kuwait\")") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @field_validator("lease")
    @classmethod
    def _sensible_lease(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=2) <= value <= timedelta(hours=1):
            raise ValueError("must be between 2s and 1h")
        return value

    @field_validator("lease_heartbeat")
    @classmethod
    def _sensible_heartbeat(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        """Under half the lease, so one late or failed renewal does not let a lease lapse
        while its work still runs."""
        if not timedelta(seconds=1) <= value <= timedelta(seconds=30):
            raise ValueError("must be between 1s and 30s (`monitor status` calls a daemon gone after 90 s of silence)")
        lease = info.data.get("lease")  # absent when `lease` itself was invalid
        if lease is not None and value * 2 >= lease:
            raise ValueError(f"must be less than half of lease ({_seconds(lease)})")
        return value


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


class DatabaseSection(_Section):
    url: str = "sqlite:///monitor.db"

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        return check_database_url(value)


def check_database_url(value: str) -> str:
    """A URL SQLAlchemy can parse, for one of the two supported backends."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme = value.split(":", 1)[0]
    if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
        raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
    try:
        make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError("not a valid URL (e.g. sqlite:///monitor.db or postgresql://user@host/db)") from None
    return value


class PollingSection(_Section):
    interval: Duration = timedelta(minutes=15)
    concurrency: int = Field(16, ge=1, le=512)
    per_host: int = Field(2, ge=1, le=64)
    timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(10_000_000, ge=10_000)
    user_agent: str = "dialogue-monitor/0.1"
    max_backoff: Duration = timedelta(hours=6)
    parse_workers: int = Field(0, ge=0, le=64, description="0: one per CPU core")
    tick: Duration = timedelta(seconds=10)  # how often the daemon asks the database what is due

    @field_validator("tick")
    @classmethod
    def _sensible_tick(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(minutes=5):
            raise ValueError("must be between 1s and 5m")
        return value


class MetricsSection(_Section):
    """`[metrics]`: where the daemon serves /metrics and /healthz; off unless `listen` is set,
    because an open port is something an operator decides on."""

    listen: str | None = None  # "127.0.0.1:9464", "[::1]:9464", ":9464" (every address)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        return split_listen(self.listen) if self.listen else None


def split_listen(value: str) -> tuple[str, int]:
    """("host", port) of "host:port"; raises ValueError with the form expected."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or "[" in host or "]" in host:
        raise ValueError(f'must be "host:port" such as "127.0.0.1:9464", got {value!r}')
    return host or "0.0.0.0", int(port)


_FEED_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class FeedConfig(_Section):
    id: str
    url: str
    name: str = ""
    interval: Duration | None = None
    enabled: bool = True
    language: str = "ar"
    # What the URL serves (see monitor.sources): an RSS/Atom feed, a sitemap (urlset, index or
    # Google News), or an HTML listing page whose `links` are the entries.
    type: Literal["rss", "sitemap", "html"] = "rss"
    include: str | None = None  # regex: only entry URLs it matches (sitemaps, listing pages)
    links: str | None = None  # CSS selector of the article links on a listing page
    text: str | None = None  # CSS selector of the article text on the article's own page
    full_text: Literal["never", "candidates", "always"] = "candidates"
    max_pages: int = Field(30, ge=0, le=10_000)  # article pages fetched per poll of this source, at most
    # Sitemap and listing entries dated earlier are old news: not fetched, not stored.
    max_age: Duration = timedelta(days=7)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _FEED_ID.match(value):
            raise ValueError("feed ids are lower-case letters, digits, '.', '_' or '-' (at most 64)")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return require_http_url(value)

    @field_validator("include")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("links", "text")
    @classmethod
    def _css(cls, value: str | None) -> str | None:
        if value is not None:
            from monitor.sources.selectors import check_selector

            if problem := check_selector(value):
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _links_for_listing_pages(self) -> FeedConfig:
        if self.type == "html" and not self.links:
            raise ValueError('a feed of type "html" needs `links`, the CSS selector of its article links')
        if self.type != "html" and self.links:
            raise ValueError(f'`links` applies to type "html" only (this feed is type "{self.type}")')
        return self

    @property
    def include_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.include) if self.include else None


class _RawConfig(_Section):
    """The TOML document as written (before cross-checks and secret resolution)."""

    monitor: MonitorSection = MonitorSection()
    database: DatabaseSection = DatabaseSection()
    polling: PollingSection = PollingSection()
    metrics: MetricsSection = MetricsSection()
    feeds: list[FeedConfig] = []
    terms: dict[str, list[str]] = {}
    watches: list[WatchConfig] = []
    topics: dict[str, list[str]] = {}
    dedup: DedupConfig = DedupConfig()
    channels: list[Channel] = []
    digests: list[DigestConfig] = []
    alerts: list[AlertConfig] = []


@dataclass(frozen=True)
class Config:
    """The validated, effective configuration the rest of the program runs on."""

    source: Path
    raw: _RawConfig
    state_dir: Path
    database_url: str
    rules: RuleSet
    secrets: Mapping[str, str]
    # One "file: channels[i].key: problem" per secret that could not be read: loading never
    # fails on them, the commands that send call require_secrets().
    secret_problems: tuple[ConfigError, ...] = ()

    def require_secrets(self) -> None:
        """Raise the first missing or malformed channel secret as a ConfigError."""
        if self.secret_problems:
            raise self.secret_problems[0]

    @property
    def monitor(self) -> MonitorSection:
        return self.raw.monitor

    @property
    def polling(self) -> PollingSection:
        return self.raw.polling

    @property
    def feeds(self) -> list[FeedConfig]:
        return self.raw.feeds

    @property
    def metrics(self) -> MetricsSection:
        return self.raw.metrics

    @property
    def dedup(self) -> DedupConfig:
        return self.raw.dedup

    @property
    def channels(self) -> list[Channel]:
        return self.raw.channels

    @property
    def digests(self) -> list[DigestConfig]:
        return self.raw.digests

    @property
    def alerts(self) -> list[AlertConfig]:
        return self.raw.alerts

    @property
    def watches(self) -> list[WatchConfig]:
        return self.raw.watches

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.monitor.timezone)

    def feed(self, feed_id: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.id == feed_id:
                return feed
        raise KeyError(feed_id)

    def effective(self) -> dict[str, Any]:
        """The configuration as it is in force, with secrets masked, for `config check`."""
        data = self.raw.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["monitor"]["state_dir"] = str(self.state_dir)
        data["database"]["url"] = mask_url_password(self.database_url)
        data["secrets"] = {name: "********" for name in sorted(self.secrets)}
        return data


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--config, else $MONITOR_CONFIG, else ./config/monitor.toml, else /etc/monitor/monitor.toml."""
    if cli_path:
        return Path(cli_path)
    if environ.get("MONITOR_CONFIG"):
        return Path(environ["MONITOR_CONFIG"])
    for candidate in DEFAULT_LOCATIONS:
        if candidate.exists():
            return candidate
    return DEFAULT_LOCATIONS[0]


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> Config:
    """Read, validate and resolve the config at `path`; raise ConfigError on any problem."""
    document = _read_toml(path)
    _resolve_template_dirs(document, path.parent)
    try:
        raw = _RawConfig.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(path, _key_path(error["loc"]), _problem(error)) from None
    try:
        rules = compile_rules(raw.terms, raw.watches, raw.topics)
    except RulesError as exc:
        raise ConfigError(path, exc.key_path, str(exc.args[0] if exc.args else exc)) from None
    _check_feed_ids(path, raw)
    _check_references(path, raw)
    secrets, problems = read_secrets(raw.channels, environ)
    secret_problems = tuple(ConfigError(path, *_split_key(problem)) for problem in problems)
    state_dir = Path(environ.get("MONITOR_STATE_DIR") or environ.get("STATE_DIRECTORY") or raw.monitor.state_dir)
    database_url = environ.get("MONITOR_DATABASE_URL") or raw.database.url
    if environ.get("MONITOR_DATABASE_URL"):
        try:
            check_database_url(database_url)
        except ValueError as exc:
            raise ConfigError(path, "$MONITOR_DATABASE_URL", str(exc)) from None
    return Config(
        source=path,
        raw=raw,
        state_dir=state_dir.absolute(),
        database_url=resolve_sqlite_path(database_url, state_dir.absolute()),
        rules=rules,
        secrets=secrets,
        secret_problems=secret_problems,
    )


def _split_key(problem: str) -> tuple[str, str]:
    key, _, text = problem.partition(": ")
    return (key, text) if text else ("", problem)


def _check_feed_ids(path: Path, raw: _RawConfig) -> None:
    """Feed ids key the stored articles: two feeds may not share one."""
    _unique_ids(path, "feeds", [feed.id for feed in raw.feeds])


def _unique_ids(path: Path, section: str, ids: list[str]) -> None:
    first: dict[str, int] = {}
    for index, item_id in enumerate(ids):
        if item_id in first:
            raise ConfigError(
                path, f"{section}[{index}].id", f"duplicate {section[:-1]} id {item_id!r} (also {section}[{first[item_id]}])"
            )
        first[item_id] = index


def resolve_sqlite_path(url: str, state_dir: Path) -> str:
    """Relative SQLite paths live in the state directory, wherever the daemon was started."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = Path(url[len(prefix):])
    if path.is_absolute():
        return url
    return prefix + str(state_dir / path)


def _resolve_template_dirs(document: dict[str, Any], base: Path) -> None:
    """A relative `template_dir` means "next to this config file", wherever the daemon runs."""
    for kind in ("digests", "alerts"):
        sections = document.get(kind)
        for section in sections if isinstance(sections, list) else []:
            if isinstance(section, dict) and isinstance(section.get("template_dir"), str):
                section["template_dir"] = str(base / Path(section["template_dir"]).expanduser())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, "", "config file not found (use --config or $MONITOR_CONFIG)") from None
    except PermissionError:
        raise ConfigError(path, "", "config file is not readable by this user") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None


def _check_references(path: Path, raw: _RawConfig) -> None:
    """Digests and alerts may only name watches and channels that exist."""
    watch_ids = {watch.id for watch in raw.watches}
    channel_ids = [channel.id for channel in raw.channels]
    _unique_ids(path, "channels", channel_ids)
    for section, items in (("digests", raw.digests), ("alerts", raw.alerts)):
        _unique_ids(path, section, [item.id for item in items])
        for index, item in enumerate(items):
            for pos, watch in enumerate(item.watches):
                if watch not in watch_ids:
                    raise ConfigError(path, f"{section}[{index}].watches[{pos}]", f"unknown watch {watch!r}")
            for pos, channel in enumerate(item.channels):
                if channel not in channel_ids:
                    raise ConfigError(path, f"{section}[{index}].channels[{pos}]", f"unknown channel {channel!r}")


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part) in ("email", "webhook", "function-after", "function-before") or str(part).startswith("function-"):
            continue  # pydantic's tags for union members and validators are not user keys
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _problem(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return "unknown key (check the spelling against the documented keys)"
    if error.get("type") == "missing":
        return "required key is missing"
    if "input" in error and error.get("type") not in ("model_type",) and not isinstance(error["input"], (dict, list)):
        if repr(error["input"]) in message:
            return message  # the validator already quoted the value
        return f"{message} (got {error['input']!r})"
    return message
