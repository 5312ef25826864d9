"""How results look: HTML escaping, types under headers, "N of M rows", the footer,
system tables, EXPLAIN, and golden files for the plain-text form (issue 7).

Goldens live in tests/golden/magic_*.txt. Elapsed times are the only values a
run cannot repeat, so the golden tests pin them with ``dataclasses.replace``
on the engine's real results. Regenerate with ``KALAM_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace

import pytest
from IPython.core.error import UsageError
from test_magic_support import GOLDEN, cell, ip, line, run_as_notebook  # noqa: F401

from kalam_magic import CellResult, KalamCellError

KINDS = """CREATE TABLE kinds (id INT PRIMARY KEY, flag BOOLEAN, big BIGINT, d DOUBLE, t TEXT,
  ts TIMESTAMP, day DATE, raw BYTES);
INSERT INTO kinds VALUES (1, true, 9007199254740993, 0.1, 'two
lines', TIMESTAMP '2024-01-02 03:04:05.123456', DATE '2024-02-29', X'00ff10');
INSERT INTO kinds (id) VALUES (2);
INSERT INTO kinds VALUES (3, false, -1, 1e300,
  'a very long text value that goes on and on and on beyond the sixty character limit',
  TIMESTAMP '1999-12-31 23:59:59', DATE '1970-01-01', X'01');
SELECT * FROM kinds ORDER BY id"""

TIME = re.compile(r"\d+\.\d\d ms")


def pinned(res: CellResult, ms: float = 1.25) -> CellResult:
    """The same results with a fixed elapsed time, for byte-exact goldens."""
    return CellResult(
        [replace(r, elapsed_ms=ms) for r in res.results],
        displaylimit=res.displaylimit,
        max_rows=res.max_rows,
        show_all=res.show_all,
        explain=res.explain,
        data_dir=res.data_dir,
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"magic_{name}.txt"
    if os.environ.get("KALAM_UPDATE_GOLDEN") == "1":
        path.write_text(text + "\n", encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}; run with KALAM_UPDATE_GOLDEN=1"
    assert text + "\n" == path.read_text(encoding="utf-8")


def fill(ip, n: int) -> None:  # noqa: F811
    cell(ip, "CREATE TABLE nums (id INT PRIMARY KEY, label TEXT)")
    cell(ip, f"INSERT INTO nums SELECT value, 'row ' || value FROM range(0, {int(n)})")


# ------------------------------------------------------------ HTML


def test_html_escapes_values_and_column_names(ip):  # noqa: F811
    cell(ip, "CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
    ip.user_ns["evil"] = "<img src=x onerror=alert(1)>"
    cell(ip, "INSERT INTO t VALUES (1, :evil)")
    html = cell(ip, 'SELECT name AS "<b>col</b>" FROM t')._repr_html_()
    assert "<img" not in html and "<b>col" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;b&gt;col&lt;/b&gt;" in html


def test_html_shows_column_types_under_the_headers(ip):  # noqa: F811
    html = cell(ip, KINDS)._repr_html_()
    header = html.split("<thead>")[1].split("</thead>")[0]
    names, types = header.split("</tr>")[:2]
    assert re.findall(r"<th>(\w+)</th>", names) == [
        "id",
        "flag",
        "big",
        "d",
        "t",
        "ts",
        "day",
        "raw",
    ]
    assert re.findall(r">([A-Z]+)</th>", types) == [
        "INT",
        "BOOLEAN",
        "BIGINT",
        "DOUBLE",
        "TEXT",
        "TIMESTAMP",
        "DATE",
        "BYTES",
    ]


def test_null_is_marked_and_differs_from_the_text_null(ip):  # noqa: F811
    html = line(ip, "SELECT NULL AS a, 'NULL' AS b")._repr_html_()
    assert '<td class="kalam-null"' in html
    assert "<td>NULL</td>" in html


def test_dates_and_timestamps_after_year_9999_are_shown(ip):  # noqa: F811
    """Arrow holds them; Python's datetime does not (it raised OverflowError)."""
    res = line(
        ip,
        "SELECT DATE '9999-12-31' + INTERVAL '1 day 2 hours' AS ts, "
        "DATE '9999-12-31' + INTERVAL '1 day' AS d, DATE '2024-01-01' + INTERVAL '1 hour' AS ok",
    )
    text, html = str(res), res._repr_html_()
    for shown in (text, html):
        assert "10000-01-01 02:00:00" in shown and "10000-01-01" in shown
        assert "2024-01-01 01:00:00" in shown


def test_long_result_shows_n_of_m_rows_and_keeps_every_row(ip):  # noqa: F811
    fill(ip, 25)
    res = line(ip, "SELECT * FROM nums ORDER BY id")
    html = res._repr_html_()
    assert html.count("<tr>") == 1 + 20  # the header row and 20 rows (default limit)
    assert "20 of 25 rows" in html and "20 of 25 rows" in str(res)
    assert len(res) == 25 and len(res.to_pandas()) == 25


def test_displaylimit_setting(ip):  # noqa: F811
    fill(ip, 8)
    ip.run_line_magic("config", "Kalam.displaylimit = 3")
    res = line(ip, "SELECT * FROM nums ORDER BY id")
    assert "3 of 8 rows" in str(res)
    assert [ln.split("|")[0].strip() for ln in str(res).splitlines()[3:6]] == ["0", "1", "2"]
    ip.run_line_magic("config", "Kalam.displaylimit = 0")
    res = line(ip, "SELECT * FROM nums ORDER BY id")
    assert str(res).splitlines()[-1].startswith("8 rows · ")


def test_every_row_is_capped_above_display_max_rows_until_the_cell_confirms(ip):  # noqa: F811
    fill(ip, 1_500)
    ip.run_line_magic("config", "Kalam.displaylimit = 0")
    ip.run_line_magic("config", "Kalam.display_max_rows = 1000")
    res = line(ip, "SELECT * FROM nums ORDER BY id")
    html, text = res._repr_html_(), str(res)
    assert html.count("<tr>") == 1 + 1000
    assert "1,000 of 1,500 rows" in html and "1,000 of 1,500 rows" in text
    assert "--rows all" in text.splitlines()[-1] and "all 1,500" in text.splitlines()[-1]
    assert 'class="kalam-capped"' in html
    assert len(res) == 1_500  # the whole result is kept, only the rendering is capped
    every = line(ip, "--rows all SELECT * FROM nums ORDER BY id")
    assert every._repr_html_().count("<tr>") == 1 + 1_500
    assert str(every).splitlines()[-1].startswith("1,500 rows · ")
    assert "kalam-capped" not in every._repr_html_()


def test_rows_option_sets_the_limit_of_one_cell(ip):  # noqa: F811
    fill(ip, 30)
    res = cell(ip, "SELECT * FROM nums ORDER BY id", "--rows 7")
    assert "7 of 30 rows" in str(res)
    assert "20 of 30 rows" in str(line(ip, "SELECT * FROM nums ORDER BY id"))  # setting kept
    for bad in ("--rows 0", "--rows -3", "--rows many"):
        with pytest.raises(UsageError, match="--rows needs a positive whole number or all"):
            cell(ip, "SELECT 1", bad)


def test_row_counts_have_thousands_separators(ip):  # noqa: F811
    fill(ip, 12_345)
    res = line(ip, "SELECT * FROM nums")
    footer = str(res).splitlines()[-1]
    assert footer.startswith("20 of 12,345 rows · ")
    assert "hot rows 12,345" in footer
    assert TIME.sub("T", str(line(ip, "SELECT count(*) AS n FROM nums")).splitlines()[-1]) == (
        "1 row · T · hot rows 12,345 · segments scanned 0 of 0, pruned 0"
    )


def test_footer_has_elapsed_time_hot_rows_and_segments(ip):  # noqa: F811
    fill(ip, 4)
    res = line(ip, "SELECT * FROM nums WHERE id < 2 ORDER BY id")
    footer = str(res).splitlines()[-1]
    assert re.fullmatch(
        r"2 rows · \d+\.\d\d ms · hot rows 4 · segments scanned 0 of 0, pruned 0", footer
    ), footer
    assert footer in res._repr_html_()
    assert f"{res.elapsed_ms:.2f} ms" in footer


def test_footer_without_a_table_scan_has_rows_and_time_only(ip):  # noqa: F811
    footer = str(line(ip, "SELECT 1 AS x")).splitlines()[-1]
    assert TIME.sub("T", footer) == "1 row · T"


def test_status_lines_show_message_and_time(ip):  # noqa: F811
    res = cell(ip, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
    assert TIME.sub("T", str(res)) == "Table default.t created · T\nInserted 2 row(s) · T"
    assert 'class="kalam-status"' in res._repr_html_()


def test_ipython_formatter_gives_html_and_plain_text(ip):  # noqa: F811
    res = line(ip, "SELECT 1 AS x")
    data, _ = ip.display_formatter.format(res)
    assert data["text/plain"] == str(res)
    assert data["text/html"].startswith('<div class="kalam-output">')


def test_system_tables_render_like_any_result(ip):  # noqa: F811
    cell(ip, "CREATE TABLE users (id INT PRIMARY KEY, name TEXT)")
    res = cell(
        ip, "SELECT namespace, table_name, table_type FROM system.tables ORDER BY table_name"
    )
    check_golden("system_tables", str(pinned(res)))
    html = res._repr_html_()
    assert '<tr class="kalam-types">' in html and "<td>users</td>" in html


def test_explain_shows_the_plan_and_the_pruning_figures(ip):  # noqa: F811
    fill(ip, 4)
    res = line(ip, "--explain SELECT * FROM nums WHERE id = 2")
    text = str(res)
    assert "physical_plan" in text
    assert "default.nums:" in text and "segments_pruned=" in text and "hot_rows=4" in text
    assert "<pre" in res._repr_html_()


def test_explain_of_cold_data_shows_pruning_and_hides_the_data_dir(ip, tmp_path):  # noqa: F811
    # Two segments: a scope of one segment is read without a pruning pass.
    fill(ip, 10)
    cell(ip, "FLUSH TABLE nums WAIT; INSERT INTO nums VALUES (50, 'second')")
    cell(ip, "FLUSH TABLE nums WAIT; INSERT INTO nums VALUES (100, 'hot')")
    res = line(ip, "--explain SELECT * FROM nums WHERE id = 100")
    text = str(res)
    assert "segments_total=2" in text and "segments_pruned=2" in text
    assert text.splitlines()[-1].endswith("segments scanned 0 of 2, pruned 2")
    cold = line(ip, "--explain SELECT * FROM nums WHERE id = 5")
    assert "<data dir>/storage/default/nums/batch-1.parquet" in str(cold)
    assert str(tmp_path).strip("/") not in str(cold) + cold._repr_html_()


# ------------------------------------------------------------ golden text


def test_golden_all_types_nulls_and_long_values(ip):  # noqa: F811
    check_golden("types", str(pinned(cell(ip, KINDS))))


def test_golden_truncated_result(ip):  # noqa: F811
    fill(ip, 30)
    ip.run_line_magic("config", "Kalam.displaylimit = 5")
    check_golden("truncated", str(pinned(line(ip, "SELECT * FROM nums ORDER BY id"))))


def test_golden_several_queries_with_all(ip):  # noqa: F811
    res = cell(
        ip,
        "CREATE TABLE t (id INT PRIMARY KEY, v DOUBLE);\n"
        "INSERT INTO t VALUES (1, 0.5), (2, NULL);\n"
        "SELECT count(*) AS n FROM t;\nSELECT * FROM t ORDER BY id",
        "--all",
    )
    check_golden("all", str(pinned(res)))


def test_golden_error_message(ip):  # noqa: F811
    cell(ip, "CREATE TABLE t (id INT PRIMARY KEY)")
    with pytest.raises(KalamCellError) as info:
        cell(ip, "INSERT INTO t VALUES (1);\nSELECT id\n  FROM t WHERE id = {wanted}")
    check_golden("error", "\n".join(info.value.lines()))
    _, shown = run_as_notebook(ip, "%%kalam\nSELECT * FROM t WHERE id = {wanted}")
    assert "ParameterError" in shown and "Traceback" not in shown
