"""structlog set-up: JSON lines when stderr is not a terminal (journald keeps them whole),
readable console output when a person is watching.

Libraries (APScheduler, SQLAlchemy, httpx) log through the standard library; their records go
through the same processors and renderer, so every line of the daemon's output, exceptions
included, is one JSON object and a log pipeline never meets a bare traceback."""

from __future__ import annotations

import asyncio
import logging
import sys

import structlog


class _CurrentStderr:
    """Whatever sys.stderr is at write time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _CancelledAtShutdown(logging.Filter):
    """A scheduler job cancelled because the daemon is stopping is normal: APScheduler logs
    it as an error with a traceback; it is said at debug level, in one line, instead."""

    def __init__(self, threshold: int):
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.msg, record.args = "%s (cancelled: the daemon is stopping)", (record.getMessage(),)
            record.exc_info, record.exc_text = None, None
            return self.threshold <= logging.DEBUG
        return True


_HANDLER_NAME = "monitor"

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    )
    exceptions: list[structlog.typing.Processor] = [structlog.processors.format_exc_info] if json else []
    structlog.configure(
        processors=[*_SHARED, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Libraries: their noise at warning and above, through the same renderer.
    handler = logging.StreamHandler(_CurrentStderr())  # type: ignore[arg-type]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exceptions, renderer],
        )
    )
    handler.addFilter(_CancelledAtShutdown(numeric))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # configured again (the config's log_level): replace ours only
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
