"""Segment pruning: exact counts for each filter shape, and soundness properties.

Soundness (never prune a segment holding a matching row) is checked two ways:
against DataFusion itself on random data and random SQL predicates, and on
the pure-Python predicate form against pyarrow filtering of the actual rows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from datafusion import SessionContext, col, lit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.exec.pruning import (
    UNKNOWN,
    And,
    BoolColumn,
    ColumnRef,
    Compare,
    Const,
    DistinctFrom,
    InSet,
    IsNull,
    Not,
    Or,
    Predicate,
    Truth,
    Value,
    predicate_from_expr,
    prune_segments,
    prune_with_predicate,
    scan_filters,
    surviving_segments,
)
from engine.storage.cold import SegmentEntry, compute_column_stats

# The scan's columns, their stable ids and types; "seg" is not a stored column.
COLUMNS: dict[str, tuple[int, pa.DataType]] = {
    "i": (1, pa.int64()),
    "j": (2, pa.int32()),
    "f": (3, pa.float64()),
    "g": (4, pa.float32()),
    "s": (5, pa.string()),
    "b": (6, pa.bool_()),
    "ts": (7, pa.timestamp("us")),
    "d": (8, pa.date32()),
    "bin": (9, pa.binary()),
}
COLUMN_IDS = {name: cid for name, (cid, _) in COLUMNS.items()}
SCHEMA = pa.schema(
    [(name, typ) for name, (_, typ) in COLUMNS.items()]
    + [("_seq", pa.int64()), ("_deleted", pa.bool_()), ("seg", pa.int32())]
)
EPOCH = dt.datetime(2024, 1, 1)


def make_entry(segment_id: int, rows: list[dict[str, Any]], first_seq: int) -> SegmentEntry:
    """A manifest entry for ``rows`` (no file needed: pruning reads only the entry)."""
    physical = pa.table(
        {f"c{cid}": pa.array([r.get(n) for r in rows], typ) for n, (cid, typ) in COLUMNS.items()}
    )
    return SegmentEntry(
        id=segment_id,
        path=f"batch-{segment_id}.parquet",
        row_count=len(rows),
        size_bytes=1,
        created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        min_seq=first_seq,
        max_seq=first_seq + max(len(rows) - 1, 0),
        schema_version=1,
        checksum="sha256:" + "0" * 64,
        column_stats=compute_column_stats(physical),
    )


def logical_table(segments: list[list[dict[str, Any]]]) -> pa.Table:
    rows = []
    seq = 1
    for n, seg_rows in enumerate(segments, start=1):
        for r in seg_rows:
            rows.append({**r, "_seq": seq, "_deleted": False, "seg": n})
            seq += 1
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def entries_for(segments: list[list[dict[str, Any]]]) -> list[SegmentEntry]:
    out, seq = [], 1
    for n, seg_rows in enumerate(segments, start=1):
        out.append(make_entry(n, seg_rows, seq))
        seq += len(seg_rows)
    return out


def context(table: pa.Table, *, dataset: bool = False) -> SessionContext:
    ctx = SessionContext()
    if dataset:
        ctx.register_dataset("t", ds.dataset(table))
    else:
        ctx.register_record_batches(
            "t", [table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]]
        )
    return ctx


def prune_sql(
    ctx: SessionContext, where: str, entries: list[SegmentEntry]
) -> tuple[list[int], int]:
    scans = scan_filters(ctx.sql(f"SELECT * FROM t WHERE {where}").optimized_logical_plan())
    if not scans:  # the optimizer proved the predicate false: nothing is read at all
        return [], len(entries)
    (scan,) = scans
    kept, pruned = prune_segments(list(scan.filters), entries, COLUMN_IDS)
    return [e.id for e in kept], pruned


# --------------------------------------------------------------------------- fixed data

# Four segments of ten rows each with disjoint id ranges and distinct other values.
FIXED = [
    [
        {
            "i": seg * 10 + k,
            "j": seg * 10 + k,
            "f": seg + k / 10,
            "g": float(seg),
            "s": f"{'abcd'[seg]}{k}",
            "b": seg % 2 == 0,
            "ts": EPOCH + dt.timedelta(days=seg, hours=k),
            "d": (EPOCH + dt.timedelta(days=seg)).date(),
            "bin": bytes([seg, k]),
        }
        for k in range(10)
    ]
    for seg in range(4)
]
FIXED[3][0] = {**FIXED[3][0], "s": None, "f": None}  # segment 4 alone has nulls


@pytest.fixture(scope="module")
def fixed() -> tuple[SessionContext, list[SegmentEntry]]:
    return context(logical_table(FIXED)), entries_for(FIXED)


@pytest.mark.parametrize(
    ("where", "kept"),
    [
        ("i = 25", [3]),
        ("25 = i", [3]),
        ("i != 25", [1, 2, 3, 4]),
        ("NOT (i = 25)", [1, 2, 3, 4]),
        ("i < 10", [1]),
        ("i <= 10", [1, 2]),
        ("i > 29", [4]),
        ("i >= 29", [3, 4]),
        ("30 <= i", [4]),
        ("i BETWEEN 12 AND 21", [2, 3]),
        ("i NOT BETWEEN 5 AND 34", [1, 4]),
        ("i IN (3, 35)", [1, 4]),
        ("i IN (3, 35, 100, 101, 102)", [1, 4]),
        ("i NOT IN (1, 2)", [1, 2, 3, 4]),
        ("i = 3 OR i = 13", [1, 2]),
        ("i > 5 AND i < 15", [1, 2]),
        ("NOT (i > 5 AND i < 15)", [1, 2, 3, 4]),
        ("NOT (i >= 10)", [1]),
        ("i = 1000", []),
        ("s IS NULL", [4]),
        ("f IS NULL", [4]),
        ("s IS NOT NULL", [1, 2, 3, 4]),
        ("i IS NULL", []),
        ("s = 'c5'", [3]),
        ("s > 'c'", [3, 4]),
        ("s LIKE 'c%'", [1, 2, 3, 4]),  # LIKE is not understood: keep everything
        ("j > 3000000000", []),  # CAST(j AS Int64)
        ("j < 10.5", [1, 2]),  # CAST(j AS Float64)
        ("g > 1.5", [3, 4]),  # CAST(g AS Float64)
        ("f >= 3.5", [4]),
        ("b", [1, 3]),
        ("NOT b", [2, 4]),
        ("b IS TRUE", [1, 3]),
        ("b IS NOT TRUE", [2, 4]),
        ("b IS FALSE", [2, 4]),
        ("ts >= '2024-01-04'", [4]),
        ("ts < TIMESTAMP '2024-01-02 00:00:00'", [1]),
        ("ts > DATE '2024-01-03'", [3, 4]),
        ("d = DATE '2024-01-03'", [3]),
        ("d > TIMESTAMP '2024-01-02 12:00:00'", [3, 4]),  # CAST(d AS Timestamp(ns))
        ("d >= TIMESTAMP '2024-01-03 00:00:00'", [3, 4]),
        ("d = TIMESTAMP '2024-01-03 00:00:00'", [3]),
        ("bin = X'0205'", [3]),
        ("_seq > 35", [4]),
        ("i IS NOT DISTINCT FROM 7", [1]),
        ("i IS DISTINCT FROM 7", [1, 2, 3, 4]),
        ("i + 1 = 5", [1, 2, 3, 4]),  # arithmetic on the column: not understood
        ("seg = 1", [1, 2, 3, 4]),  # a column without statistics
        ("i = 25 AND s LIKE 'x%'", [3]),  # one understood conjunct is enough
        ("i = 25 OR s LIKE 'x%'", [1, 2, 3, 4]),
    ],
)
def test_sql_filter_prunes_exactly_the_segments_that_cannot_match(fixed, where, kept):
    ctx, entries = fixed
    ids, pruned = prune_sql(ctx, where, entries)
    assert ids == kept
    assert pruned == 4 - len(kept)
    # and the kept segments include every one that really matches
    truth = ctx.sql(f"SELECT DISTINCT seg FROM t WHERE {where}").to_pydict()["seg"]
    assert set(truth) <= set(ids)


def test_pushed_down_dataset_filters_prune_the_same(fixed):
    _, entries = fixed
    ctx = context(logical_table(FIXED), dataset=True)
    (scan,) = scan_filters(
        ctx.sql("SELECT * FROM t WHERE i = 25 AND s = 'c5'").optimized_logical_plan()
    )
    assert scan.filters, "a pyarrow dataset gets the filters pushed into the TableScan"
    kept, pruned = prune_segments(list(scan.filters), entries, COLUMN_IDS)
    assert [e.id for e in kept] == [3] and pruned == 3


def test_no_filters_keeps_every_segment(fixed):
    _, entries = fixed
    assert prune_segments([], entries, COLUMN_IDS) == (entries, 0)


def test_unoptimized_between_and_literal_casts_are_understood(fixed):
    ctx, entries = fixed
    between = col("i").between(lit(12), lit(21))
    assert [e.id for e in prune_segments([between], entries, COLUMN_IDS)[0]] == [2, 3]
    not_between = col("i").between(lit(12), lit(21), negated=True)
    assert [e.id for e in prune_segments([not_between], entries, COLUMN_IDS)[0]] == [1, 2, 3, 4]
    cast_lit = col("i") == lit(25).cast(pa.int32())
    assert isinstance(predicate_from_expr(cast_lit), Compare)
    assert [e.id for e in prune_segments([cast_lit], entries, COLUMN_IDS)[0]] == [3]


def test_scan_filters_reads_a_filter_sitting_on_a_scan_without_pushdown(fixed):
    ctx, _ = fixed
    (scan,) = scan_filters(
        ctx.sql("SELECT i FROM t WHERE i = 1 AND s = 'x'").optimized_logical_plan()
    )
    assert scan.table_name == "t"
    assert len(scan.filters) == 2
    assert "i" in scan.projection


def test_scan_filters_ignores_a_filter_applied_after_a_scan_limit(fixed):
    ctx, _ = fixed
    plan = ctx.sql("SELECT * FROM (SELECT * FROM t LIMIT 5) WHERE i = 1").optimized_logical_plan()
    (scan,) = scan_filters(plan)
    assert scan.filters == ()  # pruning before the limit would change which rows it picks


def test_scan_filters_reports_each_side_of_a_join(fixed):
    ctx, _ = fixed
    plan = ctx.sql(
        "SELECT * FROM t a JOIN t b ON a.i = b.j WHERE a.i = 3 AND b.s = 'q'"
    ).optimized_logical_plan()
    scans = scan_filters(plan)
    assert len(scans) == 2
    assert all(s.filters for s in scans)


def test_a_scan_inside_a_subquery_expression_is_reported_without_filters(fixed):
    ctx, entries = fixed
    plan = ctx.sql(
        "SELECT * FROM t WHERE i = 3 AND f > (SELECT max(f) FROM t WHERE i = 35)"
    ).optimized_logical_plan()
    scans = scan_filters(plan)
    assert len(scans) == 2 and {s.table_name for s in scans} == {"t"}
    assert any(s.filters == () for s in scans)  # the subquery's scan: not reachable, keep all
    kept, pruned = surviving_segments(scans, "t", entries, COLUMN_IDS)
    assert (len(kept), pruned) == (4, 0)


def test_one_registration_for_two_scans_keeps_the_union_of_survivors(fixed):
    ctx, entries = fixed
    plan = ctx.sql(
        "SELECT * FROM t a JOIN t b ON a.s = b.s WHERE a.i = 3 AND b.i = 35"
    ).optimized_logical_plan()
    kept, pruned = surviving_segments(scan_filters(plan), "t", entries, COLUMN_IDS)
    assert [e.id for e in kept] == [1, 4] and pruned == 2
    # a table name no scan carries is never emptied by accident
    assert surviving_segments(scan_filters(plan), "default.t", entries, COLUMN_IDS)[1] == 0


def test_stats_of_a_column_added_after_the_segment_are_missing_so_it_is_kept(fixed):
    _, entries = fixed
    ids = {**COLUMN_IDS, "newcol": 99}
    kept, pruned = prune_with_predicate(
        Compare(ColumnRef("newcol"), "=", Value("num", 1)), entries, ids
    )
    assert pruned == 0 and len(kept) == 4


def test_empty_segment_never_matches():
    entry = make_entry(1, [], 1)
    assert prune_with_predicate(Const(True), [entry], COLUMN_IDS) == ([], 1)


def test_nan_rows_match_greater_than_anything():
    # DataFusion orders NaN above every float, so x > 1e300 matches a NaN row.
    rows = [{"f": math.nan}, {"f": 1.0}]
    ctx, entries = context(logical_table([rows])), entries_for([rows])
    ids, _ = prune_sql(ctx, "f > 1e300", entries)
    assert ctx.sql("SELECT count(*) AS n FROM t WHERE f > 1e300").to_pydict()["n"] == [1]
    assert ids == [1]


@pytest.mark.parametrize(
    ("rows", "where", "kept"),
    [
        ([{"s": "m" * 100}], f"s = '{'m' * 100}'", [1]),  # max cut to 64 chars must still bound it
        ([{"s": "m" * 100}], f"s >= '{'m' * 100}'", [1]),
        ([{"s": "m" * 100}], "s > 'n'", []),
        ([{"s": "m" * 100}], "s < 'm'", []),
        ([{"s": "\U0010ffff" * 70}], f"s = '{chr(0x10FFFF) * 70}'", [1]),
        ([{"bin": b"\xff" * 70}], f"bin = X'{'ff' * 70}'", [1]),
        ([{"bin": b"\x01" * 70}], f"bin = X'{'01' * 70}'", [1]),
        ([{"bin": b"\x01" * 70}], "bin > X'02'", []),
    ],
)
def test_long_strings_and_binaries_keep_sound_bounds(rows, where, kept):
    ctx, entries = context(logical_table([rows])), entries_for([rows])
    assert prune_sql(ctx, where, entries)[0] == kept
    assert set(ctx.sql(f"SELECT DISTINCT seg FROM t WHERE {where}").to_pydict()["seg"]) <= set(kept)


NULL_I = [{"i": None, "s": "a"}, {"i": None, "s": "b"}]  # i is all NULL, s never NULL
I3, SA = (
    Compare(ColumnRef("i"), "=", Value("num", 3)),
    Compare(ColumnRef("s"), "=", Value("str", "a")),
)


@pytest.mark.parametrize(
    ("predicate", "kept"),
    [
        (I3, False),  # NULL = 3 is never true
        (Not(I3), False),
        (Truth(I3, "unknown"), True),
        (Truth(Not(I3), "unknown"), True),  # NOT NULL is NULL
        (Truth(Not(I3), "not true"), True),
        (Truth(I3, "true"), False),
        (Truth(And((I3, SA)), "unknown"), True),  # NULL AND TRUE is NULL
        (Truth(Or((I3, SA)), "unknown"), True),  # NULL OR FALSE is NULL
        (Or((I3, SA)), True),
        (And((I3, SA)), False),
        (Truth(And((I3, Const(False))), "unknown"), False),  # NULL AND FALSE is FALSE
        (Truth(Or((I3, Const(True))), "unknown"), False),  # NULL OR TRUE is TRUE
        (IsNull(ColumnRef("i")), True),
        (IsNull(ColumnRef("i"), negated=True), False),
        (DistinctFrom(ColumnRef("i"), Value("num", 3)), True),
        (DistinctFrom(ColumnRef("i"), Value("num", 3), negated=True), False),
        (DistinctFrom(ColumnRef("i"), None, negated=True), True),
        (InSet(ColumnRef("i"), (Value("num", 3),), negated=True), False),
        (Compare(ColumnRef("i"), "=", None), False),
        (Truth(Compare(ColumnRef("s"), "=", None), "unknown"), True),  # s = NULL is NULL
        (Const(None), False),
    ],
)
def test_three_valued_logic_over_an_all_null_column(predicate, kept):
    entries = entries_for([NULL_I])
    assert bool(prune_with_predicate(predicate, entries, COLUMN_IDS)[0]) is kept


# --------------------------------------------------------------------------- random SQL vs DataFusion

INTS = st.sampled_from([-(2**40), -3, -1, 0, 1, 2, 3, 7, 2**40, 2**53 + 1])
FLOATS = st.sampled_from([-math.inf, -2.5, -0.0, 0.0, 0.5, 1.0, 3.0, math.inf, math.nan])
STRINGS = st.sampled_from(["", "a", "ab", "b", "ba", "é", "z" * 70, "z" * 70 + "a", "\U0010ffff"])
BYTES = st.sampled_from([b"", b"\x00", b"\x01", b"\x01\x02", b"\xff", b"\xff" * 70])
DAYS = st.integers(-3, 3)


def _value(name: str) -> st.SearchStrategy[Any]:
    if name in ("i", "j"):
        return INTS.map(lambda v: v if name == "i" else max(min(v, 2**31 - 1), -(2**31)))
    if name in ("f", "g"):
        return FLOATS
    if name == "s":
        return STRINGS
    if name == "b":
        return st.booleans()
    if name == "ts":
        return st.integers(-3, 3).map(lambda h: EPOCH + dt.timedelta(hours=h * 12))
    if name == "d":
        return DAYS.map(lambda n: (EPOCH + dt.timedelta(days=n)).date())
    return BYTES


ROW = st.fixed_dictionaries({n: st.none() | _value(n) for n in COLUMNS})
SEGMENTS = st.lists(st.lists(ROW, min_size=0, max_size=6), min_size=1, max_size=4)


def _sql_literal(name: str, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(v):
            return f"CAST('{'inf' if v > 0 else '-inf'}' AS DOUBLE)"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, bytes):
        return f"X'{v.hex()}'"
    if isinstance(v, dt.datetime):
        return f"TIMESTAMP '{v.isoformat(sep=' ')}'"
    return f"DATE '{v.isoformat()}'"


@st.composite
def literal_for(draw: st.DrawFn, name: str) -> str:
    # Cross-type literals make DataFusion cast the column (int vs float, date vs timestamp).
    if name in ("i", "j") and draw(st.booleans()):
        return _sql_literal(name, draw(FLOATS.filter(math.isfinite)))
    if name == "j" and draw(st.booleans()):
        return str(draw(st.sampled_from([3_000_000_000, -3_000_000_000])))
    if name == "d" and draw(st.booleans()):
        return _sql_literal("ts", draw(_value("ts")))
    if name == "ts" and draw(st.booleans()):
        return _sql_literal("d", draw(_value("d")))
    return _sql_literal(name, draw(_value(name)))


@st.composite
def sql_predicate(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 9 if depth < 2 else 5))
    name = draw(st.sampled_from([n for n in COLUMNS if n != "b"] + ["_seq"]))
    lit_ = str(draw(st.integers(0, 12))) if name == "_seq" else draw(literal_for(name))
    if kind <= 1:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return f"{lit_} {op} {name}" if draw(st.booleans()) else f"{name} {op} {lit_}"
    if kind == 2:
        lo, hi = draw(literal_for(name)), draw(literal_for(name))
        neg = "NOT " if draw(st.booleans()) else ""
        return f"{name} {neg}BETWEEN {lo} AND {hi}" if name != "_seq" else f"{name} > {lit_}"
    if kind == 3:
        items = [draw(literal_for(name)) for _ in range(draw(st.integers(1, 5)))]
        if name == "_seq":
            items = [str(draw(st.integers(0, 12)))]
        neg = "NOT " if draw(st.booleans()) else ""
        return f"{name} {neg}IN ({', '.join(items)})"
    if kind == 4:
        return f"{name} IS {draw(st.sampled_from(['', 'NOT ']))}NULL"
    if kind == 5:
        return draw(
            st.sampled_from(
                ["b", "NOT b", "b IS TRUE", "b IS NOT TRUE", "b IS FALSE", "b IS NOT FALSE"]
                + ["b IS UNKNOWN", "b IS NOT UNKNOWN", "b = true", "b != false"]
                + [f"{name} IS {'NOT ' if depth else ''}DISTINCT FROM {lit_}"]
            )
        )
    if kind == 6:
        return f"NOT ({draw(sql_predicate(depth + 1))})"
    if kind == 7:
        return f"({draw(sql_predicate(depth + 1))}) IS {draw(st.sampled_from(['NULL', 'NOT NULL', 'TRUE', 'NOT FALSE']))}"
    op = draw(st.sampled_from(["AND", "OR"]))
    return f"({draw(sql_predicate(depth + 1))}) {op} ({draw(sql_predicate(depth + 1))})"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments=SEGMENTS, wheres=st.lists(sql_predicate(), min_size=1, max_size=6))
def test_pruning_never_drops_a_segment_datafusion_finds_a_match_in(segments, wheres):
    ctx = context(logical_table(segments))
    entries = entries_for(segments)
    for where in wheres:
        truth = set(ctx.sql(f"SELECT DISTINCT seg FROM t WHERE {where}").to_pydict()["seg"])
        kept, pruned = prune_sql(ctx, where, entries)
        assert truth <= set(kept), f"pruned a matching segment for {where!r}"
        assert pruned == len(entries) - len(kept)


# --------------------------------------------------------------------------- pure form vs pyarrow

PURE_COLUMNS = ["i", "f", "s", "b", "d", "bin"]
_PURE_VALUES = {
    "i": INTS.map(lambda v: Value("num", v)),
    "f": FLOATS.filter(lambda v: not math.isnan(v)).map(lambda v: Value("num", v)),
    "s": STRINGS.map(lambda v: Value("str", v)),
    "b": st.booleans().map(lambda v: Value("bool", v)),
    "d": DAYS.map(lambda v: Value("date", (EPOCH.date() - dt.date(1970, 1, 1)).days + v)),
    "bin": BYTES.map(lambda v: Value("bytes", v)),
}


@st.composite
def pure_predicate(draw: st.DrawFn, depth: int = 0) -> Predicate:
    name = draw(st.sampled_from(PURE_COLUMNS))
    column = ColumnRef(name)
    kind = draw(st.integers(0, 9 if depth < 3 else 5))
    if kind <= 1:
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
        return Compare(column, op, draw(_PURE_VALUES[name]))
    if kind == 2:
        values = tuple(draw(st.lists(_PURE_VALUES[name], min_size=1, max_size=4)))
        return InSet(column, values, negated=draw(st.booleans()))
    if kind == 3:
        return IsNull(column, negated=draw(st.booleans()))
    if kind == 4:
        return BoolColumn(ColumnRef("b"))
    if kind == 5:
        return DistinctFrom(column, draw(_PURE_VALUES[name]), negated=draw(st.booleans()))
    if kind == 6:
        return Not(draw(pure_predicate(depth + 1)))
    if kind == 7:
        tests = ["true", "false", "unknown", "not true", "not false", "not unknown"]
        return Truth(draw(pure_predicate(depth + 1)), draw(st.sampled_from(tests)))
    parts = tuple(draw(st.lists(pure_predicate(depth + 1), min_size=1, max_size=3)))
    return And(parts) if kind == 8 else Or(parts)


def _pa_value(v: Value | None) -> Any:
    assert v is not None  # the generator never draws NULL literals
    if v.kind == "date":
        return pa.scalar(v.value, pa.date32())
    if v.kind == "bytes":
        return pa.scalar(v.value, pa.binary())
    return v.value


def to_pyarrow(p: Predicate) -> pc.Expression:
    """The same predicate as a pyarrow expression (Kleene logic, like SQL)."""
    if isinstance(p, Compare):
        f, v = pc.field(p.column.name), _pa_value(p.value)
        return {
            "=": f == v,
            "!=": f != v,
            "<": f < v,
            "<=": f <= v,
            ">": f > v,
            ">=": f >= v,
        }[p.op]
    if isinstance(p, InSet):
        f = pc.field(p.column.name)
        any_eq = f == _pa_value(p.values[0])
        for v in p.values[1:]:
            any_eq = any_eq | (f == _pa_value(v))
        return ~any_eq if p.negated else any_eq
    if isinstance(p, IsNull):
        e = pc.field(p.column.name).is_null()
        return ~e if p.negated else e
    if isinstance(p, BoolColumn):
        return pc.field(p.column.name)
    if isinstance(p, DistinctFrom):
        f = pc.field(p.column.name)
        same = pc.if_else(f.is_null(), False, f == _pa_value(p.value))
        return same if p.negated else ~same
    if isinstance(p, Not):
        return ~to_pyarrow(p.expr)
    if isinstance(p, Truth):
        e = to_pyarrow(p.expr)
        is_true = pc.if_else(e.is_null(), False, e)
        is_false = pc.if_else(e.is_null(), False, ~e)
        return {
            "true": is_true,
            "false": is_false,
            "unknown": e.is_null(),
            "not true": ~is_true,
            "not false": ~is_false,
            "not unknown": ~e.is_null(),
        }[p.test]
    if isinstance(p, And | Or):
        out = to_pyarrow(p.parts[0])
        for q in p.parts[1:]:
            out = (out & to_pyarrow(q)) if isinstance(p, And) else (out | to_pyarrow(q))
        return out
    raise AssertionError(p)


@settings(max_examples=600, deadline=None)
@given(segments=SEGMENTS, predicate=pure_predicate())
def test_pure_predicate_never_prunes_a_segment_with_a_matching_row(segments, predicate):
    entries = entries_for(segments)
    kept, _ = prune_with_predicate(predicate, entries, COLUMN_IDS)
    kept_ids = {e.id for e in kept}
    expr = to_pyarrow(predicate)
    for n, rows in enumerate(segments, start=1):
        table = pa.Table.from_pylist(rows, schema=SCHEMA.remove(SCHEMA.get_field_index("seg")))
        if rows and ds.dataset(table).to_table(filter=expr).num_rows:
            assert n in kept_ids, f"segment {n} has rows matching {predicate!r}"


def test_unknown_predicate_keeps_everything():
    entries = entries_for(FIXED)
    assert prune_with_predicate(UNKNOWN, entries, COLUMN_IDS)[1] == 0
    assert prune_with_predicate(Not(UNKNOWN), entries, COLUMN_IDS)[1] == 0


BIG = [
    {"i": 2**40, "ts": EPOCH, "d": EPOCH.date()},
    {"i": -(2**40), "ts": EPOCH, "d": EPOCH.date()},
]


@pytest.mark.parametrize(
    "predicate",
    [
        # CAST(i AS Int32) wraps for values outside int32: not monotonic, so not understood
        Compare(ColumnRef("i", cast="Int32"), "=", Value("num", 0)),
        Compare(ColumnRef("i", cast="Int8"), ">", Value("num", 100)),
        # a literal of another domain than the column's (days vs nanoseconds)
        Compare(ColumnRef("ts"), "<", Value("date", 0)),
        Compare(ColumnRef("i"), "=", Value("str", "x")),
        # casts that are not understood
        Compare(ColumnRef("s", cast="Int64"), "=", Value("num", 1)),
        Compare(ColumnRef("f", cast="Int64"), "=", Value("num", 1)),
    ],
)
def test_predicates_that_cannot_be_judged_keep_the_segment(predicate):
    rows = [*BIG, {"s": "7", "f": 1.0}]
    entries = entries_for([rows])
    assert prune_with_predicate(predicate, entries, COLUMN_IDS)[1] == 0


@pytest.mark.parametrize(
    ("predicate", "kept"),
    [
        (Compare(ColumnRef("ts", cast="Timestamp(s)"), "<", Value("ts", 0)), False),
        (
            Compare(
                ColumnRef("ts", cast='Timestamp(ms, "UTC")'), "=", Value("ts", 1704067200 * 10**9)
            ),
            True,
        ),
        (Compare(ColumnRef("ts", cast="Date32"), "=", Value("date", 19723)), True),  # 2024-01-01
        (Compare(ColumnRef("ts", cast="Date32"), ">", Value("date", 19723)), False),
        (Compare(ColumnRef("d", cast="Timestamp(ns)"), "=", Value("ts", 1704067200 * 10**9)), True),
        (
            Compare(
                ColumnRef("d", cast="Timestamp(Nanosecond, None)"),
                ">",
                Value("ts", 1704067200 * 10**9),
            ),
            False,
        ),
        (Compare(ColumnRef("i", cast="Float64"), ">", Value("num", 2.0**40)), False),
        (Compare(ColumnRef("i", cast="Float64"), ">=", Value("num", 2.0**40)), True),
    ],
)
def test_understood_casts_map_the_bounds(predicate, kept):
    entries = entries_for([BIG])
    assert bool(prune_with_predicate(predicate, entries, COLUMN_IDS)[0]) is kept
