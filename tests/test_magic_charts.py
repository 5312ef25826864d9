"""Charts of query results (issue 13): ``%kalam --chart`` and ``CellResult.chart``.

hist, box and a bar of counts are computed by the engine from SQL that wraps
the cell's query, so only the aggregate reaches the kernel; the displayed
bundle holds the Vega-Lite spec and a PNG, both saved with the notebook."""

from __future__ import annotations

import base64
import json

import pytest
from IPython.core.error import UsageError
from test_magic_support import cell, ip, line  # noqa: F401

from engine import Engine
from kalam_magic import charts
from kalam_magic.errors import KalamCellError

SALES = (
    "CREATE TABLE sales (id BIGINT PRIMARY KEY, region TEXT, amount DOUBLE, qty INT);"
    "INSERT INTO sales (id, region, amount, qty) VALUES "
    "(1, 'north', 10.0, 1), (2, 'north', 20.0, 2), (3, 'south', 30.0, 3), "
    "(4, 'south', 40.0, 4), (5, 'south', 50.0, 5), (6, 'east', NULL, 6)"
)


@pytest.fixture
def sales(ip):  # noqa: F811
    cell(ip, SALES)
    return ip


def _layers(spec: dict) -> list[dict]:
    return spec.get("layer", [spec])


def _values(spec: dict) -> list[dict]:
    return _layers(spec)[0]["data"]["values"] if "layer" in spec else spec["data"]["values"]


def test_a_bar_chart_draws_the_rows_of_the_result(sales):
    chart = cell(
        sales,
        "SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region",
        "--chart bar --x region --y total",
    )
    assert isinstance(chart, charts.Chart)
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["field"] == "region"
    assert spec["encoding"]["y"]["field"] == "total"
    assert _values(spec) == [
        {"region": "east", "total": None},
        {"region": "north", "total": 30.0},
        {"region": "south", "total": 120.0},
    ]


def test_the_bundle_holds_the_vegalite_spec_and_a_png(sales):
    chart = line(sales, "--chart line --x id --y amount SELECT id, amount FROM sales ORDER BY id")
    bundle = chart._repr_mimebundle_()
    assert bundle[charts.VEGALITE_MIME]["$schema"].startswith(
        "https://vega.github.io/schema/vega-lite/v5"
    )
    json.dumps(bundle[charts.VEGALITE_MIME])  # saved in the notebook as JSON
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    assert "line" in bundle["text/plain"]


def test_hist_bins_are_counted_by_the_engine(sales, monkeypatch):
    seen: list[str] = []
    real = Engine.execute

    def spy(self, sql, *args, **kwargs):
        seen.append(sql)
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(Engine, "execute", spy)
    chart = cell(sales, "SELECT * FROM sales", "--chart hist --x amount")
    # The query ran only wrapped: as a column probe and inside the binning SQL.
    assert all("SELECT * FROM sales" in s and s != "SELECT * FROM sales" for s in seen)
    assert any("GROUP BY" in s and "floor" in s for s in seen)
    rows = chart.data.to_pylist()
    assert sum(r["n"] for r in rows) == 5  # the NULL amount is not counted
    assert (rows[0]["lo"], rows[0]["hi"]) == (10.0, 50.0)
    bars = _values(chart.to_dict())
    assert bars[0]["start"] == 10.0 and bars[-1]["end"] == pytest.approx(50.0)


def test_hist_of_ten_thousand_rows_brings_back_only_the_bins(ip):  # noqa: F811
    cell(ip, "CREATE TABLE big (id BIGINT PRIMARY KEY, v DOUBLE)")
    line(ip, "INSERT INTO big (id, v) SELECT value, value % 100 FROM range(0, 10000)")
    chart = line(ip, "--chart hist --x v SELECT v FROM big")
    assert chart.data.num_rows == charts.BINS
    assert sum(chart.data.column("n").to_pylist()) == 10000


def test_box_quartiles_per_category_come_from_the_engine(sales):
    chart = cell(sales, "SELECT region, amount FROM sales", "--chart box --x region --y amount")
    rows = {r["category"]: r for r in chart.data.to_pylist()}
    assert set(rows) == {"north", "south"}  # east has only a NULL amount
    assert (rows["south"]["lower"], rows["south"]["upper"], rows["south"]["n"]) == (30.0, 50.0, 3)
    assert rows["south"]["median"] == pytest.approx(40.0)
    assert len(chart.to_dict()["layer"]) == 3  # whisker, box, median tick


def test_a_bar_without_y_counts_rows_per_category_in_the_engine(sales):
    chart = line(sales, "--chart bar --x region SELECT * FROM sales")
    assert chart.data.to_pylist() == [
        {"category": "east", "n": 1},
        {"category": "north", "n": 2},
        {"category": "south", "n": 3},
    ]


def test_a_colour_column_splits_the_bins(sales):
    chart = line(sales, "--chart hist --x qty --color region SELECT * FROM sales")
    by_colour: dict[str, int] = {}
    for r in chart.data.to_pylist():
        by_colour[r["_c"]] = by_colour.get(r["_c"], 0) + r["n"]
    assert by_colour == {"east": 1, "north": 2, "south": 3}
    assert chart.to_dict()["encoding"]["color"]["title"] == "region"


def test_parameters_bind_inside_the_wrapped_query(sales):
    sales.user_ns["floor_amount"] = 25
    chart = line(
        sales, "--chart hist --x amount SELECT amount FROM sales WHERE amount > :floor_amount"
    )
    assert sum(chart.data.column("n").to_pylist()) == 3


def test_earlier_statements_of_the_cell_run_first(ip):  # noqa: F811
    chart = cell(ip, SALES + ";\nSELECT qty FROM sales", "--chart hist --x qty")
    assert sum(chart.data.column("n").to_pylist()) == 6


def test_an_error_in_the_query_points_at_the_cell_not_at_the_generated_sql(sales):
    with pytest.raises(KalamCellError) as caught:
        cell(sales, "SELECT amount\nFROM nope", "--chart hist --x amount")
    assert (caught.value.position.line, caught.value.position.column) == (3, 6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("--chart pie --x region", "unknown chart kind"),
        ("--chart hist --x nope", "no column 'nope'"),
        ("--chart hist --x region", "not a number"),
        ("--chart line --x id", "needs --y"),
        ("--x id", "add --chart"),
        ("--chart bar --x region --explain", "does not combine"),
    ],
)
def test_chart_mistakes_are_usage_errors(sales, options, message):
    with pytest.raises(UsageError, match=message):
        cell(sales, "SELECT * FROM sales", options)


def test_a_chart_needs_a_query_last(sales):
    with pytest.raises(UsageError, match="must be a SELECT"):
        cell(sales, "DELETE FROM sales WHERE id = 1", "--chart bar --x id --y qty")


def test_o_keeps_the_charted_data(sales):
    cell(sales, "SELECT * FROM sales", "--chart bar --x region -o counts")
    assert sales.user_ns["counts"]["n"].tolist() == [1, 2, 3]


def test_result_chart_aggregates_in_memory_like_the_engine(sales):
    res = line(sales, "SELECT * FROM sales")
    hist = res.chart("hist", x="amount")
    engine_hist = line(sales, "--chart hist --x amount SELECT * FROM sales")
    assert hist.data.to_pylist() == engine_hist.data.to_pylist()
    box = res.chart("box", x="region", y="amount")
    assert [r["category"] for r in box.data.to_pylist()] == ["north", "south"]
    scatter = res.chart("scatter", x="qty", y="amount", color="region")
    assert scatter.to_dict()["mark"]["type"] == "point"


def test_more_rows_than_a_chart_draws_are_cut_with_a_note(ip):  # noqa: F811
    chart = line(
        ip,
        f"--chart scatter --x value --y value SELECT value FROM range(0, {charts.MAX_POINTS + 7})",
    )
    assert chart.data.num_rows == charts.MAX_POINTS
    assert f"first {charts.MAX_POINTS:,} of {charts.MAX_POINTS + 7:,} rows" in chart.title


def test_the_spec_is_the_same_on_every_run(sales):
    first = line(sales, "--chart hist --x amount SELECT * FROM sales").to_dict()
    second = line(sales, "--chart hist --x amount SELECT * FROM sales").to_dict()
    assert first == second


def test_a_hist_of_no_rows_is_an_empty_chart(sales):
    chart = line(sales, "--chart hist --x amount --color region SELECT * FROM sales WHERE id > 99")
    assert chart.data.num_rows == 0
    assert chart.to_dict()["data"]["values"] == []


def test_a_hist_of_one_value_puts_it_in_the_first_bin(sales):
    chart = line(sales, "--chart hist --x qty SELECT * FROM sales WHERE id = 3")
    assert chart.data.to_pylist() == [{"bin": 0, "n": 1, "lo": 3.0, "hi": 3.0}]
