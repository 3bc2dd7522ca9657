"""Group commit: finished polls are recorded through the one database thread, many feeds
per transaction, without making any poll wait long for the others."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from monitor.store import PollResult, Store, StoredPoll


class GroupWriter:
    """Records finished polls through the one database thread, many per transaction (group
    commit): a write starts once `linger` seconds have passed since the first poll waiting
    for it, or at once when MAX_FEEDS are waiting, and whatever finishes meanwhile waits for
    the next. A transaction's statements and commit cost about the same for one feed or
    fifty, so a cold pass of 500 feeds commits a few dozen times instead of 500, while a
    quiet daemon's single feed is stored a fraction of a second after its poll. Each feed
    stays all-or-nothing (see Store.record_polls)."""

    # Keeps a transaction short, its IN lists well under driver limits, and the main
    # process's heap small: a group's candidates are ~6 KB each in memory, 40 per feed
    # (poll_bench, 500 feeds: peak RSS 194 MB with 50, 181 MB with 25, at the same speed).
    MAX_FEEDS = 25

    def __init__(self, store: Store, executor: Executor, linger: float = 0.2):
        self.store = store
        self.executor = executor
        self.linger = linger
        self._pending: list[tuple[PollResult, asyncio.Future[StoredPoll]]] = []
        self._writing = False
        self._timer: asyncio.TimerHandle | None = None

    async def record(self, result: PollResult) -> StoredPoll:
        future: asyncio.Future[StoredPoll] = asyncio.get_running_loop().create_future()
        self._pending.append((result, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        # Cancelled polls are dropped when a write takes its batch, not here: this runs for
        # every finished poll, and filtering the whole queue each time made a pass quadratic
        # in its feeds while the writer was busy (hundreds waiting in a warm pass).
        if self._writing or not self._pending:
            return
        if len(self._pending) >= self.MAX_FEEDS or self.linger <= 0:
            self._write_next()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._linger_over)

    def _linger_over(self) -> None:
        self._timer = None
        if not self._writing and self._pending:
            self._write_next()

    def _drop_cancelled(self) -> None:
        self._pending = [(result, future) for result, future in self._pending if not future.cancelled()]

    def close(self) -> None:
        """Stop lingering (the poller is closing: every poll it still waits for was cancelled)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _write_next(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop_cancelled()
        if not self._pending:
            return
        batch, self._pending = self._pending[: self.MAX_FEEDS], self._pending[self.MAX_FEEDS :]
        self._writing = True
        results = [result for result, _ in batch]
        loop = asyncio.get_running_loop()
        try:
            task = loop.run_in_executor(self.executor, self.store.record_polls, results)
        except RuntimeError as exc:  # the executor was shut down: fail these polls, never strand them
            task = loop.create_future()
            task.set_exception(exc)
        task.add_done_callback(lambda done: self._written(batch, done))

    def _written(self, batch: list[tuple[PollResult, asyncio.Future[StoredPoll]]], done: asyncio.Future) -> None:
        self._writing = False
        error = done.exception()
        outcomes = [error] * len(batch) if error is not None else done.result()
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.cancelled():
                continue  # the poll was cancelled (shutdown); its feed is recorded all the same
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._schedule()
