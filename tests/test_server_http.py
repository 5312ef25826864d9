"""KalamDB's HTTP contract, field by field, against a real ``kalam serve``:
success documents, DML/DDL messages, batches, params, every error code with
its HTTP status, Int64 as strings, timestamps as microseconds, namespace_id,
and Arrow IPC responses."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re

import pyarrow as pa
import pytest

pytest.register_assert_rewrite("server_fixtures")
from server_fixtures import ARROW, RunningServer  # noqa: E402

pytest_plugins = ["server_fixtures"]


@pytest.fixture(scope="module", autouse=True)
def _schema(server: RunningServer) -> None:
    server.ok(
        "CREATE NAMESPACE app; "
        "CREATE TABLE app.items (id BIGINT PRIMARY KEY, qty INT, name TEXT, price DOUBLE, "
        "at TIMESTAMP) WITH (TYPE = 'SHARED')"
    )


def test_health_answers_ok(server: RunningServer) -> None:
    r = server.client.get(f"{server.url}/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_query_result_has_schema_rows_row_count_and_as_user(server: RunningServer) -> None:
    server.ok("INSERT INTO app.items VALUES (1, 5, 'pen', 1.5, '2024-01-02 03:04:05.123456')")
    r = server.post_sql("SELECT id, qty, name, price, at FROM app.items WHERE id = 1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert set(doc) == {"status", "results", "took"}
    assert doc["status"] == "success"
    assert isinstance(doc["took"], float) and round(doc["took"], 3) == doc["took"]
    (res,) = doc["results"]
    assert set(res) == {"schema", "rows", "row_count", "as_user"}
    assert res["schema"] == [
        {"name": "id", "data_type": "BigInt", "index": 0, "flags": ["nn"]},
        {"name": "qty", "data_type": "Int", "index": 1, "flags": []},
        {"name": "name", "data_type": "Text", "index": 2, "flags": []},
        {"name": "price", "data_type": "Double", "index": 3, "flags": []},
        {"name": "at", "data_type": "Timestamp", "index": 4, "flags": []},
    ]
    micros = int(dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC).timestamp() * 1_000_000)
    # BIGINT as a string (JavaScript-safe), INT as a number, timestamps in µs.
    assert res["rows"] == [["1", 5, "pen", 1.5, micros]]
    assert res["row_count"] == 1
    assert res["as_user"] == "root"


def test_int64_beyond_2_53_survives_as_an_exact_string(server: RunningServer) -> None:
    big = 2**62 + 1
    server.ok("INSERT INTO app.items (id, qty) VALUES ($1, 1)", params=[big])
    assert server.rows(f"SELECT id FROM app.items WHERE id = {big}") == [[str(big)]]
    assert server.rows(f"SELECT count(*) AS n FROM app.items WHERE id = {big}") == [["1"]]


def test_nan_and_infinities_are_strings_never_null(server: RunningServer) -> None:
    # JSON has no NaN: written as null it read as SQL NULL (`WHERE f IS NULL`
    # finds none of these rows). Both results below must keep them apart.
    server.ok("CREATE TABLE app.floats (id INT PRIMARY KEY, f DOUBLE)")
    server.ok(
        "INSERT INTO app.floats VALUES (1, CAST('NaN' AS DOUBLE)), "
        "(2, CAST('Infinity' AS DOUBLE)), (3, CAST('-Infinity' AS DOUBLE)), (4, NULL), (5, 2.5)"
    )
    rows = server.rows("SELECT f FROM app.floats ORDER BY id")
    assert rows == [["NaN"], ["Infinity"], ["-Infinity"], [None], [2.5]]
    assert server.rows("SELECT f FROM app.floats WHERE id = 5") == [[2.5]]  # finite: a number


def test_dml_and_ddl_results_carry_a_message_and_no_rows(server: RunningServer) -> None:
    res = server.ok("CREATE TABLE app.dml1 (id INT PRIMARY KEY, v TEXT)")
    assert "rows" not in res[0] and res[0]["message"] and res[0]["row_count"] == 0
    (ins,) = server.ok("INSERT INTO app.dml1 VALUES (1, 'a'), (2, 'b')")
    assert set(ins) == {"schema", "row_count", "message", "as_user"}
    assert ins["row_count"] == 2 and ins["schema"] == [] and ins["as_user"] == "root"
    assert "2" in ins["message"]
    (upd,) = server.ok("UPDATE app.dml1 SET v = 'z' WHERE id >= 1")
    assert upd["row_count"] == 2 and "rows" not in upd
    (dele,) = server.ok("DELETE FROM app.dml1 WHERE id = 1")
    assert dele["row_count"] == 1


def test_a_batch_returns_one_result_per_statement_in_order(server: RunningServer) -> None:
    results = server.ok(
        "CREATE TABLE app.batch1 (id INT PRIMARY KEY); INSERT INTO app.batch1 VALUES (1), (2);"
        " SELECT count(*) AS n FROM app.batch1; SELECT id FROM app.batch1 ORDER BY id"
    )
    assert len(results) == 4
    assert "rows" not in results[0] and results[1]["row_count"] == 2
    assert results[2]["rows"] == [["2"]]
    assert results[3]["rows"] == [[1], [2]]


def test_a_batch_stops_at_the_first_error(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.batch2 (id INT PRIMARY KEY)")
    r = server.post_sql(
        "INSERT INTO app.batch2 VALUES (1); SELECT * FROM app.missing; "
        "INSERT INTO app.batch2 VALUES (2)"
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "TABLE_NOT_FOUND"
    assert server.rows("SELECT id FROM app.batch2 ORDER BY id") == [[1]]


def test_positional_params_bind_one_statement(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.p1 (id INT PRIMARY KEY, v TEXT)")
    server.ok("INSERT INTO app.p1 VALUES ($1, $2)", params=[7, "it's"])
    rows = server.rows("SELECT v FROM app.p1 WHERE id = $1", params=[7])
    assert rows == [["it's"]]


def _error(r: object, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    doc = r.json()  # type: ignore[attr-defined]
    assert set(doc) == {"status", "results", "took", "error"}
    assert doc["status"] == "error" and doc["results"] == []
    assert set(doc["error"]) == {"code", "message", "details"}
    assert doc["error"]["code"] == code
    assert doc["error"]["message"]
    return doc["error"]  # type: ignore[no-any-return]


def test_params_with_a_batch_is_refused_and_runs_nothing(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.p2 (id INT PRIMARY KEY)")
    r = server.post_sql("INSERT INTO app.p2 VALUES ($1); INSERT INTO app.p2 VALUES (9)", params=[1])
    _error(r, 400, "PARAMS_WITH_BATCH")
    assert server.rows("SELECT count(*) FROM app.p2") == [["0"]]


@pytest.mark.parametrize("sql", ["", "   ", " ; ; ", "-- nothing\n"])
def test_empty_sql_is_empty_sql(server: RunningServer, sql: str) -> None:
    _error(server.post_sql(sql), 400, "EMPTY_SQL")


def test_missing_sql_field_is_empty_sql(server: RunningServer) -> None:
    r = server.client.post(f"{server.url}/v1/api/sql", json={}, headers=server.bearer())
    _error(r, 400, "EMPTY_SQL")


def test_a_syntax_error_is_invalid_sql_with_its_position(server: RunningServer) -> None:
    err = _error(server.post_sql("SELECT 1;\nSELEC 2"), 400, "INVALID_SQL")
    assert err["details"]["line"] == 2  # type: ignore[index]


def test_an_unknown_table_is_table_not_found(server: RunningServer) -> None:
    err = _error(server.post_sql("SELECT * FROM app.nope"), 404, "TABLE_NOT_FOUND")
    assert "app.nope" in err["message"]  # type: ignore[operator]


def test_a_forbidden_statement_is_permission_denied(server: RunningServer) -> None:
    r = server.post_sql("CREATE NAMESPACE sneaky", user="plain_http_user")
    _error(r, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"sql": "SELECT $1 AS x", "params": [1, 2]}, "too many params"),
        ({"sql": "SELECT $1 AS x", "params": "1"}, "params not an array"),
        ({"sql": 5}, "sql not a string"),
        ({"sql": "SELECT 1", "namespace_id": "Bad Name"}, "namespace not a name"),
    ],
)
def test_bad_request_fields_are_invalid_parameter(
    server: RunningServer, body: dict[str, object], why: str
) -> None:
    r = server.client.post(f"{server.url}/v1/api/sql", json=body, headers=server.bearer())
    _error(r, 400, "INVALID_PARAMETER")


def test_a_body_that_is_not_json_is_invalid_parameter(server: RunningServer) -> None:
    r = server.client.post(
        f"{server.url}/v1/api/sql", content=b"{not json", headers=server.bearer()
    )
    _error(r, 400, "INVALID_PARAMETER")


def test_a_failing_statement_is_sql_execution_error_with_the_engine_code(
    server: RunningServer,
) -> None:
    server.ok("CREATE TABLE app.pk (id INT PRIMARY KEY)")
    server.ok("INSERT INTO app.pk VALUES (1)")
    err = _error(server.post_sql("INSERT INTO app.pk VALUES (1)"), 400, "SQL_EXECUTION_ERROR")
    assert err["details"] == {"kalam_code": "PRIMARY_KEY_VIOLATION"}


def test_namespace_id_applies_to_that_request_only(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.ns1 (id INT PRIMARY KEY)")
    server.ok("INSERT INTO ns1 VALUES (3)", namespace_id="app")
    assert server.rows("SELECT id FROM ns1", namespace_id="app") == [[3]]
    _error(server.post_sql("SELECT id FROM ns1"), 404, "TABLE_NOT_FOUND")


def test_use_in_one_request_does_not_leak_into_the_next(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.ns2 (id INT PRIMARY KEY)")
    assert server.ok("USE app; SELECT count(*) AS n FROM ns2")[1]["rows"] == [["0"]]
    _error(server.post_sql("SELECT count(*) FROM ns2"), 404, "TABLE_NOT_FOUND")


# ---------------------------------------------------------------- Arrow IPC
def _arrow(server: RunningServer, sql: str, **body: object) -> tuple[object, pa.Table]:
    r = server.post_sql(sql, headers={**server.bearer(), "Accept": ARROW}, **body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == ARROW
    return r, pa.ipc.open_stream(r.content).read_all()


def test_arrow_response_is_the_query_result_as_an_ipc_stream(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.arr (id BIGINT PRIMARY KEY, v TEXT, at TIMESTAMP)")
    server.ok("INSERT INTO app.arr VALUES (1, 'x', '2024-05-06 07:08:09'), (2, NULL, NULL)")
    r, table = _arrow(server, "SELECT id, v, at FROM app.arr ORDER BY id")
    assert table.column_names == ["id", "v", "at"]
    assert table.schema.field("id").type == pa.int64()  # columnar: no string detour
    assert pa.types.is_timestamp(table.schema.field("at").type)
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("v").to_pylist() == ["x", None]
    assert table.column("at").to_pylist()[0] == dt.datetime(2024, 5, 6, 7, 8, 9)
    assert r.headers["X-Kalam-Row-Count"] == "2"  # type: ignore[attr-defined]
    assert r.headers["X-Kalam-As-User"] == "root"  # type: ignore[attr-defined]
    assert r.headers["X-Kalam-Is-Query"] == "1"  # type: ignore[attr-defined]


def test_arrow_response_to_dml_carries_message_and_count_in_headers(server: RunningServer) -> None:
    server.ok("CREATE TABLE app.arr2 (id INT PRIMARY KEY)")
    r, table = _arrow(server, "INSERT INTO app.arr2 VALUES (1), (2), (3)")
    assert table.num_columns == 0
    assert r.headers["X-Kalam-Row-Count"] == "3"  # type: ignore[attr-defined]
    assert r.headers["X-Kalam-Is-Query"] == "0"  # type: ignore[attr-defined]
    assert "3" in r.headers["X-Kalam-Message"]  # type: ignore[attr-defined]


def test_arrow_errors_are_still_the_json_error_document(server: RunningServer) -> None:
    r = server.post_sql("SELECT * FROM app.none", headers={**server.bearer(), "Accept": ARROW})
    assert r.headers["content-type"].startswith("application/json")
    _error(r, 404, "TABLE_NOT_FOUND")


def test_arrow_with_a_batch_is_refused(server: RunningServer) -> None:
    r = server.post_sql("SELECT 1; SELECT 2", headers={**server.bearer(), "Accept": ARROW})
    _error(r, 400, "INVALID_PARAMETER")


# ---------------------------------------------------------------- serving
def test_each_request_is_logged_once_with_its_duration(server: RunningServer) -> None:
    server.ok("SELECT 42 AS marker_for_log")
    lines = [
        ln for ln in server.log().splitlines() if re.search(r"POST /v1/api/sql 200 user=root", ln)
    ]
    assert lines and all(re.search(r"\d+\.\d{3} ms$", ln) for ln in lines)


def test_concurrent_clients_are_served_in_parallel_without_losing_writes(
    server: RunningServer,
) -> None:
    server.ok("CREATE TABLE app.conc (id INT PRIMARY KEY, w INT)")
    token = server.token()

    def writer(w: int) -> None:
        import httpx

        with httpx.Client(timeout=60) as c:
            for i in range(20):
                r = c.post(
                    f"{server.url}/v1/api/sql",
                    json={
                        "sql": "INSERT INTO app.conc VALUES ($1, $2)",
                        "params": [w * 100 + i, w],
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 200, r.text

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    assert server.rows("SELECT count(*) AS n, count(DISTINCT w) AS w FROM app.conc") == [
        ["160", "8"]
    ]
