"""The shipped systemd unit: restarts that make sense for the daemon's exit statuses, and
its hardening, as systemd itself rates it (when systemd-analyze is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from monitor.cli import EXIT_CONFIG, EXIT_TEMPFAIL
from tests.conftest import REPO

UNIT = REPO / "deploy" / "monitor.service"


def _settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def test_a_config_error_is_not_restarted_and_an_unreachable_database_is() -> None:
    settings = _settings()
    assert settings["Restart"] == ["on-failure"]  # retries 75 (and crashes)
    assert settings["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]
    assert str(EXIT_TEMPFAIL) not in settings["RestartPreventExitStatus"][0].split()


def test_the_numa_calls_numpy_makes_are_allowed_back() -> None:
    filters = _settings()["SystemCallFilter"]
    removed = filters.index("~@privileged @resources")
    assert any("mbind" in value.split() for value in filters[removed + 1:])  # SIGSYS at start-up without it


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_rates_the_unit_exposure_at_most_1_2(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    found = re.search(r"Overall exposure level for monitor\.service: ([0-9.]+)", done.stdout + done.stderr)
    if found is None:
        pytest.skip(f"this systemd-analyze cannot rate a unit file offline: {done.stderr.strip()[:200]}")
    assert float(found.group(1)) <= 1.2
