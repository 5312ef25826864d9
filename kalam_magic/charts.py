"""Charts of query results: ``%kalam --chart KIND --x COL [--y COL] [--color COL]``
and ``CellResult.chart(...)``.

Two steps, kept apart: *data* (what is drawn) and *drawing* (a Vega-Lite
spec built with Altair). For ``hist``, ``box`` and a ``bar`` without ``--y``
the data is an aggregate: the magic asks the engine for it with SQL that
wraps the cell's query as a subquery (the query text itself is kept as
written, on lines of its own, so its error positions stay right), so ten
million rows become twenty bins before anything reaches the kernel.
``CellResult.chart`` aggregates a result already in the kernel with
pyarrow instead. ``bar``, ``line`` and ``scatter`` draw the result's rows
(at most ``MAX_POINTS``).

A ``Chart`` displays as the Vega-Lite spec (rendered natively by JupyterLab,
VS Code and others) plus a PNG made by vl-convert, so a saved notebook shows
the chart without a kernel and a viewer without Vega still sees an image.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("bar", "line", "scatter", "hist", "box")
#: Rows of a result drawn point by point; more are cut with a note in the title.
MAX_POINTS = 5000
BINS = 20
WIDTH, HEIGHT = 480, 260
VEGALITE_MIME = "application/vnd.vegalite.v5+json"


class ChartError(ValueError):
    """A chart that cannot be drawn from this result as asked (shown as a usage error)."""


@dataclass(frozen=True)
class ChartSpec:
    """What to draw: the kind and the columns of the result it uses."""

    kind: str
    x: str
    y: str | None = None
    color: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ChartError(f"unknown chart kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not self.x:
            raise ChartError(f"a {self.kind} chart needs --x COLUMN")
        if self.kind in ("line", "scatter") and not self.y:
            raise ChartError(f"a {self.kind} chart needs --y COLUMN as well as --x")
        if self.kind == "hist" and self.y:
            raise ChartError("a hist chart counts the values of --x; it takes no --y")

    @property
    def aggregated(self) -> bool:
        """Whether the engine computes what is drawn (bins, quartiles, counts)."""
        return self.kind in ("hist", "box") or (self.kind == "bar" and self.y is None)

    def columns(self) -> list[str]:
        return [c for c in (self.x, self.y, self.color) if c]


# ---------------------------------------------------------------- aggregate SQL


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def aggregate_sql(spec: ChartSpec, query: str) -> tuple[str, int]:
    """SQL computing the chart's data from ``query`` (kept verbatim as a subquery),
    and the number of lines written above the query (to move error positions back).
    """
    x, color = _quote(spec.x), _quote(spec.color) if spec.color else None
    pick_color = f", {color} AS _c" if color else ""
    if spec.kind == "hist":
        # The second of two passes (see hist_range_sql): the range is bound as
        # parameters, so each pass is one plain scan (a CTE joined to its own
        # min/max took 30x longer on 10M rows).
        head = (
            f"SELECT LEAST(CAST(floor((CAST({x} AS DOUBLE) - :{LO_PARAM}) / :{WIDTH_PARAM}) AS BIGINT), "
            f"{BINS - 1}) AS bin{pick_color}, count(*) AS n FROM (\n",
            f"\n) AS _kalam_query WHERE {x} IS NOT NULL GROUP BY 1{', 2' if color else ''} "
            f"ORDER BY 1{', 2' if color else ''}",
        )
    elif spec.kind == "box":
        # One box per --x category when --y is given, else one box of --x.
        value = _quote(spec.y) if spec.y else x
        category = f", {x} AS _c" if spec.y else ""
        quart = "approx_percentile_cont(_v, {})"
        head = (
            f"WITH _q AS (SELECT CAST({value} AS DOUBLE) AS _v{category} FROM (\n",
            f"\n) AS _kalam_query WHERE {value} IS NOT NULL)\n"
            f"SELECT {'_c AS category, ' if spec.y else ''}min(_v) AS lower, "
            f"{quart.format(0.25)} AS q1, {quart.format(0.5)} AS median, "
            f"{quart.format(0.75)} AS q3, max(_v) AS upper, count(*) AS n FROM _q"
            + (" GROUP BY 1 ORDER BY 1" if spec.y else ""),
        )
    else:  # bar without --y: rows per category
        head = (
            f"SELECT {x} AS category{', ' + color + ' AS _c' if color else ''}, count(*) AS n "
            "FROM (\n",
            f"\n) AS _kalam_query GROUP BY 1{', 2' if color else ''} ORDER BY 1"
            f"{', 2' if color else ''}",
        )
    before, after = head
    return before + query + after, before.count("\n")


#: Parameter names of the histogram range in :func:`aggregate_sql`.
LO_PARAM, WIDTH_PARAM = "kalam_chart_lo", "kalam_chart_width"


def hist_range_sql(spec: ChartSpec, query: str) -> tuple[str, int]:
    """The first pass of a histogram: min and max of ``--x`` over ``query``."""
    x = _quote(spec.x)
    before = f"SELECT min(CAST({x} AS DOUBLE)) AS lo, max(CAST({x} AS DOUBLE)) AS hi FROM (\n"
    return before + query + f"\n) AS _kalam_query WHERE {x} IS NOT NULL", 1


def hist_params(lo: float, hi: float) -> dict[str, float]:
    """The bound range of the second pass: bins of equal width from ``lo`` to ``hi``."""
    return {LO_PARAM: lo, WIDTH_PARAM: (hi - lo) / BINS if hi > lo else 1.0}


# ---------------------------------------------------------------- in-kernel aggregates


def _values(table: pa.Table, name: str) -> pa.ChunkedArray:
    col = table.column(name)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
        raise ChartError(f"{name} is not numeric; a hist or box chart needs numbers")
    return col.cast(pa.float64())


def aggregate_table(spec: ChartSpec, table: pa.Table) -> pa.Table:
    """The same aggregate as :func:`aggregate_sql`, computed from a result in memory."""
    check_columns(spec, table.schema)
    if spec.kind == "hist":
        v = _values(table, spec.x)
        keep = pc.is_valid(v)
        v = pc.filter(v, keep)
        colors = pc.filter(table.column(spec.color), keep).to_pylist() if spec.color else None
        vals = v.to_pylist()
        if not vals:
            return pa.table({"bin": pa.array([], pa.int64()), "n": pa.array([], pa.int64())})
        lo, hi = min(vals), max(vals)
        width = (hi - lo) / BINS if hi > lo else 1.0
        counts: dict[tuple[int, Any], int] = {}
        for i, value in enumerate(vals):
            b = min(int(math.floor((value - lo) / width)), BINS - 1)
            key = (b, colors[i] if colors is not None else None)
            counts[key] = counts.get(key, 0) + 1
        keys = sorted(counts, key=lambda k: (k[0], str(k[1])))
        data: dict[str, Any] = {"bin": [k[0] for k in keys]}
        if spec.color:
            data["_c"] = [k[1] for k in keys]
        data |= {"n": [counts[k] for k in keys], "lo": [lo] * len(keys), "hi": [hi] * len(keys)}
        return pa.table(data)
    if spec.kind == "box":
        value = spec.y or spec.x
        v = _values(table, value)
        groups: dict[Any, list[float]] = {}
        cats = table.column(spec.x).to_pylist() if spec.y else [None] * len(v)
        for cat, val in zip(cats, v.to_pylist(), strict=True):
            if val is not None:
                groups.setdefault(cat, []).append(val)
        rows = []
        for cat in sorted(groups, key=str):
            arr = pa.array(groups[cat])
            q = pc.quantile(arr, q=[0.25, 0.5, 0.75]).to_pylist()
            row = {"lower": min(groups[cat]), "q1": q[0], "median": q[1], "q3": q[2]}
            row |= {"upper": max(groups[cat]), "n": len(groups[cat])}
            rows.append({"category": cat, **row} if spec.y else row)
        return pa.Table.from_pylist(rows)
    # bar without --y
    counts2: dict[tuple[Any, Any], int] = {}
    xs = table.column(spec.x).to_pylist()
    cs = table.column(spec.color).to_pylist() if spec.color else [None] * len(xs)
    for xv, cv in zip(xs, cs, strict=True):
        counts2[(xv, cv)] = counts2.get((xv, cv), 0) + 1
    keys2 = sorted(counts2, key=lambda k: (str(k[0]), str(k[1])))
    data2: dict[str, Any] = {"category": [k[0] for k in keys2]}
    if spec.color:
        data2["_c"] = [k[1] for k in keys2]
    data2["n"] = [counts2[k] for k in keys2]
    return pa.table(data2)


def check_columns(spec: ChartSpec, schema: pa.Schema) -> None:
    """Every column the chart names is in the result (a clear error otherwise)."""
    names = schema.names
    for col in spec.columns():
        if col not in names:
            raise ChartError(
                f"the result has no column {col!r}; its columns are {', '.join(names)}"
            )
    if spec.kind in ("hist", "box"):
        value = spec.y if spec.kind == "box" and spec.y else spec.x
        t = schema.field(value).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
            from kalam_magic.render import sql_type_name

            raise ChartError(
                f"{value} is {sql_type_name(t)}, not a number; a {spec.kind} chart needs numbers "
                "(use bar for categories)"
            )


# ---------------------------------------------------------------- drawing


def _kind_of(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "quantitative"
    if pa.types.is_temporal(dtype):
        return "temporal"
    return "nominal"


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (dates and times as ISO text, as Vega-Lite reads them)."""
    out = []
    for row in table.to_pylist():
        out.append({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()})
    return out


def build(spec: ChartSpec, data: pa.Table, *, total_rows: int | None = None) -> Chart:
    """The chart of ``data``: a result's rows, or the aggregate the spec asks for."""
    import altair as alt

    note = ""
    if spec.aggregated:
        if spec.kind == "hist":
            chart = _hist(alt, spec, data)
        elif spec.kind == "box":
            chart = _box(alt, spec, data)
        else:
            chart = _count_bar(alt, spec, data)
    else:
        check_columns(spec, data.schema)
        n = data.num_rows if total_rows is None else total_rows
        if data.num_rows > MAX_POINTS:
            data = data.slice(0, MAX_POINTS)
            note = f" (first {MAX_POINTS:,} of {n:,} rows)"
        chart = _points(alt, spec, data)
    title = _title(spec) + note
    chart = chart.properties(width=WIDTH, height=HEIGHT, title=title)
    return Chart(chart.to_dict(), spec=spec, data=data, title=title)


def _title(spec: ChartSpec) -> str:
    if spec.kind == "hist":
        return f"distribution of {spec.x}"
    if spec.kind == "box":
        return f"{spec.y} by {spec.x}" if spec.y else f"spread of {spec.x}"
    if spec.y is None:
        return f"rows per {spec.x}"
    return f"{spec.y} by {spec.x}"


def _color(alt: Any, spec: ChartSpec, field: str = "_c") -> dict[str, Any]:
    return {"color": alt.Color(f"{field}:N", title=spec.color)} if spec.color else {}


def _points(alt: Any, spec: ChartSpec, data: pa.Table) -> Any:
    x_type = _kind_of(data.schema.field(spec.x).type)
    if spec.kind == "bar" and x_type == "quantitative":
        x_type = "ordinal"
    enc: dict[str, Any] = {"x": alt.X(f"{spec.x}:{x_type[0].upper()}", title=spec.x)}
    if spec.y:
        enc["y"] = alt.Y(f"{spec.y}:Q", title=spec.y)
    if spec.color:
        enc["color"] = alt.Color(f"{spec.color}:N", title=spec.color)
    base = alt.Chart(alt.Data(values=_rows(data)))
    mark = {
        "bar": base.mark_bar(),
        "line": base.mark_line(point=True),
        "scatter": base.mark_point(),
    }
    return mark[spec.kind].encode(**enc)


def _hist(alt: Any, spec: ChartSpec, data: pa.Table) -> Any:
    rows = []
    for row in data.to_pylist():
        lo, hi = row["lo"], row["hi"]
        width = (hi - lo) / BINS if hi > lo else 1.0
        start = lo + row["bin"] * width
        rows.append({"start": start, "end": start + width, "n": row["n"], "_c": row.get("_c")})
    base = alt.Chart(alt.Data(values=rows)).mark_bar()
    return base.encode(
        x=alt.X("start:Q", title=spec.x, bin="binned"),
        x2="end:Q",
        y=alt.Y("n:Q", title="rows", stack=True),
        **_color(alt, spec),
    )


def _box(alt: Any, spec: ChartSpec, data: pa.Table) -> Any:
    rows = _rows(data)
    base = alt.Chart(alt.Data(values=rows))
    axis = {"x": alt.X("category:N", title=spec.x)} if spec.y else {}
    title = spec.y or spec.x
    whisker = base.mark_rule().encode(
        y=alt.Y("lower:Q", title=title, scale=alt.Scale(zero=False)), y2="upper:Q", **axis
    )
    box = base.mark_bar(size=28).encode(y="q1:Q", y2="q3:Q", **axis)
    median = base.mark_tick(color="white", size=28, thickness=2).encode(y="median:Q", **axis)
    return alt.layer(whisker, box, median)


def _count_bar(alt: Any, spec: ChartSpec, data: pa.Table) -> Any:
    x_type = "O" if _kind_of(data.schema.field("category").type) != "temporal" else "T"
    return (
        alt.Chart(alt.Data(values=_rows(data)))
        .mark_bar()
        .encode(
            x=alt.X(f"category:{x_type}", title=spec.x),
            y=alt.Y("n:Q", title="rows"),
            **_color(alt, spec),
        )
    )


def png_of(vegalite: dict[str, Any]) -> bytes | None:
    """A PNG of the spec, or None when vl-convert is not installed."""
    try:
        import vl_convert as vlc
    except ImportError:
        return None
    return bytes(vlc.vegalite_to_png(vegalite, scale=1))


class Chart:
    """A chart as displayed: the Vega-Lite spec, a PNG of it, and a text line."""

    def __init__(
        self, vegalite: dict[str, Any], *, spec: ChartSpec, data: pa.Table, title: str
    ) -> None:
        self.vegalite = vegalite
        self.spec = spec
        #: What is drawn: the result's rows, or the engine's aggregate.
        self.data = data
        self.title = title
        self._png: bytes | None = None

    def png(self) -> bytes | None:
        if self._png is None:
            self._png = png_of(self.vegalite)
        return self._png

    def to_dict(self) -> dict[str, Any]:
        return self.vegalite

    def __repr__(self) -> str:
        return f"<Chart {self.spec.kind}: {self.title}, {self.data.num_rows} data row(s)>"

    def _repr_mimebundle_(
        self, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> dict[str, Any]:
        bundle: dict[str, Any] = {VEGALITE_MIME: self.vegalite, "text/plain": repr(self)}
        png = self.png()
        if png is not None:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        return bundle
