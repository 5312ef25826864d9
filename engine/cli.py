"""The ``kalam`` command line: a thin shell over ``Engine.execute_script``.

This module owns argument parsing, choosing the data directory and turning
``Result`` objects into text (an aligned table, CSV or JSON). It never looks
inside the SQL: every statement goes to the engine as written.

    kalam sql "<SQL>" [--data-dir DIR] [--user NAME] [--format table|csv|json] [--embedded]
    kalam repair [--data-dir DIR]
    kalam serve [--data-dir DIR] [--host 127.0.0.1] [--port 8080] [--token-ttl S]
                [--flight-port PORT]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import faulthandler
import io
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from engine import Engine, KalamError, Result
from engine.errors import DataDirInUseError
from engine.server.sqlapi import nonfinite_json

DATA_DIR_ENV = "KALAM_DATA_DIR"
DEFAULT_DATA_DIR = "kalam-data"
FORMATS = ("table", "csv", "json")

__all__ = ["main", "render_result", "resolve_data_dir"]


# --- value formatting --------------------------------------------------------


def format_cell(value: Any) -> str:
    """Text for one value in the table and CSV formats (``None`` becomes ``NULL``)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(to_json_value(value), ensure_ascii=False)
    return str(value)


def to_json_value(value: Any) -> Any:
    """A JSON-safe form of a value read from Arrow.

    Timestamps, dates and times become ISO 8601 strings, bytes become
    ``"\\x<hex>"`` (the same spelling as the table format), decimals become
    strings so no digits are lost, and non-finite floats become the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (as the server's JSON
    sends them) because JSON has no NaN or Infinity.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return nonfinite_json(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, pa.MonthDayNano):
        # An interval is a tuple; name its parts rather than print a bare list.
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    # Anything exotic (e.g. Arrow extension scalars) still renders as text.
    return str(value)


# --- result rendering --------------------------------------------------------


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def render_table(result: Result) -> str:
    """An aligned text table: header, rule, rows, then a row count.

    Numeric columns (header included) are right-aligned, the rest left-aligned.
    """
    names = result.columns
    columns = [result.table.column(i).to_pylist() for i in range(len(names))]
    cells = [[format_cell(v) for v in col] for col in columns]
    widths = [max([len(n)] + [len(c) for c in col]) for n, col in zip(names, cells, strict=True)]
    right = [_is_numeric(f.type) for f in result.table.schema]

    def line(parts: list[str]) -> str:
        return " | ".join(parts).rstrip()

    out = [
        line(
            [n.rjust(w) if r else n.ljust(w) for n, w, r in zip(names, widths, right, strict=True)]
        ),
        "-+-".join("-" * w for w in widths),
    ]
    for i in range(len(result)):
        out.append(
            line(
                [
                    col[i].rjust(w) if r else col[i].ljust(w)
                    for col, w, r in zip(cells, widths, right, strict=True)
                ]
            )
        )
    n = len(result)
    out.append(f"({n} row{'' if n == 1 else 's'})")
    return "\n".join(out)


def render_csv(result: Result) -> str:
    """CSV with a header row; NULL is an empty field."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows():
        writer.writerow(["" if v is None else format_cell(v) for v in row])
    return buf.getvalue().rstrip("\n")


def render_json(result: Result) -> str:
    """One JSON document: a list with one object per row."""
    rows = [
        {name: to_json_value(v) for name, v in zip(result.columns, row, strict=True)}
        for row in result.rows()
    ]
    return json.dumps(rows, ensure_ascii=False, allow_nan=False)


_RENDERERS = {"table": render_table, "csv": render_csv, "json": render_json}


def render_result(result: Result, fmt: str = "table") -> str:
    """Text for one result: its rows for a query, its status message otherwise."""
    if not result.is_query:
        return result.message
    return _RENDERERS[fmt](result)


def print_results(results: Sequence[Result], fmt: str, out: TextIO, status: TextIO) -> None:
    """Write every result in order.

    In the table format everything is a transcript on ``out``. In CSV and JSON,
    ``out`` carries only query rows so it stays machine-readable; status
    messages go to ``status``. Query results are set apart by a blank line
    (table, CSV) or written one JSON document per line (JSON).
    """
    previous: Result | None = None
    for result in results:
        text = render_result(result, fmt)
        if fmt != "table" and not result.is_query:
            print(text, file=status)
            continue
        # A blank line sets each table (or CSV block) apart from its neighbours.
        if previous is not None and fmt != "json" and (result.is_query or previous.is_query):
            print(file=out)
        print(text, file=out)
        previous = result


# --- command line ------------------------------------------------------------


def resolve_data_dir(arg: str | None, environ: dict[str, str] | None = None) -> Path:
    """``--data-dir``, else ``$KALAM_DATA_DIR``, else ``./kalam-data``."""
    env = os.environ if environ is None else environ
    return Path(arg or env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kalam", description="Run SQL against a Kalam data directory."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sql = commands.add_parser(
        "sql",
        help="run one or more ';'-separated SQL statements",
        description="Run one or more ';'-separated SQL statements and print their results.",
    )
    sql.add_argument("sql", metavar="SQL", help="the statement(s) to run")
    sql.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"data directory (default: ${DATA_DIR_ENV}, else ./{DEFAULT_DATA_DIR})",
    )
    sql.add_argument("--user", metavar="NAME", help="user to run as (default: root)")
    sql.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format for query results (default: table)",
    )
    sql.add_argument(
        "--embedded",
        action="store_true",
        help="open the data directory in this process even when a `kalam serve` owns it "
        "(by default the statements go to that server)",
    )
    fix = commands.add_parser(
        "repair",
        help="recover a damaged or lost hot store",
        description="Open the data directory with repair=True (see engine.recovery): salvage "
        "a damaged write-ahead log, or move a damaged hot store aside and rebuild the "
        "catalog from the manifest.json files. Prints what it did.",
    )
    fix.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"data directory (default: ${DATA_DIR_ENV}, else ./{DEFAULT_DATA_DIR})",
    )
    srv = commands.add_parser(
        "serve",
        help="serve the data directory over HTTP (the Kalam server)",
        description="Own the data directory and serve KalamDB's HTTP API on it until "
        "SIGTERM or SIGINT; writes <data dir>/server.json while running.",
    )
    srv.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"data directory (default: ${DATA_DIR_ENV}, else ./{DEFAULT_DATA_DIR})",
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    srv.add_argument(
        "--port", type=int, default=8080, help="port to bind; 0 picks a free one (default: 8080)"
    )
    srv.add_argument(
        "--token-ttl",
        type=int,
        metavar="S",
        default=None,
        help="lifetime of issued tokens in seconds (default: 86400)",
    )
    srv.add_argument(
        "--flight-port",
        type=int,
        metavar="PORT",
        default=None,
        help="also serve Arrow Flight SQL (ADBC/JDBC tools) on this port of --host; "
        "0 picks a free one (default: off)",
    )
    return parser


def _serve(data_dir: Path, args: argparse.Namespace) -> int:
    """``kalam serve``: open the directory embedded, serve it, close it cleanly."""
    import logging

    from engine.server.runner import running_server, serve

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    # SIGUSR1 writes every thread's stack to the server log: what a stuck
    # server is doing, without stopping it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.token_ttl is not None and args.token_ttl <= 0:
        print("error: --token-ttl must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        with Engine.open(data_dir, embedded=True) as engine:
            flight = _start_flight(engine, args) if args.flight_port is not None else None
            try:
                flight_url = f"grpc://{args.host}:{flight.port}" if flight is not None else None
                serve(
                    engine,
                    host=args.host,
                    port=args.port,
                    token_ttl=args.token_ttl,
                    flight_url=flight_url,
                )
            finally:
                if flight is not None:
                    flight.shutdown()
    except DataDirInUseError as exc:
        other = running_server(data_dir)
        if other is None:
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        else:
            print(
                f"error: a Kalam server (pid {other.get('pid')}) already serves {data_dir} "
                f"at {other.get('url')}; connect to it instead of starting another",
                file=sys.stderr,
            )
        return 1
    except KalamError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # the address is taken or not ours to bind
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def _start_flight(engine: Engine, args: argparse.Namespace) -> Any:
    """The Flight SQL server next to the HTTP one: same users, passwords and tokens."""
    from engine import auth
    from engine.flight import serve_flight

    def issue(user: str) -> str:
        return auth.issue_token(engine.db, user, ttl_seconds=args.token_ttl)

    server = serve_flight(
        engine,
        args.host,
        args.flight_port,
        authenticate=lambda user, password: auth.verify_password(engine.db, user, password),
        issue_token=issue,
        verify_token=lambda token: auth.verify_token(engine.db, token),
    )
    print(f"Kalam Flight SQL listening on grpc://{args.host}:{server.port}", flush=True)
    return server


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kalam`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return exc.code if isinstance(exc.code, int) else 2

    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "serve":
        return _serve(data_dir, args)
    if args.command == "repair":
        try:
            with Engine.open(data_dir, repair=True, background_jobs=False, embedded=True) as engine:
                print(engine.recovery)
        except KalamError as exc:
            print(f"error: {_one_line(str(exc))}", file=sys.stderr)
            return 1
        return 0
    options: dict[str, Any] = {} if args.user is None else {"user": args.user}
    try:
        with Engine.open(data_dir, embedded=args.embedded, **options) as engine:
            results = engine.execute_script(args.sql)
    except KalamError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    try:
        print_results(results, args.format, sys.stdout, sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`kalam sql ... | head`): stop quietly, and point
        # stdout at devnull so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
