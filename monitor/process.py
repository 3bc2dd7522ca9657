"""Who holds a lease: each process records "host:pid" on the feeds it polls and the
deliveries it sends, so that a process of the same host can tell when the holder has died.

The host part is the machine's node name, or $MONITOR_LEASE_HOST when set. Two machines
must never record the same host name: a process on one would take the other's pids for its
own and free leases that are still being worked on (cloned VMs and containers that share a
node name need the variable). The process-level tests also set it, to run daemons "on
different hosts" on one machine, where the dead-pid fast path must not apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable

HOST = os.environ.get("MONITOR_LEASE_HOST") or os.uname().nodename


def this_process() -> str:
    """The owner recorded on what this process leases (feeds being polled, deliveries being
    sent), so that a restart on the same host can free what a killed process held."""
    return f"{HOST}:{os.getpid()}"


def held_by_dead_process(owner: str | None, is_alive: Callable[[int], bool] | None = None) -> bool:
    """Whether a lease owner "host:pid" (of this host: callers select those) has exited."""
    pid = (owner or "").rpartition(":")[2]
    return pid.isdigit() and not (is_alive or pid_alive)(int(pid))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
