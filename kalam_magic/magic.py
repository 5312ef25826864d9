"""The ``%kalam`` / ``%%kalam`` magic: options in, engine calls out, a ``CellResult`` back.

The magic line is read by :mod:`kalam_magic.args`; statements are split and
run by the engine (:mod:`kalam_magic.session`); output is built by
:mod:`kalam_magic.render`. IPython's ``$var`` / ``{var}`` expansion is off for
the whole line so that a ``{name}`` in SQL reaches the engine (which refuses it
and points to ``:name``); option values such as ``--connect $path`` are
expanded here instead.
"""

from __future__ import annotations

import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.display import display

from engine import KalamError, Result, split_statements
from kalam_magic import args as magic_args
from kalam_magic import charts, charts_run, live, schema
from kalam_magic import connect as remote
from kalam_magic import persist as bulk
from kalam_magic.completion import Catalog, Unavailable
from kalam_magic.config import Kalam, settings_help
from kalam_magic.errors import KalamCellError
from kalam_magic.progress import ProgressBar, QueryProgress
from kalam_magic.result import CellResult
from kalam_magic.session import (
    AnyEngine,
    EnginePool,
    Executor,
    SqlSource,
    execute,
    explain,
    run_sql,
)


@magics_class
class KalamMagics(Magics):
    """Holds the settings and the open engines of one IPython shell."""

    def __init__(self, shell: Any, settings: Kalam) -> None:
        super().__init__(shell)
        self.settings = settings
        self.engines = EnginePool()
        #: The completion matcher registered for this shell (set on load).
        self.matcher: Any = None
        #: A Kalam server this shell is connected to (``--connect grpc://...``).
        self.remote: remote.ServerEngine | None = None
        self._local_user = settings.user
        #: Live views (``SUBSCRIBE``) by live query id, for ``%kalam --stop``.
        self.views: dict[str, live.LiveView] = {}

    # ------------------------------------------------------------ connection

    def data_dir(self) -> str:
        if self.remote is not None:
            return self.remote.url
        return str(self.settings.resolved_data_dir())

    def engine(self) -> AnyEngine:
        """The engine of the data directory in effect, opened on first use
        (a client of the directory's Kalam server when one runs)."""
        if self.remote is not None:
            return self.remote  # type: ignore[return-value]  # the Engine surface the magic uses
        try:
            return self.engines.get(
                self.settings.resolved_data_dir(),
                durability=self.settings.durability,
                embedded=self.settings.embedded,
            )
        except KalamError as err:
            # Not redacted: which directory could not be opened is the point.
            raise KalamCellError(err, position=None, source_line=None) from None

    def _connect(self, data_dir: str) -> None:
        """Switch to ``data_dir`` (or a server URL); a target that cannot be
        opened leaves the old one in effect."""
        if remote.is_remote(data_dir):
            try:
                server = remote.connect_remote(data_dir, default_user=self.settings.user)
            except KalamError as err:
                raise KalamCellError(err, position=None, source_line=None) from None
            if self.remote is None:
                self._local_user = self.settings.user
            remote.close(self.remote)
            # On a server the login decides who statements run as.
            self.remote, self.settings.user = server, server.user
            return
        previous, previous_remote = self.settings.data_dir, self.remote
        self.settings.data_dir, self.remote = data_dir, None
        try:
            self.engine()
        except KalamCellError:
            self.settings.data_dir, self.remote = previous, previous_remote
            raise
        if previous_remote is not None:
            remote.close(previous_remote)
            self.settings.user = self._local_user

    def catalog(self) -> Catalog | Unavailable:
        """Names for tab completion, as the configured user sees them."""
        try:
            return Catalog(self.engine(), self.settings.user)
        except KalamCellError as err:
            # Completion never raises; it says in one line why there are no names.
            return Unavailable(err.headline())

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace: where :name values come from and -o results go."""
        assert self.shell is not None, "the magic runs inside an IPython shell"
        return self.shell.user_ns

    def _expand(self, value: str) -> str:
        """IPython's $var / {var} expansion, applied to option values only."""
        assert self.shell is not None
        return str(self.shell.var_expand(value))

    # ------------------------------------------------------------ the magic

    @no_var_expand
    @line_cell_magic
    def kalam(
        self, line: str, cell: str | None = None
    ) -> CellResult | live.LiveView | charts.Chart | None:
        args = magic_args.parse_line(line)
        if args.stop:
            self._stop(args)
            return None
        if args.connect is not None:
            self._connect(self._expand(args.connect))
        engine = self.engine()
        user = self._expand(args.user) if args.user is not None else self.settings.user
        if args.persist is not None:
            if cell is not None and cell.strip():
                raise UsageError("--persist takes no SQL; the cell body must be empty")
            return self._persist(engine, args, user)

        command = args.rest.split()
        if cell is None and command and command[0] in schema.COMMANDS:
            return self._schema_command(engine, command, user)
        source = self._source(args, cell)
        if not source.text.strip():
            if args.connect is not None:
                print(f"Connected; statements run as {user}")
                return None
            raise UsageError(f"no SQL given. Usage: {magic_args.USAGE}")
        if args.chart is not None:
            return self._chart(engine, source, args, user)
        executor = explain if args.explain else execute
        results = run_sql(
            engine,
            source,
            user=user,
            namespace=self.user_ns,
            executor=self._watched(executor),
            progress_threshold=self.settings.progress_threshold,
        )
        if not results:
            return None
        if any(r.subscription is not None for r in results):
            return self._live(results, args)
        limit, cap = self._display_rows(args)
        out = CellResult(
            results,
            displaylimit=limit,
            max_rows=cap,
            show_all=args.show_all,
            explain=args.explain,
            data_dir=self.data_dir(),
        )
        if args.out:
            self.user_ns[args.out] = _convert(out, args)
        return out

    def _display_rows(self, args: magic_args.MagicArgs) -> tuple[int, int]:
        """(displaylimit, cap on "every row") for this cell: settings, then --rows."""
        return magic_args.display_rows(
            args, self.settings.displaylimit, self.settings.display_max_rows
        )

    def _live(self, results: list[Any], args: magic_args.MagicArgs) -> live.LiveView:
        """A cell that subscribed: its last subscription becomes a live view."""
        from IPython.display import display

        *others, last = [r for r in results if r.subscription is not None]
        for r in others:  # one live view per cell
            r.subscription.close()
        before = [r for r in results if r.subscription is None]
        limit, cap = self._display_rows(args)
        if before:
            display(CellResult(before, displaylimit=limit, max_rows=cap))
        view = live.start_view(
            last,
            displaylimit=limit,
            max_rows=cap,
            updates=int(args.updates) if args.updates is not None else None,
            seconds=float(args.for_seconds) if args.for_seconds is not None else None,
        )
        if view.running:
            self.views[view.id] = view
        return view

    def _stop(self, args: magic_args.MagicArgs) -> None:
        try:
            stopped = live.stop_views(self.views, args.rest.strip().strip("'\"") or None)
        except KeyError as err:
            raise UsageError(str(err.args[0])) from None
        for view in stopped:
            print(f"Stopped live query {view.id}")
        if not stopped:
            print("No live query is running")

    def _source(self, args: magic_args.MagicArgs, cell: str | None) -> SqlSource:
        if cell is None:
            return SqlSource(args.rest, where="statement", data_dir=self.data_dir())
        if args.rest.strip():
            raise UsageError(
                f"unexpected text on the %%kalam line: {args.rest.strip()!r}; "
                "SQL goes in the cell body"
            )
        # Line 1 of the cell is the %%kalam line, so SQL line n is cell line n + 1.
        return SqlSource(cell, line_offset=1, where="cell", data_dir=self.data_dir())

    def _watched(self, executor: Executor) -> Executor:
        """``executor`` with a progress line for statements running longer than
        ``Kalam.progress_after`` seconds (elapsed time, rows so far)."""
        after = self.settings.progress_after
        if after <= 0:
            return executor

        def run(
            engine: AnyEngine, sql: str, params: dict[str, Any] | None, user: str, bar: ProgressBar
        ) -> Result:
            def rows() -> int:
                return max((q["rows"] for q in engine.running(user)), default=0)

            with QueryProgress(rows, after=after):
                return executor(engine, sql, params, user, bar)

        return run

    def _schema_command(self, engine: AnyEngine, words: list[str], user: str) -> CellResult:
        """``tables [namespace]`` / ``describe [namespace.]table``, from the system tables."""
        started = time.perf_counter()
        try:
            if words[0] == "tables" and len(words) <= 2:
                results = [schema.tables(engine, user, words[1] if len(words) == 2 else None)]
            elif words[0] == "describe" and len(words) == 2:
                results = schema.describe(
                    engine, user, words[1], namespace=engine.namespace_of(user)
                )
            else:
                raise UsageError(f"usage: {schema.USAGE}")
        except schema.SchemaCommandError as err:
            raise UsageError(f"{err}. Usage: {schema.USAGE}") from None
        except KalamError as err:
            raise KalamCellError(
                err, position=None, source_line=None, data_dir=self.data_dir()
            ) from err
        for r in results:
            r.elapsed_ms = (time.perf_counter() - started) * 1000
        return CellResult(results, displaylimit=0, data_dir=self.data_dir())

    def _chart(
        self, engine: AnyEngine, source: SqlSource, args: magic_args.MagicArgs, user: str
    ) -> charts.Chart:
        """Run the cell and draw its last query; hist / box / count bars are
        computed by the engine (see :mod:`kalam_magic.charts`)."""
        try:
            spec = charts.ChartSpec(args.chart or "", args.x or "", args.y, args.color)
            results = run_sql(
                engine,
                source,
                user=user,
                namespace=self.user_ns,
                executor=self._watched(
                    charts_run.chart_executor(spec, len(split_statements(source.text)))
                ),
                progress_threshold=self.settings.progress_threshold,
            )
        except charts.ChartError as err:
            raise UsageError(str(err)) from None
        last = results[-1]
        if not last.is_query:
            raise UsageError("--chart draws a query: the cell's last statement must be a SELECT")
        if len(results) > 1:
            display(CellResult(results[:-1], displaylimit=self.settings.displaylimit))
        try:
            chart = charts.build(spec, last.table)
        except charts.ChartError as err:
            raise UsageError(str(err)) from None
        if args.out:
            self.user_ns[args.out] = _convert(CellResult([last]), args)
        return chart

    def _persist(self, engine: AnyEngine, args: magic_args.MagicArgs, user: str) -> CellResult:
        assert args.persist is not None
        target = magic_args.persist_target(args.rest)
        if args.persist not in self.user_ns:
            raise UsageError(f"--persist: {args.persist} is not defined in the notebook")
        data = bulk.to_arrow(self.user_ns[args.persist], args.persist)
        try:
            result = bulk.persist(
                engine,
                data,
                target,
                user=user,
                primary_key=args.key,
                batch_rows=self.settings.persist_batch_rows,
                progress_threshold=self.settings.progress_threshold,
            )
        except KalamError as err:
            raise KalamCellError(
                err, position=None, source_line=None, data_dir=self.data_dir()
            ) from err
        return CellResult([result], displaylimit=self.settings.displaylimit)


def _convert(out: CellResult, args: magic_args.MagicArgs) -> Any:
    if args.arrow:
        return out.to_arrow()
    if args.polars:
        return out.to_polars()
    return out.to_pandas()


KalamMagics.kalam.__doc__ = f"""Run SQL against the embedded Kalam engine.

    %kalam [options] SQL
    %%kalam [options]
    SQL; SQL; ...

A cell may hold several ';'-separated statements; they run in order and the
cell stops at the first error. Non-query statements show a status line; the
last query (every query with --all) shows as a table.

Schema at a glance: `%kalam tables [namespace]` lists the tables with their
hot rows, segments, size and last flush; `%kalam describe [namespace.]table`
shows one table's columns. `--chart KIND --x COL [--y COL] [--color COL]`
draws the last query (hist, box and a bar without --y are computed by the
engine).

Python values are bound parameters: `:name` reads the notebook variable
`name`; it is never pasted into the SQL text. `{{name}}` is refused.

Options (on the magic line only):
{magic_args.options_help()}

Settings (%config Kalam.<name> = value):
{settings_help()}
"""
