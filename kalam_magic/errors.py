"""How an engine error reaches the notebook: one short message, no traceback.

The engine reports positions relative to the statement it was given; a cell
can hold several statements, so ``KalamCellError`` moves the position into
the cell and shows the cell line with a caret under the column. IPython
calls ``_render_traceback_`` instead of printing a Python traceback, and the
cell still counts as failed, so "Run All" stops there. Anything that is not a
``KalamError`` is a bug and never passes through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import KalamError

#: Characters of the offending cell line shown around the error column.
LINE_WINDOW = 100


@dataclass(frozen=True)
class Position:
    """A 1-based line/column in the text the user typed."""

    line: int
    column: int


def cell_position(
    error: KalamError,
    *,
    statement_line: int,
    statement_column: int,
    line_offset: int,
) -> Position:
    """Where ``error`` points in the cell.

    ``statement_line``/``statement_column`` locate the statement in the SQL text
    (1-based); ``line_offset`` is the number of lines above the SQL text (1 for
    the ``%%kalam`` line of a cell magic). An error without a position points at
    the start of its statement.
    """
    # Some errors carry a column *name* in ``column``; only integers are positions.
    err_line = error.line if isinstance(error.line, int) else None
    err_column = error.column if isinstance(error.column, int) else 1
    if err_line is None:
        line, column = statement_line, statement_column
    elif err_line == 1:
        line, column = statement_line, statement_column - 1 + err_column
    else:
        line, column = statement_line + err_line - 1, err_column
    return Position(line + line_offset, column)


class KalamCellError(Exception):
    """An engine error raised by one statement of a cell, placed in the cell."""

    def __init__(
        self,
        error: KalamError,
        *,
        position: Position | None,
        source_line: str | None,
        statement_index: int | None = None,
        where: str = "cell",
        data_dir: str | None = None,
    ) -> None:
        self.error = error
        self.code = error.code
        #: The engine's message, with the data directory's absolute path hidden.
        self.message = redact(error.message, data_dir)
        self.position = position
        self.source_line = source_line
        self.statement_index = statement_index
        self.where = where
        super().__init__(self.headline())

    def headline(self) -> str:
        text = f"{type(self.error).__name__}: {self.message}"
        if self.position is not None:
            text += f" (line {self.position.line}, column {self.position.column})"
        return text

    def lines(self) -> list[str]:
        """The message as shown: headline, where it happened, the line with a caret."""
        out = [f"{type(self.error).__name__}: {self.message}"]
        if self.position is None:
            return out
        where = f"  at line {self.position.line}, column {self.position.column} of the {self.where}"
        if self.statement_index is not None:
            where += f" (statement {self.statement_index})"
        out.append(where)
        if self.source_line is not None:
            text, caret = _window(self.source_line.rstrip("\n"), self.position.column)
            out.append("    " + text)
            out.append("    " + " " * caret + "^")
        return out

    def _render_traceback_(self) -> list[str]:
        original = getattr(self.error, "original", None)
        if original is None:
            return self.lines()
        # An engine bug (InternalError): the message, then the real traceback to report.
        import traceback

        return [*self.lines(), *traceback.format_exception(original)]


def redact(text: str, data_dir: str | None) -> str:
    """``text`` with the data directory's absolute path replaced by ``<data dir>``.

    Notebooks get shared; where a user keeps data is not the reader's business.
    """
    if not data_dir:
        return text
    return text.replace(data_dir.rstrip("/"), "<data dir>")


def _window(line: str, column: int) -> tuple[str, int]:
    """Cut a long line to LINE_WINDOW characters around ``column``; return text and caret."""
    line = line.expandtabs(1)
    caret = max(0, min(column - 1, len(line)))
    if len(line) <= LINE_WINDOW:
        return line, caret
    start = max(0, caret - LINE_WINDOW // 2)
    text = line[start : start + LINE_WINDOW]
    prefix = "…" if start else ""
    suffix = "…" if start + LINE_WINDOW < len(line) else ""
    return prefix + text + suffix, caret - start + len(prefix)
