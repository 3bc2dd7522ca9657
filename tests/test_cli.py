"""The command-line contracts that tools outside this repository rely on."""

from __future__ import annotations

import json
import os
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
    assert main(["--config", str(config), "config", "check"]) == 75  # db.example cannot be reached
    out = capsys.readouterr().out
    assert "hunter2" not in out and "MfKQ9r8" not in out
    effective = json.loads(out)
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


# -- every failure is one line, never a traceback (the real `monitor` executable) ------------

MONITOR = Path(sys.executable).parent / "monitor"
UNREACHABLE = "postgresql://monitor:hunter2@127.0.0.1:1/monitor"  # port 1: connection refused at once
HOOK = '[[channels]]\nid = "hook"\ntype = "webhook"\nurl = "https://hooks.example/x"\nsecret_env = "HOOK_SECRET"\n'
FEED_X = '[[feeds]]\nid = "x"\nurl = "http://127.0.0.1:9/x.xml"\n'


def monitor(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None, timeout: float = 60,
            ) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator runs it, in a clean environment."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("MONITOR_", "HOOK_"))}
    done = subprocess.run(
        [str(MONITOR), *args], input=stdin, capture_output=True, cwd=REPO, env={**base, **(env or {})}, timeout=timeout
    )
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("command", [["feeds", "list"], ["run"], ["db", "upgrade"]])
def test_unreachable_postgresql_is_one_line_with_the_password_hidden(tmp_path: Path, command: list[str]) -> None:
    config = write_config(tmp_path, FEED_X, with_rules=False)
    done = monitor("--config", str(config), *command, env={"MONITOR_DATABASE_URL": UNREACHABLE})
    line = one_line(done)
    assert done.returncode == 75  # EX_TEMPFAIL: systemd's Restart=on-failure tries again
    assert "postgresql://monitor:***@127.0.0.1:1/monitor" in line and "hunter2" not in line
    assert "cannot connect" in line


def test_postgresql_url_without_the_driver_names_the_extra(tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('psycopg', 'psycopg_binary', 'psycopg_c'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n",
        encoding="utf-8",
    )
    config = write_config(tmp_path, FEED_X, with_rules=False)
    done = monitor("--config", str(config), "feeds", "list",
                   env={"MONITOR_DATABASE_URL": UNREACHABLE, "PYTHONPATH": str(hide)})
    line = one_line(done)
    assert done.returncode == 2  # installing a package is not something a restart does
    assert "dialogue-monitor[postgres]" in line and "hunter2" not in line


def test_database_url_that_is_not_a_url_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, FEED_X, with_rules=False)
    for url in ("not a url", "postgresql://u:pw@host:port/db"):
        done = monitor("--config", str(config), "feeds", "list", env={"MONITOR_DATABASE_URL": url})
        line = one_line(done)
        assert done.returncode == 2
        assert line.startswith(f"monitor: config error: {config}: $MONITOR_DATABASE_URL: ")


def test_sqlite_path_that_cannot_be_created_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    database = blocker / "state" / "monitor.db"
    config = write_config(tmp_path, FEED_X, db_url=f"sqlite:///{database}", with_rules=False)
    done = monitor("--config", str(config), "feeds", "list")
    line = one_line(done)
    assert done.returncode == 2 and str(database) in line


def test_sqlite_in_a_read_only_directory_names_the_path() -> None:
    """Root writes anywhere: as root, the command runs as `nobody` (setpriv)."""
    import shutil
    import tempfile

    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a read-only directory cannot be made")
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    top = Path(tempfile.mkdtemp(prefix="monitor-ro-"))
    try:
        top.chmod(0o755)
        locked = top / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)
        config = write_config(top, FEED_X, db_url=f"sqlite:///{locked / 'monitor.db'}", with_rules=False)
        config.chmod(0o644)
        done = subprocess.run([*as_user, str(MONITOR), "--config", str(config), "feeds", "list"],
                              capture_output=True, text=True, cwd=top, timeout=60,
                              env={key: value for key, value in os.environ.items() if not key.startswith("MONITOR_")})
        line = one_line(done)
        assert done.returncode == 2 and str(locked / "monitor.db") in line and "writable" in line
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("command", ["classify", "cluster"])
def test_missing_input_file_is_one_line(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path, "")
    done = monitor("--config", str(config), command, str(tmp_path / "nope.jsonl"))
    line = one_line(done)
    assert done.returncode == 2 and "nope.jsonl" in line and "No such file" in line


@pytest.mark.parametrize("command", ["classify", "cluster"])
def test_invalid_utf8_is_a_bad_line_from_a_file_and_from_stdin_alike(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path, "")
    data = (json.dumps(IRRELEVANT, ensure_ascii=False) + "\n").encode() + b'{"id": "b", "title": "\xff", "body": "x"}\n'
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    from_file = monitor("--config", str(config), command, str(source))
    from_stdin = monitor("--config", str(config), command, "-", stdin=data)
    for done in (from_file, from_stdin):
        assert done.returncode == 1
        assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["a2"]
        error = json.loads(one_line(done))
        assert error["line"] == 2 and "UTF-8" in error["error"]
    assert from_file.stdout == from_stdin.stdout and from_file.stderr == from_stdin.stderr


def test_classify_and_cluster_reject_the_same_lines_alike(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    untitled = json.dumps({"id": "u1", "body": "نص بلا عنوان"}, ensure_ascii=False)
    lines = "\n".join([json.dumps(IRRELEVANT, ensure_ascii=False), untitled]) + "\n"
    results = [monitor("--config", str(config), command, stdin=lines.encode()) for command in ("classify", "cluster")]
    for done in results:
        assert done.returncode == 1
        assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["a2"]
        assert json.loads(one_line(done)) == {"id": "u1", "line": 2, "error": "missing or invalid title"}


def test_only_the_commands_that_send_need_the_channel_secrets(tmp_path: Path) -> None:
    config = write_config(tmp_path, FEED_X + HOOK)
    assert monitor("--config", str(config), "classify", stdin=json.dumps(IRRELEVANT).encode()).returncode == 0
    assert monitor("--config", str(config), "feeds", "list").returncode == 0
    for command in (["run"], ["deliveries", "retry", "m_x"]):
        done = monitor("--config", str(config), *command)
        assert done.returncode == 2
        assert one_line(done) == (
            f"monitor: config error: {config}: channels[0].secret_env: environment variable HOOK_SECRET is not set"
        )


def test_config_check_is_json_on_stdout_and_checks_secrets_and_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, FEED_X + HOOK, with_rules=False)
    done = monitor("--config", str(config), "config", "check", env={"HOOK_SECRET": "whsec_REPLACE-ME"})
    assert done.returncode == 2
    assert json.loads(done.stdout)["channels"][0]["id"] == "hook"  # the whole of stdout is JSON
    assert f"{config}: channels[0].secret_env: webhook secret" in done.stderr
    assert "does not exist yet" in done.stderr  # the SQLite file: reported, not created
    assert not (tmp_path / "state" / "monitor.db").exists()

    secret = monitor("secret", "new").stdout.strip()
    done = monitor("--config", str(config), "config", "check", env={"HOOK_SECRET": secret})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["secrets"] == {"channels.hook": "********"}

    done = monitor("--config", str(config), "config", "check",
                   env={"HOOK_SECRET": secret, "MONITOR_DATABASE_URL": UNREACHABLE})
    assert done.returncode == 75
    assert json.loads(done.stdout)["database"]["url"] == "postgresql://monitor:********@127.0.0.1:1/monitor"
    assert "database error: database postgresql://monitor:***@127.0.0.1:1/monitor: cannot connect" in done.stderr
    assert "Traceback" not in done.stderr


def test_secret_new_prints_a_fresh_standard_webhooks_secret() -> None:
    import base64

    from monitor.delivery import webhook_key

    first, second = (monitor("secret", "new") for _ in range(2))
    assert first.returncode == 0 and first.stderr == ""
    secret = first.stdout.strip()
    assert secret.startswith("whsec_") and len(webhook_key(secret)) == 32
    assert base64.b64decode(secret[len("whsec_"):]) == webhook_key(secret)
    assert secret != second.stdout.strip()


def test_shipped_environment_file_has_no_usable_webhook_secret() -> None:
    from monitor.delivery import webhook_key

    example = (REPO / "deploy" / "monitor.env.example").read_text(encoding="utf-8")
    values = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    with pytest.raises(ValueError):
        webhook_key(values["MONITOR_WEBHOOK_SECRET"])


def test_feeds_list_shows_no_next_poll_for_a_disabled_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, FEED_X + '[[feeds]]\nid = "off"\nurl = "http://127.0.0.1:9/o.xml"\nenabled = false\n')
    assert main(["--config", str(config), "feeds", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["off"][1] == "no" and rows["off"][5] == "-"
    assert rows["x"][1] == "yes" and rows["x"][5] != "-"


def test_feeds_list_says_error_for_a_feed_whose_body_did_not_parse(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests.feedserver import FeedServer

    with FeedServer() as server:
        server.route("/page", body=b"<!doctype html><html><body><p>not a feed</p></body></html>",
                     content_type="text/html; charset=utf-8")
        config = write_config(tmp_path, f'[[feeds]]\nid = "page"\nurl = "{server.url("/page")}"\n', with_rules=False)
        assert main(["--config", str(config), "poll"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "feeds", "list", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["last_http_status"] == 200 and row["consecutive_failures"] == 1 and row["last_error"]
    assert row["last_status"] == "error"
    assert main(["--config", str(config), "feeds", "list"]) == 0
    [line] = capsys.readouterr().out.splitlines()[1:]
    assert line.split()[3] == "error"  # FEED ON LAST-SUCCESS(never) STATUS


def test_an_unexpected_error_is_one_line_and_debug_shows_where(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "digest.html").write_text("{% if %}broken{% endif %}", encoding="utf-8")
    body = (
        '[[channels]]\nid = "hook"\ntype = "webhook"\nurl = "https://hooks.example/x"\nsecret_env = "HOOK_SECRET"\n'
        f'[[digests]]\nid = "daily"\nat = "07:30"\nwatches = ["kw-us"]\nchannels = ["hook"]\ntemplate_dir = "{templates}"\n'
    )
    config = write_config(tmp_path, body)
    done = monitor("--config", str(config), "digest", "preview", "daily")
    lines = [line for line in done.stderr.splitlines() if not line.startswith("{")]  # JSON log lines aside
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert lines == [line for line in lines if line.startswith("monitor: unexpected error: TemplateSyntaxError")]
    assert len(lines) == 1
    debug = monitor("--config", str(config), "--log-level", "debug", "digest", "preview", "daily")
    assert "TemplateSyntaxError" in debug.stderr and "digest.html" in debug.stderr
