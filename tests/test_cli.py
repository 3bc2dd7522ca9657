"""The command-line contracts that tools outside this repository rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main
from tests.conftest import REPO, write_config

RELEVANT = {
    "id": "a1",
    "title": "انطلاق الجولة الرابعة من الحوار الاستراتيجي بين الكويت والولايات المتحدة",
    "body": "انطلقت في واشنطن اليوم أعمال الجولة الرابعة من الحوار الاستراتيجي بين دولة الكويت "
    "والولايات المتحدة الأمريكية، وبحث الجانبان التعاون الدفاعي والأمني بين البلدين.",
}
IRRELEVANT = {"id": "a2", "title": "ارتفاع أسعار النفط", "summary": "ارتفعت أسعار النفط اليوم في الأسواق العالمية."}


def run_cli(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], input=stdin, capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


def test_classify_contract(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    lines = [json.dumps(RELEVANT, ensure_ascii=False), "{not json", json.dumps(IRRELEVANT, ensure_ascii=False),
             json.dumps({"id": "a3"})]
    done = run_cli("--config", str(config), "classify", "-", stdin="\n".join(lines) + "\n")
    assert done.returncode == 1  # some lines were bad
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["id"] for row in out] == ["a1", "a2"]
    first = out[0]
    assert {"id", "flagged", "watch", "score", "round", "topics", "matches"} <= set(first)
    assert first["flagged"] is True and first["watch"] == "kw-us" and first["round"] == 4
    for match in first["matches"]:
        text = RELEVANT[match["field"] if match["field"] == "title" else "body"]
        assert 0 <= match["start"] < match["end"] <= len(text)
    assert out[1]["flagged"] is False and out[1]["watch"] is None
    errors = done.stderr.strip().splitlines()
    assert any("2" in line for line in errors)  # line number of the malformed line
    assert any("a3" in line for line in errors)  # the id of the line without title/body


def test_classify_reads_a_file_and_exits_zero_when_all_lines_are_good(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(IRRELEVANT, ensure_ascii=False) + "\n", encoding="utf-8")
    done = run_cli("--config", str(config), "classify", str(source))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "a2"


def test_cluster_contract(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    copy = dict(RELEVANT, id="a1-copy", title="الكويت وواشنطن: الحوار الاستراتيجي في جولته الرابعة")
    lines = [json.dumps(row, ensure_ascii=False) for row in (RELEVANT, IRRELEVANT, copy)]
    done = run_cli("--config", str(config), "cluster", stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["id"] for row in out] == ["a1", "a2", "a1-copy"]
    assert out[2]["duplicate_of"] == "a1" and out[2]["story"] == out[0]["story"]
    assert out[1]["duplicate_of"] is None and out[1]["story"] != out[0]["story"]


def test_config_errors_exit_2_with_file_key_and_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[polling]\ninterval = "often"\n', encoding="utf-8")
    done = run_cli("--config", str(bad), "poll")
    assert done.returncode == 2
    assert f"{bad}: polling.interval: invalid duration" in done.stderr


def test_config_check_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    monkeypatch.setenv("MONITOR_DATABASE_URL", "postgresql://monitor:hunter2@db.example/monitor")
    config = write_config(
        tmp_path,
        '[[channels]]\nid = "hook"\ntype = "webhook"\nurl = "https://hooks.example/x"\nsecret_env = "HOOK_SECRET"\n',
    )
    assert main(["--config", str(config), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "MfKQ9r8" not in out
    effective = json.loads(out.split("\n", 1)[1])
    assert effective["database"]["url"] == "postgresql://monitor:********@db.example/monitor"
    assert effective["channels"][0]["secret_env"] == "HOOK_SECRET"


def test_db_upgrade_and_feeds_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, '[[feeds]]\nid = "x"\nurl = "http://127.0.0.1:9/x.xml"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert "database at revision" in capsys.readouterr().out
    assert main(["--config", str(config), "feeds", "list", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == "x" and row["last_status"] is None and row["consecutive_failures"] == 0
    # One failed pass: the health shows it, and the run still exits 0.
    assert main(["--config", str(config), "poll"]) == 0
    assert "1 feeds polled, 1 failed" in capsys.readouterr().out
    assert main(["--config", str(config), "feeds", "list"]) == 0
    listing = capsys.readouterr().out
    assert "x " in listing and "error" in listing and "connect" in listing


def test_unknown_feed_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, '[[feeds]]\nid = "x"\nurl = "http://127.0.0.1:9/x.xml"\n')
    assert main(["--config", str(config), "poll", "--feed", "nope"]) == 2
    assert "unknown feed 'nope'" in capsys.readouterr().err
