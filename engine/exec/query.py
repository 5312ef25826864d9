"""Run SELECTs in DataFusion.

One long-lived ``SessionContext`` per engine (``QueryContext``) plans every
query. Its ``kalam`` catalog is a Python catalog provider that holds no tables
of its own: while one query is being planned it answers with exactly the
tables that query references, each already narrowed to what the session
user may see, and with nothing at any other time. Planning is serialised
(≈1 ms), so what one query resolved is never visible to another; execution,
the expensive part, runs in parallel, because a planned DataFrame already
holds its tables. That makes user isolation hold for every query shape
(joins, subqueries, CTEs, UNION, EXPLAIN) exactly as with a context per
query: other users' rows are never resolvable at all. Only SELECTs ever reach
DataFusion (DDL, DML and SET are refused by ``SQLOptions``).

A CTE the statement reads more than once is computed once, before the main
query, from the very tables the main query is planned over (one snapshot),
and the main query reads its rows (``engine.sql.ctes``): within a statement
a CTE has one value, as in PostgreSQL. Its rows are collected like any
result (cancellable, never handed to a streaming result sink) and live only
until the statement's run returns.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
from datafusion import SessionConfig, SessionContext, SQLOptions
from datafusion.catalog import CatalogProvider, SchemaProvider, Table
from sqlglot import exp

from engine.errors import (
    InvalidOptionError,
    KalamError,
    NamespaceNotFoundError,
    ParameterError,
    QueryError,
    SqlParseError,
    TableNotFoundError,
)
from engine.exec import diagnose
from engine.exec.cast import plain_schema, plain_strings
from engine.exec.frames import arrow_frame
from engine.exec.live import feeds_result_sink
from engine.exec.pruning import scan_filters
from engine.exec.segment_cache import files_only
from engine.names import SYSTEM_COLUMNS
from engine.sql.ctes import STAND_IN_NAMESPACE, Materialised, plan_ctes
from engine.sql.mapping import ident
from engine.sql.params import check_int_range
from engine.sql.query_edits import hidden_star_edits, quantified_subquery_edits
from engine.sql.tokens import Edit, apply_edits, edited_to_original, offset_of, position

CATALOG = "kalam"
# Default size of the shared context's Parquet metadata cache
# (``Engine.open(metadata_cache_mb=...)``).
METADATA_CACHE_MB = 64
_OPTIONS = SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
# Query shapes whose nested-loop-join answer the context remembers.
NESTED_LOOP_SHAPES = 512
_POSITION = re.compile(r"at Line: (\d+), Column: (\d+)")


@dataclass
class ScanSource:
    """One table reference resolved for a query.

    ``build(ctx, scans)`` registers nothing itself; it returns the table's
    data (a pyarrow Table or a DataFusion DataFrame) and its scan figures.
    ``scans`` holds the filters of every scan of this table in the query's
    optimized plan (``None`` when unknown) so cold segments can be pruned."""

    namespace: str
    name: str
    schema: pa.Schema
    build: Callable[[SessionContext, list[tuple[Any, ...]] | None], tuple[Any, dict[str, int]]]
    needs_filters: bool = False
    base_table: bool = True  # a Kalam table (has hidden columns), not a system table
    # count(*) / min / max from metadata: [(fn, column)] -> (values, figures) or None
    aggregates: Callable[[list[tuple[str, str | None]], SessionContext], Any] | None = None
    # ``SELECT <columns> FROM t LIMIT n``: n rows (data, figures) that answer
    # it, when they are at hand without a scan; None otherwise
    head: Callable[[SessionContext, int], tuple[pa.Table, dict[str, int]] | None] | None = None


Resolver = Callable[[str | None, str, bool, bool], ScanSource]


def referenced_tables(tree: exp.Expression) -> list[tuple[str | None, str]]:
    """Tables a query reads (CTE names and table functions excluded), in order."""
    ctes = {ident(c.args["alias"].this) for c in tree.find_all(exp.CTE) if c.args.get("alias")}
    out: list[tuple[str | None, str]] = []
    for t in tree.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            continue  # table function such as range(0, 10)
        db = t.args.get("db")
        ref = (ident(db) if db else None, ident(t.this))
        if ref[0] is None and ref[1] in ctes:
            continue
        if t.args.get("catalog"):
            raise QueryError(f"Table names have at most two parts (namespace.table): {t.sql()}")
        if ref not in out:
            out.append(ref)
    return out


def metadata_aggregates(tree: exp.Expression) -> list[tuple[str, str | None]] | None:
    """For ``SELECT count(*) | min(c) | max(c) [[AS] name], ... FROM t`` and
    nothing else (no WHERE, GROUP BY, DISTINCT, ORDER BY, LIMIT, join, CTE):
    the aggregates as [("count", None) | ("min" | "max", column)]."""
    if not isinstance(tree, exp.Select):
        return None
    if {k for k, v in tree.args.items() if v} - {"expressions", "from_"}:
        return None
    from_ = tree.args.get("from_")
    ref = from_.this if from_ is not None else None
    if not isinstance(ref, exp.Table) or not isinstance(ref.this, exp.Identifier):
        return None
    names = {ident(ref.this), ref.alias_or_name}
    out: list[tuple[str, str | None]] = []
    for item in tree.expressions:
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
            out.append(("count", None))
        elif isinstance(node, (exp.Min, exp.Max)) and not node.args.get("expressions"):
            arg = node.this
            if not isinstance(arg, exp.Column) or isinstance(arg.this, exp.Star):
                return None
            if arg.args.get("table") is not None and ident(arg.args["table"]) not in names:
                return None
            if arg.args.get("db") is not None:
                return None
            out.append(("min" if isinstance(node, exp.Min) else "max", ident(arg.this)))
        else:
            return None
    return out or None


def limit_rows(tree: exp.Expression) -> int | None:
    """For ``SELECT <columns or *> FROM t LIMIT n [OFFSET m]`` and nothing
    else (no WHERE, ORDER BY, GROUP BY, DISTINCT, aggregate or expression,
    join, CTE): n + m, how many of t's rows, any of them, answer it."""
    if not isinstance(tree, exp.Select):
        return None
    if {k for k, v in tree.args.items() if v} - {"expressions", "from_", "limit", "offset"}:
        return None
    from_ = tree.args.get("from_")
    ref = from_.this if from_ is not None else None
    if not isinstance(ref, exp.Table) or not isinstance(ref.this, exp.Identifier):
        return None
    for item in tree.expressions:
        node = item.this if isinstance(item, exp.Alias) else item
        if not isinstance(node, (exp.Star, exp.Column)):
            return None
    limit, offset = tree.args.get("limit"), tree.args.get("offset")
    if not isinstance(limit, exp.Limit) or (
        offset is not None and not isinstance(offset, exp.Offset)
    ):
        return None
    total = 0
    for part in (limit, offset):
        value = part.expression if part is not None else exp.Literal.number(0)
        if not isinstance(value, exp.Literal) or value.is_string or not value.this.isdigit():
            return None
        total += int(value.this)
    return total


def hidden_columns_used(tree: exp.Expression) -> tuple[bool, bool]:
    """(names _seq or _deleted, names _deleted) anywhere in the query."""
    names = {ident(c) for c in tree.find_all(exp.Column) if not isinstance(c.this, exp.Star)}
    return bool(names & set(SYSTEM_COLUMNS)), "_deleted" in names


def _config(namespace: str) -> SessionConfig:
    # File statistics on (DataFusion's default): the join planner needs row
    # counts to put the small side of a join on the build side (TPC-H: up to
    # 1.5x CPU without them). Pruning whole segments on their footers is
    # safe in this context: a segment whose Parquet float min/max omit its
    # NaNs (written before float columns lost their file statistics) is read
    # by a dataset scan that never sees a float predicate
    # (``ColdTier._segment_frame``); every other segment has float statistics
    # only where the column holds no NaN.
    #
    # Partial aggregation given up sooner than DataFusion's default (0.8
    # groups per input row in the first 100k rows): a table of N segments is
    # a UNION of N scans (ColdTier.frame), so a GROUP BY over it makes N
    # partial aggregates, and on a high-cardinality key (TPC-H Q17's
    # l_partkey, 7 segments at SF 1) each holds nearly every group: 2.2M
    # partial rows for the final aggregate instead of 0.4M over a listing
    # scan. Q17 1.38x -> 1.1x raw DataFusion's CPU; TPC-H geomean 0.94x.
    return (
        SessionConfig()
        .with_default_catalog_and_schema(CATALOG, namespace)
        .with_information_schema(False)
        .with_target_partitions(2)
        .set("datafusion.execution.collect_statistics", "true")
        .set("datafusion.execution.skip_partial_aggregation_probe_ratio_threshold", "0.5")
    )


class _Namespace(SchemaProvider):
    """One namespace of the ``kalam`` catalog: the tables the query being
    planned resolved in it, and nothing otherwise."""

    def __init__(self, owner: QueryContext, name: str) -> None:
        self._owner = owner
        self._name = name

    def owner_name(self) -> str | None:
        return CATALOG

    def table_names(self) -> set[str]:
        return {t for ns, t in self._owner.planning_tables() if ns == self._name}

    def table(self, name: str) -> Table | None:
        return self._owner.planning_tables().get((self._name, name))

    def table_exist(self, name: str) -> bool:
        return (self._name, name) in self._owner.planning_tables()

    def register_table(self, name: str, table: Any) -> None:
        raise QueryError("Tables cannot be registered in the query catalog")

    def deregister_table(self, name: str, cascade: bool = True) -> None:
        raise QueryError("Tables cannot be removed from the query catalog")


class _Catalog(CatalogProvider):
    def __init__(self, owner: QueryContext) -> None:
        self._owner = owner

    def schema_names(self) -> set[str]:
        return {ns for ns, _ in self._owner.planning_tables()}

    def schema(self, name: str) -> Any:
        return _Namespace(self._owner, name)

    def register_schema(self, name: str, schema: Any) -> None:
        raise QueryError("Namespaces cannot be created in the query catalog")

    def deregister_schema(self, name: str, cascade: bool) -> None:
        raise QueryError("Namespaces cannot be removed from the query catalog")


class QueryContext:
    """The engine's one long-lived DataFusion context (see the module docstring).

    ``planning(tables, namespace)`` is the only way to plan in it: it holds
    the planning lock, makes ``tables`` ({(namespace, name): Table}) the whole
    catalog and ``namespace`` the default, and empties the catalog again when
    the block ends, whatever happens."""

    def __init__(self, *, metadata_cache_mb: int = METADATA_CACHE_MB) -> None:
        if not isinstance(metadata_cache_mb, int) or metadata_cache_mb < 0:
            raise InvalidOptionError(
                f"metadata_cache_mb must be a whole number of MB >= 0, not {metadata_cache_mb!r}"
            )
        self.ctx = SessionContext(_config("default"))
        # Parquet footers (and page indexes) DataFusion keeps between queries;
        # it checks each file's size and modification time before using one.
        self.ctx.sql(f"SET datafusion.runtime.metadata_cache_limit = '{metadata_cache_mb}M'")
        self.ctx.register_catalog_provider(CATALOG, _Catalog(self))
        self._lock = threading.Lock()
        self._owner: int | None = None  # the planning thread's ident
        self._tables: dict[tuple[str, str], Table] = {}
        self._namespace = "default"
        self.plans = 0
        self._nested: dict[tuple[Any, ...], bool] = {}  # query shape -> nested-loop join
        # query shape -> each table's scan filters (QueryRunner._plan_scans)
        self._scan_filters: dict[tuple[Any, ...], dict[str, list[tuple[Any, ...]]]] = {}
        self._shapes_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<QueryContext {self.plans} plan(s)>"

    def nested_loop(self, shape: tuple[Any, ...], df: Any, *, remember: bool = True) -> bool:
        """Whether ``df``'s optimized plan joins without equality keys
        (``nested_loop_join``), remembered per query shape: the SQL text,
        default namespace and the schemas of the tables it reads. The answer
        depends on nothing else (the logical optimizer does not look at
        data), and optimizing a plan only to look at it cost 2-6 ms a TPC-H
        query, on top of the optimization its execution does anyway.

        ``remember=False`` always optimizes (EXPLAIN): each optimization
        numbers the subquery aliases it makes from a counter in the context,
        so an EXPLAIN's text is the same every time only if the same
        optimizations precede it."""
        with self._shapes_lock:  # (the planning lock is held by the caller)
            hit = self._nested.get(shape) if remember else None
        if hit is not None:
            return hit
        found = nested_loop_join(df.optimized_logical_plan())
        with self._shapes_lock:
            self._nested[shape] = found
            while len(self._nested) > NESTED_LOOP_SHAPES:
                self._nested.pop(next(iter(self._nested)))
        return found

    def scan_filters(
        self,
        shape: tuple[Any, ...] | None,
        plan: Callable[[], dict[str, list[tuple[Any, ...]]]],
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Each table's scan filters in the optimized plan of a query, planned
        by ``plan()`` once per query shape (SQL text, default namespace, the
        schemas of the tables it reads; ``None``: not remembered). Like the
        nested-loop answer, they depend on nothing else: the plan is made
        over empty stand-ins, so data never enters it, and a DDL that changes
        a table's schema changes the shape. A second planning only to learn
        them cost ~3 ms a TPC-H query (SF 1, tables of 2+ segments)."""
        if shape is None:
            return plan()
        with self._shapes_lock:
            hit = self._scan_filters.get(shape)
        if hit is not None:
            return hit
        found = plan()
        with self._shapes_lock:
            self._scan_filters[shape] = found
            while len(self._scan_filters) > NESTED_LOOP_SHAPES:
                self._scan_filters.pop(next(iter(self._scan_filters)))
        return found

    def planning_tables(self) -> dict[tuple[str, str], Table]:
        # Only the planning thread ever sees the tables: a call from any other
        # thread (none is expected) gets an empty catalog, never another
        # query's tables.
        if self._owner != threading.get_ident():
            return {}
        return self._tables

    @contextmanager
    def planning(
        self, tables: dict[tuple[str, str], Table], namespace: str
    ) -> Iterator[SessionContext]:
        with self._lock:
            self._owner = threading.get_ident()
            self._tables = tables
            try:
                if namespace != self._namespace:
                    # Names are allowlisted (engine.names), so this is a plain identifier.
                    self.ctx.sql(f"SET datafusion.catalog.default_schema = '{namespace}'")
                    self._namespace = namespace
                self.plans += 1
                yield self.ctx
            finally:
                self._tables = {}
                self._owner = None


class QueryRunner:
    """Builds the per-query DataFusion context and runs one query."""

    def __init__(
        self,
        resolve: Resolver,
        is_base: Callable[[str | None, str], bool],
        collect: Callable[[Any], pa.Table] | None = None,
        context: QueryContext | None = None,
    ) -> None:
        self._resolve = resolve
        self._is_base = is_base
        self._collect = collect or (lambda df: df.to_arrow_table())
        self._context = context if context is not None else QueryContext()

    def _plan_scans(
        self,
        sql: str,
        params: dict[str, Any],
        sources: list[ScanSource],
        namespace: str,
        where: Callable[[int, int], tuple[int, int]],
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Plan the query over empty stand-ins to learn each scan's filters."""
        stand_ins = {(s.namespace, s.name): _empty_provider(s.schema) for s in sources}
        try:
            with self._context.planning(stand_ins, namespace) as ctx:
                df = ctx.sql_with_options(sql, _OPTIONS, param_values=params)
            plan = df.optimized_logical_plan()
        except KalamError:
            raise
        except Exception as exc:
            raise datafusion_error(exc, where=where, sql=sql) from None
        out: dict[str, list[tuple[Any, ...]]] = {}
        names = {f"{s.namespace}.{s.name}" for s in sources}
        for scan in scan_filters(plan):
            parts = scan.table_name.split(".")
            qualified = ".".join(parts[-2:]) if len(parts) >= 2 else f"{namespace}.{parts[0]}"
            if qualified in names:
                out.setdefault(qualified, []).append(tuple(scan.filters))
        words = set(re.findall(r"[A-Za-z0-9_]+", plan.display_indent()))
        for src in sources:
            qualified = f"{src.namespace}.{src.name}"
            if qualified not in out and src.name not in words:
                # The optimizer proved the table contributes no rows (e.g. `pk IS NULL`).
                out[qualified] = []
        return out

    def _from_metadata(
        self,
        tree: exp.Expression,
        sql: str,
        params: dict[str, Any],
        src: ScanSource,
        namespace: str,
        where: Callable[[int, int], tuple[int, int]],
    ) -> tuple[pa.Table, dict[str, dict[str, int]]] | None:
        wanted = metadata_aggregates(tree) if src.aggregates is not None else None
        if wanted is None or src.aggregates is None:
            return None
        found = src.aggregates(wanted, self._context.ctx)
        if found is None:
            return None
        values, figures = found
        stand_in = {(src.namespace, src.name): _empty_provider(src.schema)}
        try:
            with self._context.planning(stand_in, namespace) as ctx:
                schema = ctx.sql_with_options(sql, _OPTIONS, param_values=params).schema()
        except Exception as exc:
            raise datafusion_error(exc, where=where) from None
        if len(schema) != len(values):
            return None
        arrays = [pa.array([v], type=f.type) for v, f in zip(values, schema, strict=True)]
        table = pa.Table.from_arrays(arrays, schema=schema)
        return table, {f"{src.namespace}.{src.name}": figures}

    @feeds_result_sink
    def run(
        self,
        tree: exp.Expression,
        df_sql: str,
        params: dict[str, Any],
        *,
        namespace: str,
        stmt_line: int = 1,
        stmt_column: int = 1,
        overrides: dict[str, tuple[Any, dict[str, int]]] | None = None,
        hidden: bool = False,
        locate: Callable[[int], tuple[int, int] | None] | None = None,
        metadata: bool = False,
        explain: bool = False,
    ) -> tuple[pa.Table, dict[str, dict[str, int]]]:
        """Run ``df_sql``, whose tables and hidden columns ``tree`` (a sqlglot
        tree of the statement) names. ``overrides`` gives ready data for some
        tables (``"ns.t"`` -> (data, figures)), e.g. the one row a primary-key
        lookup found. ``hidden`` registers ``_seq`` / ``_deleted`` even if the
        tree does not name them. ``locate`` maps an offset of ``df_sql`` to a
        (line, column) of the statement, when ``df_sql`` is not its text.
        ``metadata`` lets ``count(*)`` / ``min`` / ``max`` of a whole table be
        answered from its statistics (``metadata_aggregates``) when they are
        exact; DataFusion then only plans the query, for the result's shape.
        ``explain``: the statement is an EXPLAIN, whose plan text must not
        depend on what earlier queries left in the context's caches."""
        overrides = overrides or {}
        named, deleted = hidden_columns_used(tree)
        hidden = hidden or named
        ctx = self._context.ctx
        sources: list[ScanSource] = []
        seen: set[tuple[str, str]] = set()
        for ns, name in referenced_tables(tree):
            key = (ns or namespace, name)
            if key in seen:  # `t` and `default.t` are the same table
                continue
            seen.add(key)
            try:
                sources.append(self._resolve(ns, name, hidden, deleted))
            except (TableNotFoundError, NamespaceNotFoundError) as err:
                _point_at_table(err, df_sql, ns, name, stmt_line, stmt_column, locate)
                raise
        edits: list[Edit] = []
        if hidden:
            edits += hidden_star_edits(df_sql, self._is_base)
        if _has_quantified_subquery(tree):
            edits += quantified_subquery_edits(df_sql)
        sql = apply_edits(df_sql, edits)
        # CTEs computed once (engine.sql.ctes): ``sql`` becomes the text with
        # every CTE inlined, which DataFusion plans for the scan filters.
        ctes = plan_ctes(sql, tree)

        def mapper(text: str, more: list[Edit]) -> Callable[[int, int], tuple[int, int]]:
            def where(line: int, column: int) -> tuple[int, int]:
                """A DataFusion error position in ``text`` (``more`` made it
                from ``sql``) -> the statement's line and column."""
                offset = edited_to_original(more, offset_of(text, line, column))
                offset = edited_to_original(edits, offset)
                found = locate(offset) if locate is not None else position(df_sql, offset)
                rel_line, rel_col = found if found is not None else (1, 1)
                return (
                    stmt_line + rel_line - 1,
                    (stmt_column - 1 if rel_line == 1 else 0) + rel_col,
                )

            return where

        where = mapper(sql, [])
        if ctes is not None:
            sql, where = ctes.inlined, mapper(ctes.inlined, ctes.inlined_edits)

        params = {k: _scalar(v) for k, v in params.items()}
        if metadata and not overrides and len(sources) == 1 and not edits and ctes is None:
            answered = self._from_metadata(tree, sql, params, sources[0], namespace, where)
            if answered is not None:
                return answered
        if (metadata or explain) and not overrides and not hidden and len(sources) == 1:
            overrides = _limit_from_head(ctx, tree, sources[0])
        scans: dict[str, list[tuple[Any, ...]]] = {}
        if _may_filter(tree) and any(
            src.needs_filters and f"{src.namespace}.{src.name}" not in overrides for src in sources
        ):
            # Parameter values are left out of the shape (not all hashable):
            # a statement with parameters is planned every time.
            shape = (
                None
                if params or explain
                else (sql, namespace, tuple((s.namespace, s.name, s.schema) for s in sources))
            )
            scans = self._context.scan_filters(
                shape, lambda: self._plan_scans(sql, params, sources, namespace, where)
            )
        stats: dict[str, dict[str, int]] = {}
        tables: dict[tuple[str, str], Table] = {}
        for src in sources:
            qualified = f"{src.namespace}.{src.name}"
            if qualified in overrides:
                data, stats[qualified] = overrides[qualified]
            else:
                # An EXPLAIN plans over the segment files, never the warm cache.
                with files_only() if explain else nullcontext():
                    data, stats[qualified] = src.build(
                        ctx, scans.get(qualified) if src.needs_filters else None
                    )
            if isinstance(data, pa.Table):
                data = arrow_frame(data, src.name)
            tables[(src.namespace, src.name)] = Table(data)
        computed: list[tuple[Materialised, Any]] = []
        # The most rows one table of the statement holds: the build side of
        # a nested-loop join over tables (``nested_loop_batch``; a build side
        # that is itself a join's output may hold more).
        rows = max(
            (s.get("hot_rows", 0) + s.get("cold_rows_scanned", 0) for s in stats.values()),
            default=0,
        )
        if ctes is not None:
            # Each CTE is computed from the same resolved tables as the main
            # query (one snapshot), and its rows live only in ``tables``,
            # which is dropped when this statement's run returns.
            sql, where = ctes.sql, mapper(ctes.sql, ctes.edits)
            for cte in ctes.ctes:
                stand_in, cte_df, cte_rows = self._materialise(
                    cte,
                    tables,
                    params,
                    namespace,
                    mapper(cte.sql, cte.edits),
                    run=ctes.analyze or not explain,
                    rows=rows,
                )
                rows = max(rows, cte_rows)
                tables[(STAND_IN_NAMESPACE, cte.name)] = stand_in
                computed.append((cte, cte_df))
        try:
            df = self._frame(
                sql,
                params,
                tables,
                namespace,
                joins=tree.find(exp.Join, exp.Subquery) is not None,
                explain=explain,
                rows=rows,
            )
            if overrides and len(overrides) == len(sources):
                # Every table is a handful of looked-up rows: nothing worth cancelling.
                result = df.to_arrow_table()
            else:
                result = self._collect(df)
            result = plain_strings(result)
        except KalamError:
            raise
        except Exception as exc:  # DataFusion raises plain Exception / ValueError
            raise datafusion_error(exc, where=where, sql=sql) from None
        result = _as_planned(result, plain_schema(df.schema()))
        if explain and computed:
            result = _with_cte_plans(result, computed)
        return result, stats

    def _frame(
        self,
        sql: str,
        params: dict[str, Any],
        tables: dict[tuple[str, str], Table],
        namespace: str,
        *,
        joins: bool,
        explain: bool,
        rows: int,
    ) -> Any:
        """``sql`` planned over ``tables`` (DataFusion errors propagate);
        ``joins``: it may join (worth checking for a nested-loop join);
        ``rows``: the most rows one of ``tables`` holds."""
        with self._context.planning(tables, namespace) as planner:
            df = planner.sql_with_options(sql, _OPTIONS, param_values=params)
            if joins and self._context.nested_loop(
                (sql, namespace, tuple(t.schema for t in tables.values())),
                df,
                remember=not explain,
            ):
                # Batches sized to the build side: a nested-loop join yields
                # (and so can be cancelled) only between probe batches.
                # The DataFrame keeps the setting it was planned with, so
                # the shared context gets its default back at once.
                batch = nested_loop_batch(rows)
                planner.sql(f"SET {_BATCH_SIZE} = {batch}").collect()
                try:
                    df = planner.sql_with_options(sql, _OPTIONS, param_values=params)
                finally:
                    planner.sql(f"SET {_BATCH_SIZE} = {DEFAULT_BATCH}").collect()
        return df

    def _materialise(
        self,
        cte: Materialised,
        tables: dict[tuple[str, str], Table],
        params: dict[str, Any],
        namespace: str,
        where: Callable[[int, int], tuple[int, int]],
        *,
        run: bool,
        rows: int,
    ) -> tuple[Table, Any, int]:
        """One CTE's rows as a table for the main query, and its DataFrame
        (for EXPLAIN). ``run=False`` (a plain EXPLAIN): planned, not run; the
        main query is planned over an empty stand-in of its shape."""
        try:
            df = self._frame(
                cte.sql, params, tables, namespace, joins=True, explain=not run, rows=rows
            )
            if not run:
                # A dataset, not an in-memory table: DataFusion cannot see it
                # is empty, so the plan shown is the one the rows would get.
                return _empty_provider(df.schema()), df, 0
            data = _collect_apart(self._collect, df)
        except KalamError:
            raise
        except Exception as exc:
            raise datafusion_error(exc, where=where, sql=cte.sql) from None
        stand_in = Table(arrow_frame(_as_planned(data, df.schema()), "materialized_cte"))
        return stand_in, df, data.num_rows


@feeds_result_sink
def _collect_apart(collect: Callable[[Any], pa.Table], df: Any) -> pa.Table:
    """A CTE's rows, collected (cancellable like the query) as a run nested in
    the statement's: they are never the result a streaming sink takes."""
    return collect(df)


def _with_cte_plans(result: pa.Table, computed: list[tuple[Materialised, Any]]) -> pa.Table:
    """An EXPLAIN's rows, then one per CTE computed once: its plan."""
    rows = result.to_pylist()
    for cte, df in computed:
        plan = df.optimized_logical_plan().display_indent()
        rows.append(
            {
                "plan_type": "materialized_cte",
                "plan": f"{cte.name}: computed once for {cte.references} reference(s) as "
                f"{STAND_IN_NAMESPACE}.{cte.name}\n{plan}",
            }
        )
    return pa.Table.from_pylist(rows, schema=result.schema)


_BATCH_SIZE = "datafusion.execution.batch_size"
DEFAULT_BATCH = 8192  # DataFusion's default
NESTED_LOOP_BATCH = 64  # the fewest rows a nested-loop join probes between yields
# A nested-loop join yields (and so can be cancelled) only between probe
# batches: each DataFusion thread finishes the batch it is on against the
# whole build side, at about STEP_S per build row plus PAIR_S per pair
# (measured, datafusion 55, `a.id + b.id > 3` with its arithmetic checked
# for overflow, engine/sql/checked_ints.py; unchecked filters cost less).
# Small batches are slow, though: a 20k x 20k such join took 43 CPU-s at 64
# rows and 2.2 at 8,192. So the batch is as large as keeps one probe batch
# under WIND_DOWN_S, and never smaller than NESTED_LOOP_BATCH, where the
# per-row cost dominates and smaller batches gain nothing.
STEP_S = 7e-6
PAIR_S = 6e-9
WIND_DOWN_S = 0.25


def nested_loop_batch(build_rows: int) -> int:
    """The batch size for a plan with a nested-loop join whose build side
    holds at most ``build_rows`` rows: a power of two from NESTED_LOOP_BATCH
    to DEFAULT_BATCH."""
    room = WIND_DOWN_S / max(build_rows, 1) - STEP_S
    fits = int(room / PAIR_S) if room > 0 else 0
    if fits < NESTED_LOOP_BATCH:
        return NESTED_LOOP_BATCH
    return min(DEFAULT_BATCH, 1 << (fits.bit_length() - 1))


def _limit_from_head(
    ctx: SessionContext, tree: exp.Expression, src: ScanSource
) -> dict[str, tuple[Any, dict[str, int]]]:
    """The one table of ``SELECT <columns> FROM t LIMIT n`` as n rows its
    source has at hand (``ScanSource.head``), so DataFusion plans and runs
    the query over those rows only (EXPLAIN shows it); {} when not."""
    wanted = limit_rows(tree) if src.head is not None else None
    found = src.head(ctx, wanted) if src.head is not None and wanted is not None else None
    return {f"{src.namespace}.{src.name}": found} if found is not None else {}


def _as_planned(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The result with the query's planned schema. An aggregate DataFusion
    answered from file statistics (``count(*)``, ``min``, ``max`` of a
    segment) comes back as a NOT NULL literal where the plan says nullable:
    the same query must not change its result's schema with the data's
    placement."""
    if table.schema.equals(schema) or table.schema.names != schema.names:
        return table
    if any(a.type != b.type for a, b in zip(table.schema, schema, strict=True)):
        return table
    return pa.Table.from_arrays(table.columns, schema=schema)


def nested_loop_join(plan: Any) -> bool:
    """Whether a logical plan joins without equality keys (cross / theta join)."""
    variant = plan.to_variant()
    if type(variant).__name__ == "Join" and not variant.on():
        return True
    return any(nested_loop_join(child) for child in plan.inputs())


def _point_at_table(
    err: KalamError,
    df_sql: str,
    ns: str | None,
    name: str,
    stmt_line: int,
    stmt_column: int,
    locate: Callable[[int], tuple[int, int] | None] | None,
) -> None:
    """Put an unknown table's error under the table's name as written."""
    if err.line is not None:
        return
    offset = diagnose.locate_name(df_sql, f"{ns}.{name}" if ns else name)
    if offset is None:
        return
    found = locate(offset) if locate is not None else position(df_sql, offset)
    if found is None:
        return
    rel_line, rel_col = found
    err.line = stmt_line + rel_line - 1
    err.column = (stmt_column - 1 if rel_line == 1 else 0) + rel_col


def _empty_provider(schema: pa.Schema) -> Table:
    return Table(pads.dataset(schema.empty_table()))


def _scalar(value: Any) -> pa.Scalar:
    if isinstance(value, pa.Scalar):
        return value
    check_int_range(value, "value")
    try:
        return pa.scalar(value)
    except (pa.ArrowException, TypeError, ValueError):
        raise ParameterError(
            f"Cannot bind a parameter of type {type(value).__name__}: use numbers, strings, "
            "bytes, booleans, dates, datetimes or None"
        ) from None


def _may_filter(tree: exp.Expression) -> bool:
    """Whether any scan of the query can get a filter (a query with no WHERE,
    JOIN, HAVING or QUALIFY anywhere reads whole tables: no pruning to plan for)."""
    return tree.find(exp.Where, exp.Join, exp.Having, exp.Qualify) is not None


def _has_quantified_subquery(tree: exp.Expression) -> bool:
    """Whether the query compares with ANY / SOME / ALL (sqlglot reads SOME as a call)."""
    for node in tree.find_all(exp.Any, exp.All, exp.Anonymous):
        if not isinstance(node, exp.Anonymous) or node.name.upper() == "SOME":
            return True
    return False


def datafusion_error(
    exc: Exception,
    line: int = 1,
    column: int = 1,
    *,
    where: Callable[[int, int], tuple[int, int]] | None = None,
    sql: str | None = None,
) -> KalamError:
    """A DataFusion failure as a ``KalamError`` (the message mapping lives in
    ``engine.exec.diagnose``). A position DataFusion reports is relative to
    the text it got, ``sql``: ``where`` maps it to the statement's line and
    column (by default the text is the statement, starting at ``line``,
    ``column``). Without a reported position, the error points at the token
    it is about (the unknown column, the function) when ``sql`` names it."""
    if where is None:

        def where(ln: int, col: int) -> tuple[int, int]:
            return line + ln - 1, (column - 1 if ln == 1 else 0) + col

    text = str(exc)
    for prefix in ("DataFusion error: ", "Error during planning: ", "Execution error: "):
        text = text.replace(prefix, "")
    pos = _POSITION.search(text)
    if "ParserError" in text or text.startswith("SQL error"):
        msg = text.replace("SQL error: ParserError(", "").rstrip(")").strip('"')
        msg = _POSITION.sub("", msg).strip().rstrip(" at").strip()
        msg = msg.replace("Expected: ", "expected ").replace(", found: EOF", ", found the end")
        if pos:
            at_line, at_column = where(int(pos.group(1)), int(pos.group(2)))
        elif sql is not None and "found the end" in msg:
            at_line, at_column = where(*position(sql, len(sql.rstrip())))
        else:
            at_line, at_column = where(1, 1)
        return SqlParseError(f"Syntax error: {msg}", line=at_line, column=at_column)
    if (
        "DDL not supported" in text
        or "DML not supported" in text
        or "Statement not supported" in text
    ):
        return QueryError(
            "Only SELECT queries run here; use the engine's own statements for changes"
        )
    found = diagnose.explain(text, sql)
    err = found.error
    if found.offset is not None and sql is not None:
        err.line, err.column = where(*position(sql, found.offset))
    # DataFusion's own wording, for callers that route around what it refuses
    # (engine.sql.retry decorrelates the subqueries it cannot plan).
    err.engine_text = text
    return err
