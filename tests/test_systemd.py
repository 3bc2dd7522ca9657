"""The sd_notify protocol against a real unix datagram socket, as systemd provides it."""

from __future__ import annotations

import socket
from pathlib import Path

from monitor.systemd import Notifier


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    return sock


def test_ready_stopping_and_watchdog_reach_the_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with _listen(path) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
        assert notifier.watchdog_interval == 2.0
        assert notifier.ready("polling 3 feeds")
        assert sock.recv(4096).decode().split("\n") == ["READY=1", "STATUS=polling 3 feeds"]
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping()
        assert sock.recv(4096).decode().startswith("STOPPING=1")


def test_abstract_socket_address() -> None:
    name = f"monitor-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096).startswith(b"READY=1")


def test_without_systemd_it_is_a_no_op(tmp_path: Path) -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    # A socket that went away is logged, not raised: the daemon keeps running.
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready() is False
