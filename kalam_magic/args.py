"""The magic line: options first, then (for ``%kalam``) the SQL, untouched.

Options are read from the start of the line until the first word that is not
an option; everything from there on is the statement text, passed to the
engine byte for byte. The SQL itself is never searched for options. ``--``
ends the options explicitly.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

from IPython.core.error import UsageError

#: option -> (attribute, takes a value, help)
OPTIONS: dict[str, tuple[str, bool, str]] = {
    "-o": ("out", True, "store the result of the last query in the notebook variable NAME"),
    "--out": ("out", True, "same as -o"),
    "--polars": ("polars", False, "with -o: store a polars DataFrame"),
    "--arrow": ("arrow", False, "with -o: store a pyarrow Table"),
    "--all": ("show_all", False, "show the result of every query, not only the last"),
    "--rows": (
        "rows",
        True,
        "rows to show for this cell: a number, or all (every row, past Kalam.display_max_rows)",
    ),
    "--explain": ("explain", False, "show the query plan with the pruning figures"),
    "--connect": (
        "connect",
        True,
        "switch to the data directory DIR, or to a Kalam server grpc://HOST:PORT or "
        "http://HOST:PORT (user:password@ in the URL or $KALAM_PASSWORD; $var expands)",
    ),
    "--user": ("user", True, "run the statements as user NAME ($var expands)"),
    "--persist": (
        "persist",
        True,
        "write DataFrame NAME into a table: %kalam --persist NAME INTO [namespace.]table",
    ),
    "--key": ("key", True, "with --persist: primary key column of a table it creates"),
    "--updates": (
        "updates",
        True,
        "SUBSCRIBE: wait for N changes, then stop and show the final rows",
    ),
    "--for": ("for_seconds", True, "SUBSCRIBE: follow for SECONDS, then stop and show the rows"),
    "--stop": ("stop", False, "end live queries: %kalam --stop [id] (all when no id is given)"),
    "--chart": (
        "chart",
        True,
        "draw the last query as a chart: bar, line, scatter, hist or box (with --x/--y/--color)",
    ),
    "--x": ("x", True, "with --chart: the column on the x axis (the values, for hist)"),
    "--y": ("y", True, "with --chart: the column on the y axis (the values, for box)"),
    "--color": ("color", True, "with --chart: the column that colours marks by category"),
}

USAGE = "%kalam [options] SQL   |   %%kalam [options] + SQL in the cell body"


@dataclass
class MagicArgs:
    out: str | None = None
    polars: bool = False
    arrow: bool = False
    show_all: bool = False
    rows: str | None = None
    explain: bool = False
    connect: str | None = None
    user: str | None = None
    persist: str | None = None
    key: str | None = None
    updates: str | None = None
    for_seconds: str | None = None
    stop: bool = False
    chart: str | None = None
    x: str | None = None
    y: str | None = None
    color: str | None = None
    #: Text after the options: SQL for ``%kalam``, ``INTO target`` for --persist.
    rest: str = ""
    #: Column (0-based) where ``rest`` starts on the line.
    rest_offset: int = 0
    seen: set[str] = field(default_factory=set)


def options_help() -> str:
    width = max(len(o) for o in OPTIONS) + 6
    lines = []
    for opt, (_, takes_value, text) in OPTIONS.items():
        name = f"{opt} {'NAME' if takes_value else ''}".rstrip()
        if opt == "--connect":
            name = "--connect DIR"
        elif opt == "--rows":
            name = "--rows N|all"
        elif opt == "--key":
            name = "--key COLUMN"
        elif opt == "--updates":
            name = "--updates N"
        elif opt == "--for":
            name = "--for SECONDS"
        elif opt == "--chart":
            name = "--chart KIND"
        elif opt in ("--x", "--y", "--color"):
            name = f"{opt} COLUMN"
        lines.append(f"    {name.ljust(width)} {text}")
    return "\n".join(lines)


def _skip_space(line: str, pos: int) -> int:
    while pos < len(line) and line[pos].isspace():
        pos += 1
    return pos


def _word(line: str, pos: int) -> tuple[str, int]:
    """The word starting at ``pos`` (quotes allowed around values) and the end position."""
    if line[pos] in "'\"":
        end = line.find(line[pos], pos + 1)
        if end < 0:
            raise UsageError(f"unclosed quote on the magic line: {line[pos:]}")
        return line[pos + 1 : end], end + 1
    end = pos
    while end < len(line) and not line[end].isspace():
        end += 1
    return line[pos:end], end


def parse_line(line: str) -> MagicArgs:
    """Read the options at the start of ``line``; the rest is kept verbatim."""
    args = MagicArgs()
    pos = _skip_space(line, 0)
    while pos < len(line) and line[pos] == "-":
        word, end = _word(line, pos)
        if word == "--":
            pos = _skip_space(line, end)
            break
        name, eq, inline_value = word.partition("=")
        if name not in OPTIONS:
            raise UsageError(f"unknown option {name!r}; options:\n{options_help()}")
        attr, takes_value, _ = OPTIONS[name]
        if attr in args.seen:
            raise UsageError(f"option {name} given twice")
        args.seen.add(attr)
        if not takes_value:
            if eq:
                raise UsageError(f"option {name} takes no value")
            setattr(args, attr, True)
            pos = _skip_space(line, end)
            continue
        if eq:
            value = inline_value
        else:
            pos = _skip_space(line, end)
            if pos >= len(line):
                raise UsageError(f"option {name} needs a value")
            value, end = _word(line, pos)
        setattr(args, attr, value)
        pos = _skip_space(line, end)
    args.rest = line[pos:]
    args.rest_offset = pos
    _check(args)
    return args


def _check(args: MagicArgs) -> None:
    if args.polars and args.arrow:
        raise UsageError("--polars and --arrow exclude each other")
    if (args.polars or args.arrow) and not args.out:
        raise UsageError("--polars / --arrow choose the type stored by -o NAME; add -o NAME")
    if args.out is not None and not _is_identifier(args.out):
        raise UsageError(f"-o needs a Python variable name, got {args.out!r}")
    if args.rows is not None and not (
        args.rows.lower() == "all" or (args.rows.isdigit() and int(args.rows) > 0)
    ):
        raise UsageError(f"--rows needs a positive whole number or all, got {args.rows!r}")
    if args.key is not None and args.persist is None:
        raise UsageError("--key names the primary key of a table --persist creates")
    if args.chart is None and (args.x or args.y or args.color):
        raise UsageError("--x, --y and --color choose the columns of --chart KIND; add --chart")
    if args.chart is not None and (args.explain or args.persist is not None):
        raise UsageError(
            "--chart draws a query result; it does not combine with --explain / --persist"
        )
    if args.persist is not None and not _is_identifier(args.persist):
        raise UsageError(f"--persist needs a Python variable name, got {args.persist!r}")
    if args.updates is not None and not (args.updates.isdigit() and int(args.updates) > 0):
        raise UsageError(f"--updates needs a positive whole number, got {args.updates!r}")
    if args.for_seconds is not None:
        try:
            ok = float(args.for_seconds) > 0
        except ValueError:
            ok = False
        if not ok:
            raise UsageError(f"--for needs a positive number of seconds, got {args.for_seconds!r}")


def display_rows(args: MagicArgs, displaylimit: int, max_rows: int) -> tuple[int, int]:
    """(displaylimit, cap) for a cell: ``--rows N`` / ``--rows all`` override the settings.

    Asking for a number or for ``all`` on the cell is the confirmation the cap
    waits for, so both lift it.
    """
    if args.rows is None:
        return displaylimit, max_rows
    if args.rows.lower() == "all":
        return 0, 0
    return int(args.rows), 0


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def persist_target(rest: str) -> str:
    """The table named by ``INTO [namespace.]table`` after ``--persist NAME``."""
    words = rest.split()
    if len(words) != 2 or words[0].upper() != "INTO":
        raise UsageError("usage: %kalam --persist DATAFRAME INTO [namespace.]table")
    return words[1]
