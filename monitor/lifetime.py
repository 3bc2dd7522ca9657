"""Worker processes that end with the daemon.

The parse workers are forked by multiprocessing's forkserver, so their parent is the
forkserver, not the daemon, and a SIGKILLed daemon (OOM killer, `kill -9`, a container
runtime) used to leave them, the forkserver and the resource tracker running for as long as
half an hour outside systemd's cgroup clean-up. Each worker therefore watches the daemon's
own pid and exits the moment it is gone; the forkserver and the resource tracker then see
their last client leave and exit too.
"""

from __future__ import annotations

import os
import select
import threading

from monitor.process import pid_alive

POLL_SECONDS = 1.0  # only where pidfd_open is missing (kernels before 5.3)


def exit_with(pid: int) -> threading.Thread:
    """Start a daemon thread that ends this process as soon as process `pid` has exited."""
    thread = threading.Thread(target=_wait_then_exit, args=(pid,), name=f"exit-with-{pid}", daemon=True)
    thread.start()
    return thread


def _wait_then_exit(pid: int) -> None:
    _wait_for_exit(pid)
    # os._exit, not sys.exit: the main thread may be deep in a parse, and nothing here
    # needs flushing (results go back through the pool's queue, which has no reader now).
    os._exit(0)


def _wait_for_exit(pid: int) -> None:
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while pid_alive(pid):
            threading.Event().wait(POLL_SECONDS)
        return
    try:
        select.select([descriptor], [], [])  # readable once the process has exited
    finally:
        os.close(descriptor)
