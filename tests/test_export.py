"""EXPORT TABLE t TO 'path' [FORMAT parquet|delta]: a consistent snapshot of
hot and cold rows with logical column names, readable by other tools."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from engine.errors import InvalidOptionError, PermissionDeniedError, SqlParseError


def fill(eng, kind="SHARED"):
    eng.execute(f"CREATE {kind} TABLE t (id BIGINT PRIMARY KEY, v TEXT, ts TIMESTAMP, n DOUBLE)")
    users = ["alice", "bob"] if kind == "USER" else ["root"]
    for u in users:
        eng.execute(
            "INSERT INTO t VALUES (1, ?, '2024-01-01 10:00:00', 1.5), (2, 'two', NULL, NULL), "
            "(3, 'three', NULL, 3.0)",
            [u],
            user=u,
        )
    eng.flush("t")
    for u in users:
        eng.execute("UPDATE t SET v = 'one!' WHERE id = 1", user=u)  # hot over cold
        eng.execute("DELETE FROM t WHERE id = 2", user=u)  # a deleted cold row
        eng.execute("INSERT INTO t (id, v) VALUES (4, ?)", [u + "-hot"], user=u)
    return users


def rows(table):
    return sorted(table.to_pylist(), key=lambda r: r["id"])


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_export_writes_exactly_what_select_star_returns(engines, tmp_path, fmt):
    eng = engines.open(background_jobs=False)
    fill(eng)
    dest = tmp_path / ("t.parquet" if fmt == "parquet" else "t_delta")
    result = eng.execute(f"EXPORT TABLE t TO '{dest}' FORMAT {fmt}")
    assert result.rows_affected == 3 and str(dest) in result.message
    got = pq.read_table(dest) if fmt == "parquet" else DeltaTable(str(dest)).to_pyarrow_table()
    assert got.column_names == ["id", "v", "ts", "n"]
    assert rows(got) == rows(eng.execute("SELECT * FROM t").table)
    assert [r["id"] for r in rows(got)] == [1, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == [dest.name]


def test_export_defaults_to_parquet_and_polars_reads_the_delta_export(engines, tmp_path):
    pl = pytest.importorskip("polars")
    eng = engines.open(background_jobs=False)
    fill(eng)
    eng.execute(f"EXPORT TABLE t TO '{tmp_path / 'plain'}'")
    assert pq.read_table(tmp_path / "plain").num_rows == 3
    eng.execute(f"EXPORT TABLE default.t TO '{tmp_path / 'd'}' FORMAT delta")
    assert pl.read_delta(str(tmp_path / "d")).sort("id")["v"].to_list() == [
        "one!",
        "three",
        "root-hot",
    ]


def test_export_of_a_user_table_holds_only_the_callers_rows(engines, tmp_path):
    eng = engines.open(background_jobs=False)
    fill(eng, "USER")
    eng.execute("ALTER USER alice ROLE service")
    eng.execute(f"EXPORT TABLE t TO '{tmp_path / 'a.parquet'}'", user="alice")
    got = pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert {r["v"] for r in got} == {"one!", "three", "alice-hot"}


def test_export_refuses_existing_destinations_the_data_dir_and_plain_users(
    engines, tmp_path, data_dir
):
    eng = engines.open(background_jobs=False)
    fill(eng)
    taken = tmp_path / "taken.parquet"
    taken.write_bytes(b"keep me")
    with pytest.raises(InvalidOptionError, match="already exists"):
        eng.execute(f"EXPORT TABLE t TO '{taken}'")
    assert taken.read_bytes() == b"keep me"
    with pytest.raises(InvalidOptionError, match="data directory"):
        eng.execute(f"EXPORT TABLE t TO '{data_dir / 'x.parquet'}'")
    with pytest.raises(InvalidOptionError, match="does not exist"):
        eng.execute(f"EXPORT TABLE t TO '{tmp_path / 'no' / 'x.parquet'}'")
    eng.execute("CREATE USER carol ROLE user")
    with pytest.raises(PermissionDeniedError):
        eng.execute(f"EXPORT TABLE t TO '{tmp_path / 'c.parquet'}'", user="carol")
    assert not (tmp_path / "c.parquet").exists()


def test_export_syntax_errors_name_the_position(engines, tmp_path):
    eng = engines.open(background_jobs=False)
    fill(eng)
    with pytest.raises(SqlParseError, match="FORMAT parquet or FORMAT delta"):
        eng.execute(f"EXPORT TABLE t TO '{tmp_path / 'x'}' FORMAT csv")
    with pytest.raises(SqlParseError, match="quoted string"):
        eng.execute("EXPORT TABLE t TO somewhere")
    with pytest.raises(Exception, match="nope"):
        eng.execute(f"EXPORT TABLE nope TO '{tmp_path / 'y'}'")
