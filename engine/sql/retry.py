"""What a query becomes when DataFusion 55 refuses it as written but SQL
defines it: the runner every statement's queries go through.

``RewritingRunner`` wraps the ``QueryRunner`` and runs each query as
written first, so everything DataFusion plans itself keeps its plan and its
error positions. Only on a refusal it knows how to repair does it retry:

- duplicate output names: the later duplicate gets a private alias and its
  name back in the result (``engine/sql/outnames.py``);
- unary ``+`` on text, and (before the first run) ``x IN ()`` with an
  empty list and IN lists holding a NULL literal (``engine/sql/coercions.py``);
- (before the first run, not on a refusal) numeric literals a double cannot
  hold exactly become DECIMAL casts (``engine/sql/rewrite.py``), so they
  compare exactly with DECIMAL columns;
- (before the first run, not on a refusal) shapes DataFusion answers
  wrongly or refuses though SQL defines them: SIMILAR TO (``similar.py``),
  USING / NATURAL joins' merged columns (``join_using.py``), RIGHT joins
  (``right_joins.py``), a FULL join's WHERE (``full_joins.py``), INTERSECT
  ALL / EXCEPT ALL (``setops.py``), FETCH FIRST (``fetch.py``), a nested
  OFFSET (``offsets.py``) and IN lists holding a NULL (``coercions.py``);
- subqueries DataFusion cannot plan (correlated scalar subqueries with
  non-equality predicates, EXISTS / IN outside a WHERE conjunct, ...): the
  query is decorrelated on its sqlglot tree (``engine/sql/subqueries.py``),
  after moving subqueries out of an inner JOIN's ON and spelling ``op ANY /
  ALL`` with EXISTS (``engine/sql/subquery_forms.py``);
- (before the first run) subquery forms DataFusion plans but answers
  wrongly: EXISTS over an aggregate, with LIMIT 0 or OFFSET, or over a
  UNION (``subquery_forms.exact_exists``), and correlated scalar subqueries
  with GROUP BY / HAVING or a NULL test of an aggregate (decorrelated, or
  refused by name);
- (before the first run) row comparisons ``(a, b) IN / = ...``, member by
  member (``row_values.py``), and an uncorrelated EXISTS as one constant,
  not a nested loop (``constant_exists.py``);
- (before the first run) ``LIKE 'p' ESCAPE 'c'`` with an escape other than
  the backslash, which DataFusion refuses: the pattern is spelled with the
  backslash (``engine/sql/like_escape.py``);
- (before the first run, not on a refusal) a DATE plus or minus an
  INTERVAL with a time of day, which DataFusion keeps a DATE (dropping the
  time): the DATE becomes a TIMESTAMP; and interval literals compared
  with ``=`` / ``<`` / BETWEEN / IN, which DataFusion compares part by part
  (months, days, nanoseconds), as their lengths (``engine/sql/date_intervals.py``);
- (before the first run, not on a refusal) integer ``+ - *``, unary minus
  and ``sum`` of BIGINT are computed so that an overflow raises instead of
  wrapping (``engine/sql/checked_ints.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from engine.errors import KalamError, NumericOverflowError, QueryError
from engine.exec.query import QueryRunner
from engine.sql import (
    checked_ints,
    coercions,
    constant_exists,
    date_intervals,
    fetch,
    full_joins,
    join_using,
    like_escape,
    numeric_semantics,
    offsets,
    outer_join_on,
    outnames,
    pg_functions,
    rewrite,
    right_joins,
    row_values,
    scalar_nulls,
    setops,
    subqueries,
    subquery_forms,
    type_names,
)
from engine.sql.similar import similar_to_regex
from engine.sql.tokens import position

# DataFusion's messages for subqueries it cannot plan.
_SUBQUERY_REFUSALS = (
    "Physical plan does not support logical expression ScalarSubquery",
    "Physical plan does not support logical expression Exists",
    "Physical plan does not support logical expression InSubquery",
    "Correlated scalar subquery",
    "Optimizer rule 'scalar_subquery_to_join' failed",
    "Optimizer rule 'decorrelate_predicate_subquery' failed",
    "correlated",
    "Invalid (non-executable) plan after Analyzer",  # EXISTS in ORDER BY
    "array_has() cannot take",  # a correlated ANY in a projection
    "array_min() cannot take",
    "array_max() cannot take",
    "__scalar_sq_",  # a column two levels out, lost by DataFusion's own rewrite
    # An unaliased `x = ANY (subquery)` projection: DataFusion's own rewrite
    # renames it and fails its schema check, or (sorted by a column it does
    # not show) loses it (_QUANTIFIED_NAME).
    "after optimizer rule: optimize_projections",
)
_QUANTIFIED_NAME = re.compile(r'No field named "[^"]* (?:ANY|ALL)"')
_MAX_DUPLICATES = 64
_IN_SUBQUERY = re.compile(r"\bIN\s*\(\s*(?:SELECT|WITH)\b", re.IGNORECASE)
# Shapes DataFusion answers wrongly as written (engine/sql/join_using.py,
# right_joins.py, setops.py, offsets.py) or refuses (fetch.py).
_MERGING = re.compile(r"\b(?:USING|NATURAL)\b", re.IGNORECASE)
_ALL_SET_OPERATION = re.compile(r"\b(?:INTERSECT|EXCEPT)\s+ALL\b", re.IGNORECASE)
_OFFSET = re.compile(r"\bOFFSET\b", re.IGNORECASE)
_RIGHT_JOIN = re.compile(r"\bRIGHT\b", re.IGNORECASE)
_FETCH = re.compile(r"\bFETCH\b", re.IGNORECASE)
# A scalar subquery, which DataFusion may answer wrongly when correlated
# (with GROUP BY / HAVING, or a NULL test of an aggregate folded to a
# constant: subqueries._grouped_scalar); a query naming none of these words
# is not parsed for it.
_SCALAR_SUBQUERY = re.compile(r"\(\s*SELECT\b", re.IGNORECASE)
_MISREAD_HINT = re.compile(r"\b(?:GROUP\s+BY|HAVING|IS)\b", re.IGNORECASE)


class RewritingRunner:
    """A ``QueryRunner`` with the retries above; same ``run`` signature."""

    def __init__(
        self,
        inner: QueryRunner,
        columns_of: Callable[[str | None, str], list[str] | None],
        schema_of: checked_ints.SchemaOf | None = None,
    ) -> None:
        self._inner = inner
        self._columns_of = columns_of
        self._schema_of = schema_of

    def run(
        self,
        tree: Any,
        df_sql: str,
        params: dict[str, Any],
        *,
        check_projections: bool = True,
        **kwargs: Any,
    ) -> tuple[pa.Table, dict[str, dict[str, int]]]:
        """``check_projections=False``: the query's own projections are an
        UPDATE's new values, whose overflow the write path reports.

        An EXPLAIN's query gets the same rewrites as the query itself, so the
        plan shown is the plan that runs: they see the text after
        ``EXPLAIN [ANALYZE] [VERBOSE]``, which goes back in front of it
        (``_run_named``)."""
        if kwargs.get("explain"):
            prefix, inner = _explain_prefix(df_sql)
            if prefix:
                df_sql = inner
                kwargs = {**kwargs, "explain_prefix": prefix}
        escaped = like_escape.backslash_escapes(df_sql)
        if escaped is not None:
            df_sql = escaped
            kwargs = {**kwargs, "locate": lambda offset: None}
        exact = rewrite.exact_decimal_literals(df_sql)
        if exact is not None:
            # Not a retry: a literal a double cannot hold would be compared
            # as a double, a wrong answer rather than a refusal.
            kwargs = {**kwargs, "locate": _locate_before(df_sql, exact[1], kwargs.get("locate"))}
            df_sql = exact[0]
        # Not retries: forms DataFusion parses but answers wrongly, or cannot
        # parse, rewritten before it sees them (each renders the whole text
        # again, so an error in it comes without a position).
        cols = self._columns_of
        passes: tuple[Callable[[str], tuple[Any, str] | None], ...] = (
            similar_to_regex,  # SIMILAR TO read as an unanchored regex
            pg_functions.as_datafusion,  # sign(), mod(), ceiling(), every()
            coercions.without_empty_in_lists,  # `IN ()` is a syntax error there
            # (a, b) IN / = ..., member-wise
            lambda t: row_values.row_comparisons(t, cols, self._schema_of),
            lambda t: constant_exists.computed_once(t, cols),  # not a nested loop per row
            # EXISTS over an aggregate, with LIMIT 0 or OFFSET: planned, answered
            # wrongly (before offsets.kept, which would hide the OFFSET from it).
            subquery_forms.exact_exists,
            lambda t: join_using.merged_columns(t, cols) if _MERGING.search(t) else None,
            lambda t: right_joins.as_left_joins(t, cols) if _RIGHT_JOIN.search(t) else None,
            full_joins.guarded,  # a FULL join DataFusion would turn into a RIGHT one
            # Subqueries in a JOIN's ON (after RIGHT joins became LEFT ones).
            lambda t: outer_join_on.rewrite_on_subqueries(t, cols),
            lambda t: setops.counted(t, cols) if _ALL_SET_OPERATION.search(t) else None,
            lambda t: fetch.as_limit(t, cols) if _FETCH.search(t) else None,
            lambda t: offsets.kept(t, cols) if _OFFSET.search(t) else None,
            lambda t: coercions.without_null_in_lists(t, params),  # merged IN lists
            # CAST of a fraction to an integer rounds; -0.0 equals 0.0 in IN / ORDER BY
            lambda t: numeric_semantics.exact_numbers(t, self._schema_of, params),
            # DATE +/- INTERVAL '1 hour' kept as a DATE, dropping the hour
            lambda t: date_intervals.timestamps_where_timed(t, self._schema_of),
            # INTERVAL '1 day' = INTERVAL '24 hours' was FALSE: lengths compared
            date_intervals.comparable_intervals,
            type_names.plain_type_names,  # Utf8View of flushed TEXT named as Utf8
            # A scalar subquery of a literal or NOT NULL column with no row is NULL
            lambda t: scalar_nulls.nullable_scalars(t, cols),
        )
        for rewrite_pass in passes:
            done = rewrite_pass(df_sql)
            if done is not None:
                tree, df_sql = done
                kwargs = {**kwargs, "locate": lambda offset: None}
        if _IN_SUBQUERY.search(df_sql) or (
            _SCALAR_SUBQUERY.search(df_sql) and _MISREAD_HINT.search(df_sql)
        ):
            # DataFusion answers IN (subquery) wrongly anywhere but a positive
            # WHERE conjunct (NOT IN with a NULL left side and an empty
            # correlated set, NOT (... IN ...) OR ...): those never reach it
            # as written.
            rewritten = subqueries.decorrelate(df_sql, self._columns_of, not_in_only=True)
            if rewritten is not None:
                tree, df_sql = rewritten
                kwargs = {**kwargs, "locate": lambda offset: None}
        checked = None
        unchecked = (tree, df_sql, kwargs)
        if self._schema_of is not None:
            # Not a retry: DataFusion's integer arithmetic wraps silently.
            checked = checked_ints.checked_arithmetic(
                df_sql, self._schema_of, projections=check_projections
            )
            if checked is not None:
                tree, df_sql = checked
                kwargs = {**kwargs, "locate": lambda offset: None}
        try:
            return self._run_named(tree, df_sql, params, **kwargs)
        except KalamError as exc:
            said = f"{exc} {getattr(exc, 'engine_text', '')}"
            refused = any(text in said for text in _SUBQUERY_REFUSALS) or bool(
                _QUANTIFIED_NAME.search(said)
            )
            if checked is not None and not refused:
                overflow = checked_ints.overflow_message(said)
                if overflow is not None:
                    raise NumericOverflowError(overflow) from None
                # The text as written gives the error its position; should it
                # run, the checked text's own error stands.
                self._run_named(unchecked[0], unchecked[1], params, **unchecked[2])
                raise
            if not refused:
                raise
            original = exc
        moved = subquery_forms.out_of_join_conditions(df_sql)
        if moved is not None:
            tree, df_sql = moved  # from an inner JOIN's ON to the WHERE
        quantified = subquery_forms.quantified_as_exists(
            df_sql, lambda tree: subqueries.correlation_test(tree, self._columns_of)
        )
        if quantified is not None:
            tree, df_sql = quantified  # ANY / ALL outside a WHERE: as EXISTS
        rewritten = subqueries.decorrelate(df_sql, self._columns_of) or quantified or moved
        if rewritten is None:
            raise original
        new_tree, new_sql = rewritten
        kwargs = {**kwargs, "locate": lambda offset: None}
        try:
            return self._run_named(new_tree, new_sql, params, **kwargs)
        except KalamError as exc:
            clear = subquery_forms.single_row_error(exc)
            if clear is None:
                raise
            raise clear from None

    def _run_named(
        self, tree: Any, sql: str, params: dict[str, Any], **kwargs: Any
    ) -> tuple[pa.Table, dict[str, dict[str, int]]]:
        renames: list[tuple[int, int]] = []
        names_by_alias: dict[int, str] = {}
        first_error: KalamError | None = None
        kwargs = dict(kwargs)
        prefix = kwargs.pop("explain_prefix", "")
        for _ in range(_MAX_DUPLICATES):
            try:
                table, stats = self._inner.run(tree, prefix + sql, params, **kwargs)
                break
            except QueryError as exc:
                found = outnames.duplicate_positions(str(exc))
                name = outnames.ambiguous_name(str(exc)) if found is None else None
                later = outnames.later_projection_named(sql, name) if name else None
                if later is not None:
                    found = (-1, later)  # renamed back to `name` below
                    names_by_alias[later] = name or ""
                if found is None and coercions.UNARY_PLUS_REFUSAL in str(exc):
                    plain = coercions.without_unary_plus(sql)
                    if plain is not None and plain != sql:
                        sql = plain
                        kwargs = {**kwargs, "locate": lambda offset: None}
                        continue
                edited = outnames.alias_projection(sql, found[1]) if found else None
                if found is None:
                    raise  # another refusal: the caller may still repair it
                if edited is None or edited == sql:
                    raise (first_error or exc) from None
                first_error = first_error or exc
                renames.append(found)
                sql = edited
                kwargs = {**kwargs, "locate": lambda offset: None}
        else:
            raise first_error or QueryError("Too many duplicate output names")
        if renames:
            names = list(table.column_names)
            for first, later in renames:
                if names[later] == outnames.private_alias(later):
                    names[later] = names_by_alias.get(later) or names[first]
            table = table.rename_columns(names)
        return type_names.written_names(table), stats


def _locate_before(
    sql: str, edited_from: int, locate: Callable[[int], tuple[int, int] | None] | None
) -> Callable[[int], tuple[int, int] | None]:
    """Error positions for a text edited from offset ``edited_from`` on: the
    same as before the edit where the text is unchanged, unknown after it."""

    def where(offset: int) -> tuple[int, int] | None:
        if offset >= edited_from:
            return None
        return locate(offset) if locate is not None else position(sql, offset)

    return where


_EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:(?:ANALYZE|VERBOSE)\s+)*", re.IGNORECASE)


def _explain_prefix(sql: str) -> tuple[str, str]:
    """(``EXPLAIN [ANALYZE] [VERBOSE] ``, the query) of an EXPLAIN's text;
    ("", ``sql``) for any other text."""
    found = _EXPLAIN.match(sql)
    if found is None:
        return "", sql
    return sql[: found.end()], sql[found.end() :]
