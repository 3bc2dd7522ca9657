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
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError
from sqlmodel import Session, create_engine

log = structlog.get_logger(__name__)

EX_TEMPFAIL = 75  # sysexits.h: "try again later"; systemd's Restart=on-failure retries it


class DatabaseError(Exception):
    """A database that cannot be used, said in one line that names it (password hidden) and
    the fix. `temporary` tells a caller whether trying again later may help (a server that
    is down) or not (no driver, a malformed URL, a directory nobody may write)."""

    def __init__(self, message: str, *, temporary: bool):
        super().__init__(message)
        self.temporary = temporary

    @property
    def exit_status(self) -> int:
        return EX_TEMPFAIL if self.temporary else 2


def masked(url: str) -> str:
    """The URL as it may appear in a log or an error: the password replaced by ***."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql":
            parsed = parsed.set(drivername="postgresql")  # as the user wrote it, not our driver choice
        return parsed.render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"


def database_error(exc: BaseException, url: str) -> DatabaseError:
    """Translate what SQLAlchemy or a driver raised into one line an operator can act on."""
    if isinstance(exc, DatabaseError):
        return exc
    shown = masked(url)
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("psycopg"):
        return DatabaseError(
            f"database {shown}: the PostgreSQL driver is not installed "
            "(install the postgres extra: pip install 'dialogue-monitor[postgres]')",
            temporary=False,
        )
    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return DatabaseError(
            f"database URL {shown}: not a usable URL (use sqlite:///PATH or postgresql://USER@HOST/DB)",
            temporary=False,
        )
    if _is_sqlite(url):
        path = make_url(url).database or ""
        reason = _first_line(getattr(exc, "orig", None) or exc)
        if isinstance(exc, OSError):
            reason = exc.strerror or reason
        return DatabaseError(
            f"SQLite database {path}: {reason} (make its directory writable by this user, "
            "or set [database] url / MONITOR_DATABASE_URL / MONITOR_STATE_DIR elsewhere)",
            temporary=False,
        )
    reason = _first_line(getattr(exc, "orig", None) or exc)
    return DatabaseError(
        f"database {shown}: cannot connect: {reason} (is the server running and reachable?)",
        temporary=isinstance(exc, (OperationalError, InterfaceError, OSError)),
    )


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _first_line(exc: BaseException | object) -> str:
    text_ = str(exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the user's URL names (or omits)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    return url


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs to be safe under concurrent use.

    Raises DatabaseError for a URL that cannot work (malformed, no driver, a SQLite
    directory that cannot be created); an unreachable server shows at the first connect."""
    given = url
    try:
        url = normalise_url(url)
        if url.startswith("sqlite"):
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        # connect_timeout: an unreachable server is an error in seconds, not a hang.
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 10})
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError, OSError) as exc:
        raise database_error(exc, given) from None


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
    url = engine.url.render_as_string(hide_password=False)
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    except (OperationalError, InterfaceError, OSError) as exc:
        raise database_error(exc, url) from None
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
