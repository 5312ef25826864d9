"""Rendering of engine results: HTML for notebooks, plain text for terminals.

Everything a user sees from a cell is built here: status lines for
statements that are not queries, result tables with the column types under
the headers, the "N of M rows" note when a result is longer than the display
limit, and a footer with the elapsed time and the scan figures the engine
reported. Every value and name is HTML-escaped; nothing is re-executed.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from engine import Result

#: Characters of a text value shown before it is cut with an ellipsis.
TEXT_VALUE_CHARS = 60
HTML_VALUE_CHARS = 500
NULL = "NULL"
SEP = " · "
#: With ``displaylimit = 0`` (every row), a longer result shows this many rows
#: and says how to ask for all of them: an HTML table of a million rows freezes
#: the browser tab. ``Kalam.display_max_rows`` changes it; ``--rows all`` confirms.
DISPLAY_MAX_ROWS = 10_000

_CONTROL = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


# ---------------------------------------------------------------- values


def sql_type_name(dtype: pa.DataType) -> str:
    """The engine's SQL spelling of an Arrow type (``int32`` -> ``INT``)."""
    simple = {
        pa.bool_(): "BOOLEAN",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INT",
        pa.int64(): "BIGINT",
        pa.uint8(): "TINYINT UNSIGNED",
        pa.uint16(): "SMALLINT UNSIGNED",
        pa.uint32(): "INT UNSIGNED",
        pa.uint64(): "BIGINT UNSIGNED",
        pa.float16(): "HALF",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.string(): "TEXT",
        pa.large_string(): "TEXT",
        pa.string_view(): "TEXT",
        pa.binary(): "BYTES",
        pa.large_binary(): "BYTES",
        pa.binary_view(): "BYTES",
        pa.date32(): "DATE",
        pa.date64(): "DATE",
        pa.null(): "NULL",
    }
    if dtype in simple:
        return simple[dtype]
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP" if dtype.tz is None else f"TIMESTAMP({dtype.tz})"
    if pa.types.is_decimal(dtype):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if pa.types.is_dictionary(dtype):
        return sql_type_name(dtype.value_type)
    return str(dtype).upper()


def _is_numeric(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def format_value(value: Any, dtype: pa.DataType, *, max_chars: int = TEXT_VALUE_CHARS) -> str:
    """One value as display text; NULL for a missing value."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if pa.types.is_float32(dtype) or pa.types.is_float16(dtype):
            # float32 values come back widened; print the digits they actually hold.
            return f"{value:.7g}"
        return repr(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return _clip("\\x" + bytes(value).hex(), max_chars)
    return _clip(str(value).translate(_CONTROL), max_chars)


def _shown_columns(table: pa.Table, limit: int, max_chars: int) -> list[list[str | None]]:
    """Display text of the first ``limit`` rows, column by column; None for NULL."""
    shown = table.slice(0, limit)
    return [
        [
            None if v is None else format_value(v, field.type, max_chars=max_chars)
            for v in _python_values(column)
        ]
        for field, column in zip(shown.schema, shown.columns, strict=True)
    ]


def _python_values(column: pa.ChunkedArray) -> list[Any]:
    """``column``'s values as Python objects; a date or timestamp Python's
    ``datetime`` cannot hold (after year 9999, which Arrow holds) as Arrow's
    own text for it."""
    try:
        return column.to_pylist()
    except (OverflowError, ValueError):
        texts = column.cast(pa.string()).to_pylist()
        out: list[Any] = []
        for i, text in enumerate(texts):
            try:
                out.append(column[i].as_py())
            except (OverflowError, ValueError):
                out.append(text)
        return out


def shown_row_count(result: Result, displaylimit: int, max_rows: int = DISPLAY_MAX_ROWS) -> int:
    """How many rows of ``result`` are rendered.

    ``displaylimit`` > 0 is the number asked for; 0 asks for every row, which
    ``max_rows`` (> 0) still caps until the user confirms with ``--rows all``
    (``max_rows = 0``).
    """
    n = len(result)
    if displaylimit > 0:
        return min(n, displaylimit)
    return n if max_rows <= 0 else min(n, max_rows)


def capped_note(result: Result, displaylimit: int, max_rows: int) -> str | None:
    """The line that says a "show every row" request was capped, and how to confirm it."""
    n = len(result)
    if displaylimit > 0 or max_rows <= 0 or n <= max_rows:
        return None
    return (
        f"displaylimit = 0 renders at most {max_rows:,} rows (Kalam.display_max_rows) "
        f"to keep the page responsive: run the cell with --rows all to render all {n:,}, "
        "or keep the whole result with -o NAME"
    )


# ---------------------------------------------------------------- lines


def format_ms(ms: float) -> str:
    return f"{ms:.2f} ms"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def scan_figures(result: Result) -> dict[str, int]:
    """The engine's per-table scan figures summed over the tables of a query."""
    totals: dict[str, int] = {}
    for figures in result.stats.values():
        for key, value in figures.items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def footer_text(result: Result, shown: int) -> str:
    """``2 of 40 rows · 1.25 ms · hot rows 3 · segments scanned 1 of 4, pruned 3``
    (then ``, cache hits 1 of 1`` when segments were read from the warm cache)."""
    total = len(result)
    rows = f"{shown:,} of {total:,} rows" if shown < total else _plural(total, "row")
    parts = [rows, format_ms(result.elapsed_ms)]
    figures = scan_figures(result)
    if figures:
        parts.append(f"hot rows {figures.get('hot_rows', 0):,}")
        scanned = (
            f"segments scanned {figures.get('segments_scanned', 0)} of "
            f"{figures.get('segments_total', 0)}, pruned {figures.get('segments_pruned', 0)}"
        )
        if figures.get("segments_cached"):  # read from the warm cache, not decoded again
            scanned += f", cache hits {figures['segments_cached']} of {figures['segments_scanned']}"
        parts.append(scanned)
    return SEP.join(parts)


def status_text(result: Result) -> str:
    """One line for a statement that is not a query: its message and elapsed time."""
    message = result.message or (
        "OK" if result.rows_affected is None else f"{_plural(result.rows_affected, 'row')} affected"
    )
    return f"{message}{SEP}{format_ms(result.elapsed_ms)}"


# ---------------------------------------------------------------- text


def table_text(result: Result, displaylimit: int, max_rows: int = DISPLAY_MAX_ROWS) -> str:
    """A query result as an aligned text table with a type row and a footer."""
    table = result.table
    shown = shown_row_count(result, displaylimit, max_rows)
    footer = footer_text(result, shown)
    note = capped_note(result, displaylimit, max_rows)
    if note:
        footer += "\n" + note
    if table.num_columns == 0:
        return footer
    cells = [
        [NULL if v is None else v for v in col]
        for col in _shown_columns(table, shown, TEXT_VALUE_CHARS)
    ]
    headers = [_clip(name.translate(_CONTROL), TEXT_VALUE_CHARS) for name in table.column_names]
    types = [sql_type_name(f.type) for f in table.schema]
    widths = [
        max(len(h), len(t), *(len(v) for v in col))
        for h, t, col in zip(headers, types, cells, strict=True)
    ]
    numeric = [_is_numeric(f.type) for f in table.schema]

    def line(values: Sequence[str], align_numbers: bool) -> str:
        padded = [
            v.rjust(w) if align_numbers and num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return " | ".join(padded).rstrip()

    out = [line(headers, False), line(types, False), "-+-".join("-" * w for w in widths)]
    out.extend(line([col[i] for col in cells], True) for i in range(shown))
    out.append(footer)
    return "\n".join(out)


def plan_text(result: Result, *, hide_dir: str | None = None) -> str:
    """An EXPLAIN result: every plan row as a text block, then the footer figures.

    Plans name segment files by path; ``hide_dir`` (the data directory) is
    replaced by ``<data dir>`` so that no absolute path is shown.
    """
    blocks = []
    for row in result.rows():
        blocks.append("\n".join("" if v is None else str(v) for v in row))
    figures = footer_text(result, len(result)).split(SEP, 1)[1]
    text = "\n\n".join([*blocks, figures])
    if hide_dir:
        # DataFusion prints file paths without their leading slash.
        for form in (hide_dir.rstrip("/"), hide_dir.strip("/")):
            text = text.replace(form, "<data dir>")
    return text


# ---------------------------------------------------------------- html

_TYPE_STYLE = "font-weight:normal;font-style:italic;opacity:0.7"
_NOTE_STYLE = "opacity:0.7;font-size:0.9em;padding:0.2em 0"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def table_html(result: Result, displaylimit: int, max_rows: int = DISPLAY_MAX_ROWS) -> str:
    """A query result as an HTML table: escaped values, types under the headers, footer."""
    table = result.table
    shown = shown_row_count(result, displaylimit, max_rows)
    footer = (
        f'<div class="kalam-footer" style="{_NOTE_STYLE}">{_h(footer_text(result, shown))}</div>'
    )
    note = capped_note(result, displaylimit, max_rows)
    if note:
        footer += f'<div class="kalam-capped" style="{_NOTE_STYLE}">{_h(note)}</div>'
    if table.num_columns == 0:
        return footer
    cells = _shown_columns(table, shown, HTML_VALUE_CHARS)
    head = "".join(f"<th>{_h(name)}</th>" for name in table.column_names)
    types = "".join(
        f'<th style="{_TYPE_STYLE}">{_h(sql_type_name(f.type))}</th>' for f in table.schema
    )
    body = []
    for i in range(shown):
        tds = []
        for col in cells:
            v = col[i]
            if v is None:
                tds.append('<td class="kalam-null" style="opacity:0.5"><em>NULL</em></td>')
            else:
                tds.append(f"<td>{_h(v)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        '<table class="dataframe kalam-table">'
        f'<thead><tr>{head}</tr><tr class="kalam-types">{types}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{footer}"
    )


def status_html(result: Result) -> str:
    return f'<div class="kalam-status" style="{_NOTE_STYLE}">{_h(status_text(result))}</div>'


def plan_html(result: Result, *, hide_dir: str | None = None) -> str:
    return f'<pre class="kalam-plan">{_h(plan_text(result, hide_dir=hide_dir))}</pre>'


# ---------------------------------------------------------------- cells


def render_text(
    parts: Iterable[tuple[str, Result]],
    displaylimit: int,
    *,
    hide_dir: str | None = None,
    max_rows: int = DISPLAY_MAX_ROWS,
) -> str:
    """Text of a cell's output; ``parts`` are (kind, result), kind in status/table/plan."""
    chunks: list[str] = []
    for kind, result in parts:
        if kind == "status":
            chunks.append(status_text(result))
            continue
        if chunks:
            chunks.append("")  # a blank line sets a table apart from what precedes it
        if kind == "plan":
            chunks.append(plan_text(result, hide_dir=hide_dir))
        else:
            chunks.append(table_text(result, displaylimit, max_rows))
    return "\n".join(chunks)


def render_html(
    parts: Iterable[tuple[str, Result]],
    displaylimit: int,
    *,
    hide_dir: str | None = None,
    max_rows: int = DISPLAY_MAX_ROWS,
) -> str:
    """HTML of a cell's output, same parts as :func:`render_text`."""
    chunks = []
    for kind, result in parts:
        if kind == "status":
            chunks.append(status_html(result))
        elif kind == "plan":
            chunks.append(plan_html(result, hide_dir=hide_dir))
        else:
            chunks.append(table_html(result, displaylimit, max_rows))
    return '<div class="kalam-output">' + "".join(chunks) + "</div>"
