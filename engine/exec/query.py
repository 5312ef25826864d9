"""Run SELECTs in DataFusion.

Each query gets a fresh ``SessionContext`` (≈0.1 ms) holding only the tables
it references, each already narrowed to what the session user may see. That
makes user isolation hold for every query shape (joins, subqueries, CTEs,
UNION, EXPLAIN): other users' rows are never registered at all. Only SELECTs
ever reach DataFusion (DDL, DML and SET are refused by ``SQLOptions``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
from datafusion import SessionConfig, SessionContext, SQLOptions
from datafusion.catalog import Schema, Table
from sqlglot import exp

from engine.errors import (
    ColumnNotFoundError,
    KalamError,
    ParameterError,
    QueryError,
    SqlParseError,
)
from engine.exec.pruning import scan_filters
from engine.names import SYSTEM_COLUMNS
from engine.sql.mapping import ident

CATALOG = "kalam"
_OPTIONS = SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
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


def hidden_columns_used(tree: exp.Expression) -> tuple[bool, bool]:
    """(names _seq or _deleted, names _deleted) anywhere in the query."""
    names = {ident(c) for c in tree.find_all(exp.Column) if not isinstance(c.this, exp.Star)}
    return bool(names & set(SYSTEM_COLUMNS)), "_deleted" in names


def _exclude_hidden_from_stars(
    tree: exp.Expression, base_aliases: Callable[[exp.Select], list]
) -> bool:
    """Rewrite ``*`` / ``t.*`` over Kalam tables to leave out the hidden columns.

    Needed only when a query names a hidden column, because only then are the
    hidden columns registered. Returns whether anything changed."""
    changed = False
    for select in list(tree.find_all(exp.Select)):
        sources = base_aliases(select)  # [(alias name, is_base_table, namespace as written)]
        if not any(is_base for _, is_base, _ in sources):
            continue
        new: list[exp.Expression] = []
        for proj in select.expressions:
            if isinstance(proj, exp.Star):
                for alias, is_base, db in sources:
                    new.append(_star(alias, is_base, db))
                changed = True
            elif isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star):
                alias = ident(proj.args.get("table"))
                match = next((src for src in sources if src[0] == alias), None)
                is_base = bool(match and match[1])
                new.append(_star(alias, is_base, match[2] if match else None))
                changed = changed or is_base
            else:
                new.append(proj)
        select.set("expressions", new)
    return changed


def _star(alias: str, is_base: bool, db: str | None = None) -> exp.Expression:
    star = exp.Star()
    if is_base:
        star.set("except_", [exp.column(c) for c in SYSTEM_COLUMNS])
    column = exp.Column(this=star, table=exp.to_identifier(alias, quoted=True))
    if db:
        column.set("db", exp.to_identifier(db, quoted=True))
    return column


def _sources(
    select: exp.Select, is_base: Callable[[str | None, str], bool]
) -> list[tuple[str, bool, str | None]]:
    """(name to qualify a star with, is a Kalam table, namespace as written) per
    FROM / JOIN item; an unaliased ``ns.t`` is qualified as ``ns.t``."""
    out: list[tuple[str, bool, str | None]] = []
    from_ = select.args.get("from_")
    items = [from_.this] if from_ is not None else []
    items += [j.this for j in select.args.get("joins") or []]
    for item in items:
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            db = item.args.get("db")
            ns = ident(db) if db else None
            base = is_base(ns, ident(item.this))
            if item.alias:
                out.append((item.alias, base, None))
            else:
                out.append((ident(item.this), base, ns))
        else:
            out.append((item.alias_or_name, False, None))
    return out


def _context(namespace: str) -> SessionContext:
    # File-level statistics off: DataFusion would prune whole segments on their
    # Parquet footers, whose float min/max omit NaN (segments written before
    # float columns lost their file statistics still have them). The manifest
    # already pruned files before DataFusion sees them; measured cost: none.
    return SessionContext(
        SessionConfig()
        .with_default_catalog_and_schema(CATALOG, namespace)
        .with_information_schema(False)
        .with_target_partitions(2)
        .set("datafusion.execution.collect_statistics", "false")
    )


class QueryRunner:
    """Builds the per-query DataFusion context and runs one query."""

    def __init__(
        self,
        resolve: Resolver,
        is_base: Callable[[str | None, str], bool],
        collect: Callable[[Any], pa.Table] | None = None,
    ) -> None:
        self._resolve = resolve
        self._is_base = is_base
        self._collect = collect or (lambda df: df.to_arrow_table())

    def _plan_scans(
        self,
        sql: str,
        params: dict[str, Any],
        sources: list[ScanSource],
        namespace: str,
        line: int,
        column: int,
    ) -> dict[str, list[tuple[Any, ...]]]:
        """Plan the query over empty stand-ins to learn each scan's filters."""
        ctx = _context(namespace)
        catalog = ctx.catalog(CATALOG)
        schemas = {namespace}
        for src in sources:
            if src.namespace not in schemas:
                catalog.register_schema(src.namespace, Schema.memory_schema())
                schemas.add(src.namespace)
            catalog.schema(src.namespace).register_table(src.name, _empty_provider(src.schema))
        try:
            plan = ctx.sql_with_options(sql, _OPTIONS, param_values=params).optimized_logical_plan()
        except Exception as exc:
            raise datafusion_error(exc, line, column) from None
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
    ) -> tuple[pa.Table, dict[str, dict[str, int]]]:
        """Run ``df_sql`` (whose parsed form is ``tree``). ``overrides`` gives
        ready data for some tables (``"ns.t"`` -> (data, figures)), e.g. the one
        row a primary-key lookup found."""
        overrides = overrides or {}
        hidden, deleted = hidden_columns_used(tree)
        ctx = _context(namespace)
        catalog = ctx.catalog(CATALOG)
        sources: list[ScanSource] = []
        seen: set[tuple[str, str]] = set()
        for ns, name in referenced_tables(tree):
            key = (ns or namespace, name)
            if key in seen:  # `t` and `default.t` are the same table
                continue
            seen.add(key)
            sources.append(self._resolve(ns, name, hidden, deleted))
        sql = df_sql
        if hidden:
            tree = tree.copy()
            if _exclude_hidden_from_stars(tree, lambda s: _sources(s, self._is_base)):
                sql = tree.sql("duckdb")
        params = {k: _scalar(v) for k, v in params.items()}
        scans: dict[str, list[tuple[Any, ...]]] = {}
        if any(
            src.needs_filters and f"{src.namespace}.{src.name}" not in overrides for src in sources
        ):
            scans = self._plan_scans(sql, params, sources, namespace, stmt_line, stmt_column)
        schemas = {namespace}
        stats: dict[str, dict[str, int]] = {}
        for src in sources:
            if src.namespace not in schemas:
                catalog.register_schema(src.namespace, Schema.memory_schema())
                schemas.add(src.namespace)
            qualified = f"{src.namespace}.{src.name}"
            if qualified in overrides:
                data, stats[qualified] = overrides[qualified]
            else:
                data, stats[qualified] = src.build(
                    ctx, scans.get(qualified) if src.needs_filters else None
                )
            if isinstance(data, pa.Table):
                batches = data.to_batches() or [pa.RecordBatch.from_pylist([], schema=data.schema)]
                ctx.register_record_batches(qualified, [batches])
            else:
                catalog.schema(src.namespace).register_table(src.name, Table(data))
        try:
            df = ctx.sql_with_options(sql, _OPTIONS, param_values=params)
            if overrides and len(overrides) == len(sources):
                # Every table is a handful of looked-up rows: nothing worth cancelling.
                result = df.to_arrow_table()
            else:
                result = self._collect(df)
        except KalamError:
            raise
        except Exception as exc:  # DataFusion raises plain Exception / ValueError
            raise datafusion_error(exc, stmt_line, stmt_column) from None
        return result, stats


def _empty_provider(schema: pa.Schema) -> Table:
    return Table(pads.dataset(schema.empty_table()))


def _scalar(value: Any) -> pa.Scalar:
    if isinstance(value, pa.Scalar):
        return value
    try:
        return pa.scalar(value)
    except (pa.ArrowException, TypeError, ValueError):
        raise ParameterError(
            f"Cannot bind a parameter of type {type(value).__name__}: use numbers, strings, "
            "bytes, booleans, dates, datetimes or None"
        ) from None


def datafusion_error(exc: Exception, line: int = 1, column: int = 1) -> KalamError:
    text = str(exc)
    for prefix in ("DataFusion error: ", "Error during planning: ", "Execution error: "):
        text = text.replace(prefix, "")
    pos = _POSITION.search(text)
    if "ParserError" in text or text.startswith("SQL error"):
        msg = text.replace("SQL error: ParserError(", "").rstrip(")").strip('"')
        msg = _POSITION.sub("", msg).strip().rstrip(" at").strip()
        if pos:
            ln, col = int(pos.group(1)), int(pos.group(2))
            return SqlParseError(
                f"Syntax error: {msg}",
                line=line + ln - 1,
                column=(column - 1 if ln == 1 else 0) + col,
            )
        return SqlParseError(f"Syntax error: {msg}", line=line, column=column)
    if "No field named" in text:
        first = text.splitlines()[0].replace("Schema error: ", "")
        return ColumnNotFoundError(f"Unknown column: {first}")
    if (
        "DDL not supported" in text
        or "DML not supported" in text
        or "Statement not supported" in text
    ):
        return QueryError(
            "Only SELECT queries run here; use the engine's own statements for changes"
        )
    return QueryError(text.strip())
