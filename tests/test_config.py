"""Configuration: valid files load into typed objects; every mistake names file, key, problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_duration, resolve_config_path
from tests.conftest import DEFAULT_CONFIG, write_config

FEED = '[[feeds]]\nid = "one"\nurl = "https://example.org/feed.xml"\n'


def test_shipped_default_config_is_valid() -> None:
    config = load_config(DEFAULT_CONFIG, {})
    enabled = [feed for feed in config.feeds if feed.enabled]
    assert len(enabled) >= 8
    assert config.feed("bbc-arabic").url == "https://feeds.bbci.co.uk/arabic/rss.xml"
    assert {watch.id for watch in config.watches} >= {"kw-us", "kw-uk"}
    assert config.polling.interval == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400), (30, 30), ("250ms", 0.25)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["15", "m", "-5m", "0s", "5 minutes", True])
def test_bad_durations_are_rejected(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ('[polling]\ninterval = "soon"\n', "polling.interval", "invalid duration"),
        ('[polling]\nconcurency = 4\n', "polling.concurency", "unknown key"),
        ('[polling]\nper_host = 0\n', "polling.per_host", "greater than or equal to 1"),
        (FEED + '[[feeds]]\nid = "two"\nurl = "ftp://example.org/x"\n', "feeds[1].url", "http:// or https://"),
        ('[[feeds]]\nurl = "https://example.org/"\n', "feeds[0].id", "required key is missing"),
        ('[[feeds]]\nid = "Bad Id"\nurl = "https://example.org/"\n', "feeds[0].id", "lower-case"),
        ('[monitor]\ntimezone = "Mars/Olympus"\n', "monitor.timezone", "unknown time zone"),
        ('[database]\nurl = "mysql://x"\n', "database.url", "sqlite"),
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path: Path, body: str, key: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {key}: ")


def test_duplicate_feed_ids_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.toml"
    path.write_text(FEED + FEED, encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate feed id 'one'"):
        load_config(path, {})


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[polling\ninterval = 3", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_config(path, {})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", {})


def test_environment_overrides_state_dir_and_database(tmp_path: Path) -> None:
    path = write_config(tmp_path, FEED)
    config = load_config(path, {"MONITOR_STATE_DIR": str(tmp_path / "elsewhere")})
    assert config.state_dir == tmp_path / "elsewhere"
    assert config.database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'monitor.db'}"
    config = load_config(path, {"MONITOR_DATABASE_URL": "postgresql://u:secret@db/monitor"})
    assert config.database_url == "postgresql://u:secret@db/monitor"
    assert config.effective()["database"]["url"] == "postgresql://u:********@db/monitor"


def test_config_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config_path("x.toml", {"MONITOR_CONFIG": "y.toml"}) == Path("x.toml")
    assert resolve_config_path(None, {"MONITOR_CONFIG": "y.toml"}) == Path("y.toml")
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None, {}) == Path("config/monitor.toml")


def test_a_quoted_value_is_not_repeated(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[feeds]]\nid = "one"\nurl = "ftp://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.problem == "must be an http:// or https:// URL, got 'ftp://x'"


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        (FEED + '[[feeds]]\nid = "two"\nurl = "https://example.org/2"\n' + FEED, "feeds[2].id",
         "duplicate feed id 'one' (also feeds[0])"),
        ('[[channels]]\nid = "h"\ntype = "webhook"\nurl = "https://h.example/"\nsecret_env = "S"\n' * 2,
         "channels[1].id", "duplicate channel id 'h' (also channels[0])"),
    ],
)
def test_duplicate_ids_name_the_index(tmp_path: Path, body: str, key: str, problem: str) -> None:
    path = tmp_path / "dup.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert (caught.value.key, caught.value.problem) == (key, problem)


def test_config_loads_without_secrets_and_the_senders_require_them(tmp_path: Path) -> None:
    hook = '[[channels]]\nid = "h"\ntype = "webhook"\nurl = "https://h.example/"\nsecret_env = "HOOK"\n'
    config = load_config(write_config(tmp_path, hook), {})
    assert config.secrets == {} and config.channels[0].id == "h"
    with pytest.raises(ConfigError) as caught:
        config.require_secrets()
    assert caught.value.key == "channels[0].secret_env" and "HOOK is not set" in caught.value.problem
    secret = "whsec_" + "A" * 44
    ready = load_config(write_config(tmp_path, hook), {"HOOK": secret})
    ready.require_secrets()
    assert ready.secrets == {"channels.h": secret}


def test_database_url_from_the_environment_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, FEED), {"MONITOR_DATABASE_URL": "postgresql://u@h:notaport/db"})
    assert caught.value.key == "$MONITOR_DATABASE_URL" and "not a valid URL" in caught.value.problem
