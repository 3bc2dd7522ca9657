"""Shared fixtures: every database test runs on a real SQLite file and on the real PostgreSQL
named by $MONITOR_TEST_POSTGRES_URL (skipped, with one line saying so, when it is unset)."""

from __future__ import annotations

import os
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from monitor.config import Config, load_config

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "config" / "monitor.toml"
POSTGRES_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL")
POSTGRES_SKIP = "PostgreSQL tests skipped: MONITOR_TEST_POSTGRES_URL is not set (CI sets it via .ci/run)"



def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL: {POSTGRES_URL}" if POSTGRES_URL else POSTGRES_SKIP


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each engine for one test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    yield from _fresh_postgres_database()


def _fresh_postgres_database() -> Iterator[str]:
    import psycopg

    base = make_url(POSTGRES_URL)
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    # Reaching PostgreSQL is required once the variable is set: an error here fails the test.
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def default_rules_toml() -> str:
    """The shipped relevance rules, so tests classify with what users get."""
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    marker = "# === RELEVANCE RULES"
    return text[text.index(marker):] if marker in text else ""


def write_config(directory: Path, body: str, *, db_url: str | None = None, with_rules: bool = True) -> Path:
    """Write a config file for a test: its own feeds and settings plus the default rules."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = [f'[monitor]\nstate_dir = "{directory / "state"}"\n']
    if db_url:
        parts.append(f'[database]\nurl = "{db_url}"\n')
    parts.append(body)
    if with_rules:
        parts.append(default_rules_toml())
    path = directory / "monitor.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))  # fail early on a malformed test config
    return path


def make_config(directory: Path, body: str = "", *, db_url: str | None = None, environ: dict | None = None) -> Config:
    return load_config(write_config(directory, body, db_url=db_url), environ or {})
