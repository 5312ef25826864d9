"""%kalam --persist (pandas, polars and Arrow data into tables) and progress bars for
large inputs and FLUSH of large tables (issue 7).

FLUSH progress uses ``Engine.execute(..., progress=...)``; the strict xfail
below only applies to an engine without that parameter.
"""

from __future__ import annotations

import inspect

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from test_magic_support import cell, ip, line  # noqa: F401

from engine import Engine
from kalam_magic import KalamCellError

needs_execute_progress = pytest.mark.xfail(
    "progress" not in inspect.signature(Engine.execute).parameters,
    reason="engine: Engine.execute(..., progress=callback) not implemented yet",
    strict=True,
)


def test_persist_pandas_creates_the_table_then_appends(ip):  # noqa: F811
    cell(ip, "CREATE NAMESPACE app")
    ip.user_ns["df"] = pd.DataFrame({"id": [1, 2], "name": ["alice", "bob"]})
    res = line(ip, "--persist df INTO app.people")
    assert res.rows_affected == 2
    ip.user_ns["more"] = pd.DataFrame({"id": [3], "name": ["carol"]})
    line(ip, "--persist more INTO app.people")
    assert line(ip, "SELECT id, name FROM app.people ORDER BY id").rows() == [
        (1, "alice"),
        (2, "bob"),
        (3, "carol"),
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: pl.DataFrame({"id": [1, 2], "score": [0.5, None]}),
        lambda: pa.table({"id": [1, 2], "score": [0.5, None]}),
    ],
    ids=["polars", "arrow"],
)
def test_persist_polars_and_arrow(ip, make):  # noqa: F811
    ip.user_ns["data"] = make()
    line(ip, "--persist data INTO scores")
    assert line(ip, "SELECT id, score FROM scores ORDER BY id").rows() == [(1, 0.5), (2, None)]


def test_persist_round_trips_a_captured_dataframe(ip):  # noqa: F811
    cell(ip, "CREATE TABLE src (id INT PRIMARY KEY, label TEXT)")
    cell(ip, "INSERT INTO src SELECT value, 'v' || value FROM range(0, 50)")
    line(ip, "-o df SELECT id, label FROM src ORDER BY id")
    line(ip, "--persist df INTO copy")
    assert line(ip, "SELECT count(*) AS n, sum(id) AS s FROM copy").rows() == [(50, 1225)]


def test_large_input_shows_a_progress_bar(ip):  # noqa: F811
    ip.run_line_magic("config", "Kalam.progress_threshold = 1000")
    ip.run_line_magic("config", "Kalam.persist_batch_rows = 400")
    ip.user_ns["big"] = pa.table({"id": list(range(1000))})
    with capture_output() as captured:
        res = line(ip, "--persist big INTO big_t")
    assert "persist big_t" in captured.stderr and "1000/1000" in captured.stderr
    assert res.rows_affected == 1000
    assert line(ip, "SELECT count(*) AS n FROM big_t").scalar() == 1000


def test_small_input_shows_no_progress_bar(ip):  # noqa: F811
    ip.user_ns["small"] = pa.table({"id": [1, 2, 3]})
    with capture_output() as captured:
        line(ip, "--persist small INTO small_t")
    assert captured.stderr == ""


def test_persist_refuses_other_python_values(ip):  # noqa: F811
    ip.user_ns["nope"] = [1, 2, 3]
    with pytest.raises(UsageError, match="pandas or polars DataFrame or a pyarrow Table"):
        line(ip, "--persist nope INTO t")


@pytest.mark.parametrize("rest", ["", "t", "TO t", "INTO a b"])
def test_persist_needs_into_target(ip, rest):  # noqa: F811
    ip.user_ns["df"] = pd.DataFrame({"id": [1]})
    with pytest.raises(UsageError, match="INTO"):
        line(ip, f"--persist df {rest}")


def test_persist_of_an_undefined_name_is_a_usage_error(ip):  # noqa: F811
    with pytest.raises(UsageError, match="not defined"):
        line(ip, "--persist ghost INTO t")


@needs_execute_progress
def test_flush_of_a_large_table_shows_progress(ip):  # noqa: F811
    ip.run_line_magic("config", "Kalam.progress_threshold = 500")
    cell(
        ip,
        "CREATE TABLE big (id BIGINT PRIMARY KEY); INSERT INTO big SELECT value FROM range(0, 800)",
    )
    with capture_output() as captured:
        res = cell(ip, "FLUSH TABLE big WAIT")
    assert "800/800" in captured.stderr
    assert res.rows_affected == 800


def test_flush_of_a_small_table_shows_no_progress(ip):  # noqa: F811
    cell(ip, "CREATE TABLE small (id BIGINT PRIMARY KEY); INSERT INTO small VALUES (1), (2)")
    with capture_output() as captured:
        res = cell(ip, "FLUSH TABLE small WAIT")
    assert captured.stderr == ""
    assert res.rows_affected == 2


def test_persist_key_names_the_primary_key_of_a_new_table(ip):  # noqa: F811
    ip.user_ns["targets"] = pd.DataFrame({"customer": ["alice", "bob"], "target": [5.0, 7.0]})
    with pytest.raises(KalamCellError) as info:
        line(ip, "--persist targets INTO no_key")
    assert "primary key" in info.value.message
    line(ip, "--persist targets --key customer INTO with_key")
    pk = line(
        ip,
        "SELECT column_name FROM system.columns WHERE table_name = 'with_key' AND is_primary_key",
    )
    assert pk.rows() == [("customer",)]


def test_key_without_persist_is_a_usage_error(ip):  # noqa: F811
    with pytest.raises(UsageError, match="--persist"):
        line(ip, "--key id SELECT 1")


def test_a_failing_later_batch_says_how_many_rows_went_in(ip):  # noqa: F811
    ip.run_line_magic("config", "Kalam.persist_batch_rows = 2")
    cell(ip, "CREATE TABLE strict_t (id INT PRIMARY KEY, n INT NOT NULL)")
    ip.user_ns["rows"] = pa.table({"id": [1, 2, 3, 4], "n": [1, 2, None, 4]})
    with pytest.raises(KalamCellError) as info:
        line(ip, "--persist rows INTO strict_t")
    assert "2 of 4 rows were written by earlier batches" in info.value.message
    assert line(ip, "SELECT id FROM strict_t ORDER BY id").rows() == [(1,), (2,)]
