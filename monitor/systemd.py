"""The sd_notify protocol: a datagram to $NOTIFY_SOCKET saying READY=1, STOPPING=1 or
WATCHDOG=1. A few lines of socket code instead of a dependency; outside systemd it is a no-op."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ):
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        self.address = address or None
        watchdog_usec = environ.get("WATCHDOG_USEC")
        self.watchdog_interval = int(watchdog_usec) / 2_000_000 if watchdog_usec else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *states: str) -> bool:
        """Send one message; failures are logged, never raised, as systemd is optional."""
        if self.address is None:
            return False
        message = "\n".join(states).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message)
            return True
        except OSError as exc:
            log.warning("sd_notify failed", error=str(exc), states=states)
            return False

    def ready(self, status: str = "polling feeds") -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", "STATUS=shutting down")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")
