"""Every line the daemon writes is one JSON object: library records and exceptions too."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.log import configure_logging


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]  # raises on any line that is not JSON


async def _cancel_a_running_job(level: str) -> None:
    configure_logging(level, json=True)
    started = asyncio.Event()
    running: list[asyncio.Task] = []

    async def poll() -> None:
        running.append(asyncio.current_task())  # type: ignore[arg-type]
        started.set()
        await asyncio.sleep(3600)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(poll, id="poll")
    scheduler.start()
    await asyncio.wait_for(started.wait(), 10)
    running[0].cancel()  # what the daemon does to a poll still running at shutdown
    await asyncio.gather(running[0], return_exceptions=True)
    scheduler.shutdown(wait=False)


async def test_a_job_cancelled_at_shutdown_is_not_an_error_nor_a_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    logging.getLogger().handlers.clear()  # whatever an earlier test left: this one sees all output
    await _cancel_a_running_job("info")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "CancelledError" not in err
    assert all(line["level"] not in ("error", "critical") for line in _lines(err))


async def test_at_debug_level_the_cancelled_job_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    await _cancel_a_running_job("debug")
    [line] = [row for row in _lines(capsys.readouterr().err) if "cancelled" in row["event"]]
    assert line["level"] == "debug" and line["logger"].startswith("apscheduler") and "exception" not in line


def test_library_exceptions_are_rendered_inside_the_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("apscheduler.executors.default").exception('Job "poll" raised an exception')
        structlog.get_logger("monitor.daemon").exception("polling pass failed", feed_id="x")
    logging.getLogger("httpx").info("below the library threshold")
    library, ours = _lines(capsys.readouterr().err)
    assert library["level"] == "error" and library["logger"] == "apscheduler.executors.default"
    assert "ZeroDivisionError" in library["exception"]
    assert ours["feed_id"] == "x" and "ZeroDivisionError" in ours["exception"]
