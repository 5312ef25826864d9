"""The ``kalam sql`` command: output formats, exit codes, data dir and user choice."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.demo import run_demo

REPO = Path(__file__).resolve().parents[1]

SETUP = (
    "CREATE TABLE people (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE); "
    "INSERT INTO people (id, name, score) VALUES (1, 'alice', 9.5), (2, 'bob', NULL)"
)
QUERY = "SELECT id, name, score FROM people ORDER BY id"


@pytest.fixture(autouse=True)
def _no_data_dir_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own KALAM_DATA_DIR must never leak into these tests.
    monkeypatch.delenv("KALAM_DATA_DIR", raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    return str(tmp_path / "data")


def kalam(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_table_format_prints_statuses_then_an_aligned_table(capsys, data_dir):
    code, out, err = kalam(capsys, "sql", f"{SETUP}; {QUERY}", "--data-dir", data_dir)
    assert (code, err) == (0, "")
    assert out == (
        "Table default.people created\n"
        "Inserted 2 row(s)\n"
        "\n"
        "id | name  | score\n"
        "---+-------+------\n"
        " 1 | alice |   9.5\n"
        " 2 | bob   |  NULL\n"
        "(2 rows)\n"
    )


def test_csv_format_writes_only_rows_to_stdout(capsys, data_dir):
    code, out, err = kalam(capsys, "sql", SETUP, "--data-dir", data_dir, "--format", "csv")
    assert code == 0
    assert out == ""
    assert err == "Table default.people created\nInserted 2 row(s)\n"

    code, out, err = kalam(capsys, "sql", QUERY, "--data-dir", data_dir, "--format", "csv")
    assert (code, err) == (0, "")
    assert out == "id,name,score\n1,alice,9.5\n2,bob,\n"


def test_json_format_is_one_document_with_an_object_per_row(capsys, data_dir):
    kalam(capsys, "sql", SETUP, "--data-dir", data_dir)
    code, out, err = kalam(capsys, "sql", QUERY, "--data-dir", data_dir, "--format", "json")
    assert (code, err) == (0, "")
    assert out == (
        '[{"id": 1, "name": "alice", "score": 9.5}, {"id": 2, "name": "bob", "score": null}]\n'
    )
    assert json.loads(out) == [
        {"id": 1, "name": "alice", "score": 9.5},
        {"id": 2, "name": "bob", "score": None},
    ]


def test_json_spells_timestamps_dates_and_bytes_as_strings(capsys, data_dir):
    sql = (
        "CREATE TABLE events (id BIGINT PRIMARY KEY, at TIMESTAMP, day DATE, payload BYTES); "
        "INSERT INTO events (id, at, day, payload) "
        "VALUES (1, '2024-01-02 03:04:05', '2024-01-02', X'01ff')"
    )
    assert main(["sql", sql, "--data-dir", data_dir]) == 0
    capsys.readouterr()
    code, out, _ = kalam(
        capsys,
        "sql",
        "SELECT at, day, payload FROM events",
        "--data-dir",
        data_dir,
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out) == [
        {"at": "2024-01-02T03:04:05", "day": "2024-01-02", "payload": "\\x01ff"}
    ]


def test_engine_error_is_one_line_on_stderr_with_exit_code_1(capsys, data_dir):
    code, out, err = kalam(capsys, "sql", "SELECT * FROM no_such_table", "--data-dir", data_dir)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "no_such_table" in err
    assert "Traceback" not in err


def test_constraint_violation_in_a_script_exits_1_with_the_engine_message(capsys, data_dir):
    dup = "INSERT INTO people (id, name, score) VALUES (1, 'dup', 0)"
    code, out, err = kalam(capsys, "sql", f"{SETUP}; {dup}", "--data-dir", data_dir)
    assert (code, out) == (1, "")
    assert err == "error: Primary key violation: value '1' already exists in column 'id'\n"


@pytest.mark.parametrize(
    "args",
    [[], ["sql"], ["sql", "SELECT 1", "--format", "xml"], ["frobnicate"]],
    ids=["no-command", "no-sql", "bad-format", "unknown-command"],
)
def test_usage_errors_exit_2(capsys, args):
    assert main(args) == 2
    assert "usage:" in capsys.readouterr().err


def test_data_dir_comes_from_env_when_not_given(capsys, tmp_path, monkeypatch):
    env_dir = tmp_path / "from-env"
    monkeypatch.setenv("KALAM_DATA_DIR", str(env_dir))
    monkeypatch.chdir(tmp_path)
    assert main(["sql", SETUP]) == 0
    assert env_dir.is_dir()
    assert not (tmp_path / "kalam-data").exists()

    capsys.readouterr()
    code, out, _ = kalam(capsys, "sql", QUERY, "--data-dir", str(env_dir), "--format", "csv")
    assert code == 0
    assert out.splitlines()[1:] == ["1,alice,9.5", "2,bob,"]


def test_data_dir_flag_beats_env_and_default_is_kalam_data(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sql", "CREATE NAMESPACE here"]) == 0
    assert (tmp_path / "kalam-data").is_dir()

    monkeypatch.setenv("KALAM_DATA_DIR", str(tmp_path / "ignored"))
    assert main(["sql", "CREATE NAMESPACE there", "--data-dir", str(tmp_path / "flag")]) == 0
    assert (tmp_path / "flag").is_dir()
    assert not (tmp_path / "ignored").exists()


def test_user_flag_isolates_rows_of_a_user_table(capsys, data_dir):
    create = "CREATE USER TABLE notes (id BIGINT PRIMARY KEY, body TEXT)"
    assert main(["sql", create, "--data-dir", data_dir]) == 0
    for user, body in [("alice", "from alice"), ("bob", "from bob")]:
        insert = f"INSERT INTO notes (id, body) VALUES (1, '{body}')"
        assert main(["sql", insert, "--data-dir", data_dir, "--user", user]) == 0
    capsys.readouterr()

    for user in ("alice", "bob"):
        code, out, _ = kalam(
            capsys,
            "sql",
            "SELECT id, body FROM notes",
            "--data-dir",
            data_dir,
            "--user",
            user,
            "--format",
            "json",
        )
        assert code == 0
        assert json.loads(out) == [{"id": 1, "body": f"from {user}"}]


def _run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KALAM_DATA_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_as_a_module_in_a_separate_process(data_dir):
    ok = _run_module(
        "sql", f"{SETUP}; {QUERY}", "--data-dir", data_dir, "--format", "json", cwd=REPO
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "Table default.people created\nInserted 2 row(s)\n"
    assert json.loads(ok.stdout) == [
        {"id": 1, "name": "alice", "score": 9.5},
        {"id": 2, "name": "bob", "score": None},
    ]

    bad = _run_module("sql", "SELEKT 1", "--data-dir", data_dir, cwd=REPO)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("error: ")
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


def test_a_reader_that_stops_early_gets_no_traceback(data_dir):
    # More output than a pipe buffer holds, read one line, then hang up.
    env = {k: v for k, v in os.environ.items() if k != "KALAM_DATA_DIR"}
    args = ["sql", "SELECT value FROM range(0, 200000)", "--data-dir", data_dir]
    with subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().strip() == "value"
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 1
    assert err == ""


def test_demo_reads_the_same_rows_after_the_restart(tmp_path):
    out = io.StringIO()
    run_demo(tmp_path / "data", out)
    before, after = out.getvalue().split("-- engine closed")

    def select_output(part: str) -> str:
        block = part.split("kalam> SELECT id, title, stars FROM demo.notes ORDER BY id;\n")[1]
        return block.split("\n\n")[0]

    assert select_output(before) == select_output(after)
    assert select_output(after).endswith("(3 rows)")


def test_json_spells_nan_and_infinities_apart_from_null(capsys, data_dir):
    sql = (
        "CREATE TABLE m (id BIGINT PRIMARY KEY, f DOUBLE); INSERT INTO m VALUES "
        "(1, CAST('NaN' AS DOUBLE)), (2, CAST('Infinity' AS DOUBLE)), "
        "(3, CAST('-Infinity' AS DOUBLE)), (4, NULL), (5, 1.5)"
    )
    assert main(["sql", sql, "--data-dir", data_dir]) == 0
    capsys.readouterr()
    code, out, _ = kalam(
        capsys, "sql", "SELECT f FROM m ORDER BY id", "--data-dir", data_dir, "--format", "json"
    )
    assert code == 0
    # The spellings JavaScript's Number() and Python's float() read back.
    assert [r["f"] for r in json.loads(out)] == ["NaN", "Infinity", "-Infinity", None, 1.5]
