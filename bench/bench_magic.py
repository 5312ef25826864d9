"""What %%kalam adds over Engine.execute for a point query (issue 7, acceptance 3).

One IPython shell with kalam_magic loaded; the magic's own engine also serves
the direct ``Engine.execute`` calls, so both paths read the same table. Three
cases alternate in rounds: the engine call alone, the magic call (split,
parameter lookup, execute, ``CellResult``), and the magic call plus IPython's
display formatting (HTML and text, what a notebook shows).

Target: the magic plus rendering adds at most 1 ms to the engine's median,
measured as the per-round difference of medians.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench.fixtures import needs, work_dir
from bench.harness import BenchConfig, BenchReport, Case, Row, Target, interleave, log

NAME = "magic"
SQL = "SELECT id, name, score FROM points WHERE id = :wanted"
ENGINE_CASE = "Engine.execute"
MAGIC_CASE = "%kalam"
SHOWN_CASE = "%kalam + display"


def _shell(data_dir: Path) -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "kalam_magic")
    ip.user_ns["bench_data_dir"] = str(data_dir)
    ip.run_line_magic("config", "Kalam.data_dir = bench_data_dir")
    return ip


def _overheads(samples: dict[str, list[float]], case: str, per_round: int) -> list[float]:
    """Per round: median of ``case`` minus median of the engine alone."""
    base, other = samples[ENGINE_CASE], samples[case]
    out = []
    for i in range(0, len(base), per_round):
        out.append(
            statistics.median(other[i : i + per_round]) - statistics.median(base[i : i + per_round])
        )
    return out


def run(cfg: BenchConfig) -> list[BenchReport]:
    rounds = cfg.pick(3, cfg.rounds)
    per_round = cfg.pick(50, 400)
    n_rows = cfg.pick(1_000, 10_000)
    report = BenchReport(
        NAME,
        "%kalam overhead over Engine.execute, point query (issue 7)",
        scale=f"{n_rows} hot rows; {rounds} rounds × {per_round} queries per case",
    )
    with work_dir(cfg, NAME) as wd:
        ip = _shell(wd / "data")
        try:
            magics = ip.magics_manager.registry["KalamMagics"]
            engine = magics.engine()
            with needs("CREATE TABLE / INSERT ... SELECT"):
                engine.execute(
                    "CREATE TABLE points (id BIGINT PRIMARY KEY, name TEXT, score DOUBLE)"
                )
                engine.execute(
                    "INSERT INTO points SELECT value, 'p' || value, value * 0.5 "
                    f"FROM range(0, {int(n_rows)})"
                )
            ip.user_ns["wanted"] = n_rows // 2
            params = {"wanted": n_rows // 2}

            def direct() -> None:
                engine.execute(SQL, params, user="root")

            def magic() -> None:
                ip.run_cell_magic("kalam", "", SQL)

            def shown() -> None:
                ip.display_formatter.format(ip.run_cell_magic("kalam", "", SQL))

            check = ip.run_cell_magic("kalam", "", SQL)
            assert len(check) == 1, "the point query must find its row"
            log(f"{NAME}: timing {rounds} rounds × {per_round}")
            samples = interleave(
                [Case(ENGINE_CASE, direct), Case(MAGIC_CASE, magic), Case(SHOWN_CASE, shown)],
                rounds=rounds,
                per_round=per_round,
            )
        finally:
            ip.run_line_magic("unload_ext", "kalam_magic")
    report.rows = [
        Row(ENGINE_CASE, samples[ENGINE_CASE]),
        Row(MAGIC_CASE, samples[MAGIC_CASE], peers=(ENGINE_CASE,)),
        Row(SHOWN_CASE, samples[SHOWN_CASE], peers=(ENGINE_CASE,)),
        Row(
            "overhead: %kalam",
            _overheads(samples, MAGIC_CASE, per_round),
            note="per-round median difference",
        ),
        Row(
            "overhead: %kalam + display",
            _overheads(samples, SHOWN_CASE, per_round),
            target=Target(max_value=1e-3),
            note="per-round median difference",
        ),
    ]
    return [report, _rendering(cfg)]


def _rendering(cfg: BenchConfig) -> BenchReport:
    """Showing a big result costs what showing the rows on screen costs (issue 15).

    The same result is rendered (HTML and text, what a notebook receives) at
    1k and at 1M rows, with the default display limit and with
    ``displaylimit = 0`` (capped at ``display_max_rows``). The peers render
    the same Arrow table their own way: a pandas DataFrame's HTML (what
    jupysql shows) and a DuckDB relation's text display.
    """
    import duckdb
    import pyarrow as pa

    from engine import Result
    from kalam_magic import CellResult

    big_rows = cfg.pick(100_000, 1_000_000)
    rounds = cfg.pick(2, cfg.rounds)
    per_round = cfg.pick(3, 5)
    report = BenchReport(
        "magic-render",
        "rendering a big result: cost of the rows shown, not of the result (issue 15)",
        scale=f"1,000 and {big_rows:,} rows × 4 columns; {rounds} rounds × {per_round}",
    )

    def table(n: int) -> pa.Table:
        ids = pa.array(range(n), pa.int64())
        return pa.table(
            {
                "id": ids,
                "name": pa.array([f"row {i}" for i in range(n)]),
                "score": pa.compute.multiply(ids, 0.5),
                "flag": pa.compute.equal(pa.compute.bit_wise_and(ids, 1), 0),
            }
        )

    small, big = table(1_000), table(big_rows)
    small_res = CellResult([Result(table=small, is_query=True)])
    big_res = CellResult([Result(table=big, is_query=True)])
    big_all = CellResult([Result(table=big, is_query=True)], displaylimit=0)
    frame = big.to_pandas()
    con = duckdb.connect()

    def show(res: CellResult) -> None:
        res._repr_html_()
        str(res)

    cases = [
        Case("%kalam display, 1k rows", lambda: show(small_res)),
        Case(f"%kalam display, {big_rows:,} rows", lambda: show(big_res)),
        Case(f"%kalam display, {big_rows:,} rows, displaylimit = 0", lambda: show(big_all)),
        Case("pandas _repr_html_", lambda: frame._repr_html_()),
        Case("DuckDB relation display", lambda: str(con.from_arrow(big))),
    ]
    log(f"magic-render: timing {rounds} rounds × {per_round}")
    samples = interleave(cases, rounds=rounds, per_round=per_round, warmup=1, block=1)
    first, big_case, capped, pandas_case, duck_case = (c.name for c in cases)
    report.rows = [
        Row(first, samples[first]),
        Row(
            big_case,
            samples[big_case],
            peers=(first, pandas_case, duck_case),
            target=Target(max_ratio=((first, 2.0),)),
            note="independent of the result size: ≤ 2x the 1k-row render",
        ),
        Row(capped, samples[capped], peers=(pandas_case,), note="renders display_max_rows rows"),
        Row(pandas_case, samples[pandas_case]),
        Row(duck_case, samples[duck_case]),
    ]
    return report
