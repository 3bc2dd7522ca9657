"""Engines and migrations: the settings each backend needs, and Alembic run from code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

log = structlog.get_logger(__name__)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the user's URL names (or omits)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs to be safe under concurrent use."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config() -> AlembicConfig:
    """Alembic settings built in code, so migrations run from an installed package too."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def migrations_dir() -> Path:
    """`alembic/` beside the package in a source checkout; `monitor/migrations/` in a wheel.

    The folder has no `__init__.py` on purpose: a package named `alembic` at the top of the
    checkout would shadow the Alembic library itself."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "alembic", package / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("the Alembic migrations were not installed with the package")


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest revision; a no-op when it is there already."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    log.info("database upgraded", url=engine.url.render_as_string(hide_password=True))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 (no table yet means no revision)
            return None


class Database:
    """An engine and its sessions: short, one per operation (SQLModel's documented use)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session
