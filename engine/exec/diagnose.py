"""DataFusion's error texts turned into messages a person can act on.

DataFusion reports planning and type problems in its own vocabulary (Arrow
type names such as ``Utf8``, wrapped in "Optimizer rule ... failed / caused
by" chains, sometimes with a request to file a bug report). ``explain`` maps
each known shape to one of our errors: what is wrong, in SQL type names, and
a hint, plus the offset in the query text of the token to point at (the
unknown column, the function, the literal). Whatever is not recognised is
cleaned of DataFusion's wrappers and bug-report boilerplate, never shown raw.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot.tokens import Token, TokenType

from engine.errors import (
    ColumnNotFoundError,
    FunctionNotFoundError,
    KalamError,
    QueryError,
    SqlParseError,
    TypeMismatchError,
)
from engine.names import SYSTEM_COLUMNS

#: DataFusion / Arrow type names -> the engine's SQL type names.
_TYPES = {
    "utf8": "TEXT",
    "largeutf8": "TEXT",
    "utf8view": "TEXT",
    "string": "TEXT",
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INT",
    "int64": "BIGINT",
    "uint8": "TINYINT UNSIGNED",
    "uint16": "SMALLINT UNSIGNED",
    "uint32": "INT UNSIGNED",
    "uint64": "BIGINT UNSIGNED",
    "float16": "HALF",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "boolean": "BOOLEAN",
    "date32": "DATE",
    "date64": "DATE",
    "date": "DATE",
    "binary": "BYTES",
    "largebinary": "BYTES",
    "binaryview": "BYTES",
    "null": "NULL",
    "integer": "an integer",
    "numeric": "a number",
    "decimal": "DECIMAL",
    "duration": "INTERVAL",
    "interval": "INTERVAL",
}
_NUMERIC_WORDS = {
    "decimal",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "integer",
    "numeric",
}
_NUMBER_TYPES = {"TINYINT", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE", "HALF", "DECIMAL"}
_WINDOW_ONLY = {
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
}
_TYPE_LIST = "BOOLEAN, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, TEXT, BYTES, DATE, TIMESTAMP"
_BUG_REPORT = re.compile(r"This issue was likely caused by a bug.*?(issues\.|$)", re.S)
_WRAPPERS = re.compile(
    r"(DataFusion error: |Error during planning: |Execution error: |Internal error: |"
    r"Schema error: |Arrow error: |Optimizer rule '[a-z_]+' failed\s*caused by\s*|"
    r"type_coercion\s*caused by\s*)"
)


def sql_type(name: str) -> str:
    """A DataFusion type name (``Utf8``, ``Timestamp(µs)``, ``Decimal128(10, 2)``) in SQL."""
    name = name.strip().strip("'\"")
    key = name.split("(", 1)[0].replace(" ", "").lower()
    if key.startswith("timestamp"):
        return "TIMESTAMP"
    if key.startswith("decimal"):
        return "DECIMAL"
    return _TYPES.get(key, name.upper())


def clean(text: str) -> str:
    """DataFusion's text without its wrappers, bug-report request and candidate list."""
    text = _BUG_REPORT.sub("", text)
    text = _WRAPPERS.sub("", text)
    text = text.split("\n\tCandidate functions:", 1)[0]
    return re.sub(r"[ \t]+", " ", text).strip()


# ---------------------------------------------------------------- locating tokens


class _Text:
    """The query text DataFusion got, tokenized lazily, for finding what to point at."""

    def __init__(self, sql: str | None) -> None:
        self.sql = sql
        self._tokens: list[Token] | None = None

    @property
    def tokens(self) -> list[Token]:
        if self._tokens is None:
            self._tokens = []
            if self.sql:
                from engine.sql.tokens import tokenize

                with contextlib.suppress(SqlParseError):
                    self._tokens = tokenize(self.sql)
        return self._tokens

    def name(self, dotted: str) -> int | None:
        """Offset of the first reference to ``a.b`` / ``b`` (case-insensitive)."""
        parts = [p.strip('"').lower() for p in dotted.split(".")]
        toks = self.tokens
        for i in range(len(toks)):
            if self._names_at(i, parts):
                if i > 1 and toks[i - 1].token_type == TokenType.DOT and len(parts) == 1:
                    continue  # `x.name` is another table's column, not this bare name
                return toks[i].start
        if len(parts) > 1:
            return self.name(parts[-1])
        return None

    def _names_at(self, i: int, parts: list[str]) -> bool:
        toks = self.tokens
        for k, part in enumerate(parts):
            j = i + 2 * k
            if j >= len(toks) or toks[j].token_type == TokenType.STRING:
                return False
            if toks[j].text.lower() != part:
                return False
            if k + 1 < len(parts) and (
                j + 1 >= len(toks) or toks[j + 1].token_type != TokenType.DOT
            ):
                return False
        return True

    def call(self, function: str) -> tuple[int, str] | None:
        """Offset of ``function(`` and the text between its parentheses."""
        from engine.sql.tokens import matching_close

        toks = self.tokens
        for i in range(len(toks) - 1):
            if (
                toks[i].text.lower() == function.lower()
                and toks[i + 1].token_type == TokenType.L_PAREN
            ):
                close = matching_close(toks, i + 1)
                end = toks[close].start if close < len(toks) else len(self.sql or "")
                inner = (self.sql or "")[toks[i + 1].end + 1 : end].strip()
                return toks[i].start, inner
        return None

    def literal(self, value: str) -> int | None:
        for t in self.tokens:
            if t.token_type == TokenType.STRING and t.text == value:
                return t.start
        for t in self.tokens:
            if t.text == value:
                return t.start
        return None

    def word(self, *words: str, after: str | None = None) -> int | None:
        """Offset of the first token reading ``words`` in a row (after keyword ``after``)."""
        toks = self.tokens
        seen = after is None
        for i, t in enumerate(toks):
            if not seen:
                seen = t.text.upper().startswith(after or "")
                continue
            if all(
                i + k < len(toks) and toks[i + k].text.upper() == w.upper()
                for k, w in enumerate(words)
            ):
                return t.start
        return None


# ---------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Diagnosis:
    """Our error for a DataFusion failure, and where in the query text it points."""

    error: KalamError
    offset: int | None = None


Rule = Callable[["re.Match[str]", _Text], Diagnosis]
_RULES: list[tuple[re.Pattern[str], Rule]] = []


def _rule(pattern: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        _RULES.append((re.compile(pattern, re.S), fn))
        return fn

    return register


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "AEIOU" else f"a {word}"


def _column(name: str) -> str:
    """``users.name`` -> ``name``; DataFusion qualifies the columns it names."""
    return name.strip('"').rsplit(".", 1)[-1]


@_rule(r"No field named (?P<name>[^ \n]+?)\.?(?: Did you mean '(?P<hint>[^']+)'\?)?(?:\n|$)")
def _no_field(m: re.Match[str], text: _Text) -> Diagnosis:
    name = m["name"].strip('"')
    message = f"Unknown column {name}"
    if m["hint"]:
        # DataFusion qualifies its suggestion; a bare name gets a bare suggestion.
        hint = m["hint"] if "." in name else _column(m["hint"])
        message += f"; did you mean {hint}?"
    valid = re.search(r"Valid fields are (.*?)\.?$", m.string, re.M)
    if valid:
        columns = []
        for field in valid.group(1).split(", "):
            col = _column(field)
            if col not in columns and not col.endswith(")") and col not in SYSTEM_COLUMNS:
                columns.append(col)
        if columns:
            shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            message += f" (columns here: {shown})"
    return Diagnosis(ColumnNotFoundError(message, name=name), text.name(name))


@_rule(r"Ambiguous reference to unqualified field (?P<name>\S+)")
def _ambiguous(m: re.Match[str], text: _Text) -> Diagnosis:
    name = m["name"].strip('"')
    return Diagnosis(
        QueryError(
            f"Ambiguous reference to column {name}: more than one table in the query has it. "
            f"Hint: qualify it with its table or alias (alias.{name})"
        ),
        text.name(name),
    )


@_rule(r"Invalid function '(?P<name>[^']+)'\.?(?:\s*Did you mean '(?P<hint>[^']+)'\?)?")
def _unknown_function(m: re.Match[str], text: _Text) -> Diagnosis:
    name = m["name"]
    found = text.call(name)
    offset = found[0] if found else text.name(name)
    if name.lower() in _WINDOW_ONLY:
        return Diagnosis(
            QueryError(f"{name}() is a window function: add OVER (...), e.g. {name}() OVER ()"),
            offset,
        )
    message = f"Unknown function {name}()"
    if m["hint"]:
        message += f"; did you mean {m['hint']}()?"
    return Diagnosis(FunctionNotFoundError(message, function=name), offset)


def _arg_count(signature: str) -> int:
    inner = signature.split("(", 1)[1].rsplit(")", 1)[0].strip() if "(" in signature else ""
    depth, count = 0, 1 if inner else 0
    for ch in inner:
        depth += ch == "("
        depth -= ch == ")"
        count += ch == "," and depth == 0
    return count


def _needs(candidates: Sequence[str]) -> str:
    """What a function's candidate signatures accept, in words."""
    # The first argument's type of each signature (round(Float64, Int32) -> float64).
    words = {re.split(r"[(/,)]", c.split("(", 1)[1])[0].strip().lower() for c in candidates}
    if words & _NUMERIC_WORDS and words <= _NUMERIC_WORDS | {"duration", "interval"}:
        return "a number"
    if words <= {"string", "utf8", "largeutf8", "utf8view"}:
        return "text"
    if words <= {"timestamp", "date", "date32"}:
        return "a date or timestamp"
    return " or ".join(sorted(sql_type(w) for w in words))


def _cast_hint(arg: str, needs: str) -> str:
    if needs == "a number":
        return f"cast {arg} to a number, e.g. CAST({arg} AS DOUBLE)"
    if needs == "text":
        return f"cast {arg} to text, e.g. CAST({arg} AS TEXT)"
    return f"cast {arg} to the type it expects"


@_rule(r"No function matches the given name and argument types '(?P<call>[^']*)'")
def _no_signature(m: re.Match[str], text: _Text) -> Diagnosis:
    call = m["call"]
    name, _, rest = call.partition("(")
    given = [sql_type(t) for t in _split_args(rest.rsplit(")", 1)[0])]
    candidates = re.findall(r"\t(\w+\(.*?\))\s*(?:\n|$)", m.string)
    found = text.call(name)
    offset, arg = (found[0], found[1]) if found else (text.name(name), "the argument")
    counts = {_arg_count(c) for c in candidates}
    if candidates and len(given) not in counts:
        want = " or ".join(str(c) for c in sorted(counts))
        plural = "" if counts == {1} else "s"
        return Diagnosis(
            QueryError(f"{name}() takes {want} argument{plural}, got {len(given)}"), offset
        )
    needs = _needs(candidates) if candidates else "another type"
    got = ", ".join(given) or "no arguments"
    if needs == "a number" and len(given) == 1 and given[0] == "DATE":
        hint = f"use an INTERVAL or a number, e.g. {name}(date_part('day', {arg}))"
    else:
        hint = _cast_hint(arg or "the argument", needs)
    return Diagnosis(
        TypeMismatchError(
            f"{name}() cannot take {got} ({arg}): it needs {needs}. Hint: {hint}",
            function=name,
            types=given,
        ),
        offset,
    )


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts]


@_rule(r"Cannot coerce arithmetic expression (?P<left>.+?) (?P<op>[-+*/%]) (?P<right>.+?) to valid")
def _arithmetic(m: re.Match[str], text: _Text) -> Diagnosis:
    left, right, op = sql_type(m["left"]), sql_type(m["right"]), m["op"]
    odd = right if left in _NUMBER_TYPES or left == "TIMESTAMP" else left
    if "TIMESTAMP" in (left, right) or "DATE" in (left, right):
        hint = "add or subtract an INTERVAL, e.g. ts + INTERVAL '1 day'"
    elif odd == "TEXT":
        hint = "cast the TEXT operand to a number, e.g. CAST(x AS BIGINT)"
    else:
        hint = "cast one operand to the other's type"
    return Diagnosis(
        TypeMismatchError(f"Cannot compute {left} {op} {right}. Hint: {hint}", types=[left, right]),
        text.word(op),
    )


@_rule(r"Cannot cast (?:string|value) '(?P<value>[^']*)' to (?:value of )?(?P<type>\w+) type")
def _bad_literal(m: re.Match[str], text: _Text) -> Diagnosis:
    value, target = m["value"], sql_type(m["type"])
    offset = text.literal(value)
    if offset is not None:
        return Diagnosis(
            TypeMismatchError(
                f"'{value}' is not a valid {target}: it is compared with or cast to "
                f"{_a(target)} value. Hint: write {_a(target)} value here, or cast the column "
                "to TEXT",
                types=["TEXT", target],
            ),
            offset,
        )
    return Diagnosis(
        TypeMismatchError(
            f"The value '{value}' cannot be read as {target}. Hint: compare the TEXT column "
            f"with a quoted value, or use TRY_CAST(... AS {target}) to get NULL for values "
            f"that are not {_a(target)}",
            types=["TEXT", target],
        )
    )


@_rule(r"Can't cast value (?P<value>\S+) to type (?P<type>\w+)")
def _out_of_range(m: re.Match[str], text: _Text) -> Diagnosis:
    target = sql_type(m["type"])
    return Diagnosis(
        TypeMismatchError(
            f"{m['value']} does not fit in {target} (out of range). Hint: use a wider type "
            "such as BIGINT",
            types=[target],
        ),
        text.literal(m["value"]),
    )


@_rule(r"Error parsing timestamp from '(?P<value>[^']*)'")
def _bad_timestamp(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        TypeMismatchError(
            f"'{m['value']}' is not a valid TIMESTAMP. Hint: write it as "
            "'YYYY-MM-DD HH:MM:SS', e.g. '2024-01-31 12:00:00'",
            types=["TEXT", "TIMESTAMP"],
        ),
        text.literal(m["value"]),
    )


@_rule(r'Invalid input syntax for type interval: "(?P<value>[^"]*)"')
def _bad_interval(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        TypeMismatchError(
            f"'{m['value']}' is not a valid INTERVAL. Hint: e.g. INTERVAL '1 day' or "
            "INTERVAL '90 minutes'",
            types=["TEXT", "INTERVAL"],
        ),
        text.literal(m["value"]),
    )


@_rule(r'column "(?P<col>[^"]+)" must appear in the GROUP BY clause')
def _not_grouped(m: re.Match[str], text: _Text) -> Diagnosis:
    col = _column(m["col"])
    return Diagnosis(
        QueryError(
            f"{col} must be listed in GROUP BY or used inside an aggregate such as "
            f"max({col}) or count({col})"
        ),
        text.name(col),
    )


@_rule(r"Aggregate functions are not allowed in the WHERE clause")
def _aggregate_in_where(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(
            "Aggregates such as count(*) or sum(x) cannot be used in WHERE. Hint: filter "
            "groups with HAVING (after GROUP BY) instead"
        ),
        text.word("WHERE"),
    )


@_rule(r"HAVING clause references: .* must appear in the GROUP BY clause")
def _having(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(
            "HAVING may only use grouped columns and aggregates. Hint: move the condition "
            "to WHERE, or add GROUP BY"
        ),
        text.word("HAVING"),
    )


@_rule(
    r"Aggregate function calls cannot be nested: '(?P<inner>\w+)\(.*?' is nested inside '(?P<outer>\w+)\("
)
def _nested_aggregate(m: re.Match[str], text: _Text) -> Diagnosis:
    found = text.call(m["outer"])
    return Diagnosis(
        QueryError(
            f"Aggregates cannot be nested ({m['inner']}() inside {m['outer']}()). Hint: compute "
            "the inner aggregate in a subquery and aggregate its result"
        ),
        found[0] if found else None,
    )


@_rule(
    r"There isn't a common type to coerce (?P<left>\S+) and (?P<right>\S+) in (?P<op>\w+) expression"
)
def _like(m: re.Match[str], text: _Text) -> Diagnosis:
    left, right, op = sql_type(m["left"]), sql_type(m["right"]), m["op"].upper()
    return Diagnosis(
        TypeMismatchError(
            f"{op} compares text with text, got {left} and {right}. Hint: cast the other side "
            "to TEXT, or quote the pattern",
            types=[left, right],
        ),
        text.word(op),
    )


@_rule(r"Cannot create filter with non-boolean predicate '(?P<expr>[^']*)' returning (?P<type>\S+)")
def _non_boolean_filter(m: re.Match[str], text: _Text) -> Diagnosis:
    expr = _column(m["expr"])
    return Diagnosis(
        TypeMismatchError(
            f"WHERE needs a true/false condition, but {expr} is {sql_type(m['type'])}. "
            f"Hint: compare it, e.g. {expr} = ... or {expr} IS NOT NULL",
            types=[sql_type(m["type"])],
        ),
        text.name(expr) if text.word("WHERE") is not None else None,
    )


@_rule(
    r"Cannot infer common argument type for logical boolean operation (?P<left>\S+) (?P<op>AND|OR) (?P<right>\S+)"
)
def _boolean_operands(m: re.Match[str], text: _Text) -> Diagnosis:
    left, right = sql_type(m["left"]), sql_type(m["right"])
    return Diagnosis(
        TypeMismatchError(
            f"{m['op']} needs true/false values on both sides, got {left} and {right}. Hint: "
            "compare the non-boolean side, e.g. x > 0",
            types=[left, right],
        ),
        text.word(m["op"]),
    )


@_rule(r"Unary operator 'NOT' requires a boolean expression, got (?P<type>\S+)")
def _not(m: re.Match[str], text: _Text) -> Diagnosis:
    t = sql_type(m["type"])
    return Diagnosis(
        TypeMismatchError(f"NOT needs a true/false value, got {t}", types=[t]), text.word("NOT")
    )


@_rule(r"Unary operator '-' only supports")
def _negate(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        TypeMismatchError(
            "A minus sign needs a number, interval or timestamp. Hint: cast the "
            "value to a number first"
        ),
        text.word("-"),
    )


@_rule(r"Expected LIMIT to be an integer or null, but got (?P<type>\S+)")
def _limit_type(m: re.Match[str], text: _Text) -> Diagnosis:
    t = sql_type(m["type"])
    return Diagnosis(
        TypeMismatchError(f"LIMIT needs an integer, got {t}", types=[t]), text.word("LIMIT")
    )


@_rule(r"LIMIT must be >= 0, '(?P<value>[^']*)' was provided")
def _limit_negative(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(QueryError(f"LIMIT must be 0 or more, got {m['value']}"), text.word("LIMIT"))


@_rule(r"Order by column out of bounds, specified: (?P<n>\d+), max: (?P<max>\d+)")
def _order_position(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(
            f"ORDER BY {m['n']} refers to output column {m['n']}, but the query returns "
            f"{m['max']} column(s)"
        ),
        text.word(m["n"], after="ORDER BY"),
    )


@_rule(
    r"Cannot find column with position (?P<n>\d+) in SELECT clause. Valid columns: 1 to (?P<max>\d+)"
)
def _group_position(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(
            f"GROUP BY {m['n']} refers to output column {m['n']}, but the query returns "
            f"{m['max']} column(s)"
        ),
        text.word(m["n"], after="GROUP BY"),
    )


@_rule(r"Too many columns! The subquery should only return one column: (?P<cols>.*)")
def _subquery_columns(m: re.Match[str], text: _Text) -> Diagnosis:
    cols = [_column(c) for c in m["cols"].split(", ")]
    return Diagnosis(
        QueryError(
            f"A subquery used as a value or with IN must return one column; this one returns "
            f"{len(cols)} ({', '.join(cols)})"
        ),
        text.word("(", "SELECT"),
    )


@_rule(r"UNION queries have different number of columns")
def _union_width(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(
            "Each SELECT of a UNION must return the same number of columns. Hint: list the "
            "columns explicitly on both sides"
        ),
        text.word("UNION"),
    )


@_rule(r"Divide by zero error")
def _divide_by_zero(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError("Division by zero. Hint: NULLIF(divisor, 0) gives NULL instead of an error")
    )


@_rule(r"Unsupported SQL type (?P<type>\w+)")
def _unknown_type(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        TypeMismatchError(f"Unknown type {m['type']}; types are {_TYPE_LIST}"),
        text.name(m["type"]),
    )


@_rule(r"Unsupported date_trunc granularity: '(?P<unit>[^']*)'\. Supported values are: (?P<ok>.*)")
def _date_trunc(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(f"date_trunc() does not know the unit '{m['unit']}'; use one of {m['ok']}"),
        text.literal(m["unit"]),
    )


@_rule(r"Date part '(?P<part>[^']*)' not supported")
def _date_part(m: re.Match[str], text: _Text) -> Diagnosis:
    return Diagnosis(
        QueryError(
            f"Unknown date part '{m['part']}'; use year, quarter, month, week, day, hour, "
            "minute, second, dow or doy"
        ),
        text.name(m["part"]),
    )


@_rule(r"Schema contains duplicate qualified field name (?P<name>\S+)")
def _duplicate_alias(m: re.Match[str], text: _Text) -> Diagnosis:
    alias = m["name"].rsplit(".", 1)[0].strip('"')
    return Diagnosis(
        QueryError(f"The name {alias} is given to two tables in FROM; give each its own alias")
    )


@_rule(
    r"(?:'(?P<name>\w+)' does not support zero arguments|Function '(?P<fn>\w+)' expects (?P<n>\d+) arguments? but received (?P<got>\d+))"
)
def _argument_count(m: re.Match[str], text: _Text) -> Diagnosis:
    if m["name"]:
        name, message = m["name"], f"{m['name']}() needs at least one argument"
    else:
        name = m["fn"]
        message = f"{name}() takes {m['n']} argument(s), got {m['got']}"
    found = text.call(name)
    return Diagnosis(QueryError(message), found[0] if found else None)


@_rule(r"Substring without for/from is not valid")
def _substring(m: re.Match[str], text: _Text) -> Diagnosis:
    found = text.call("substr") or text.call("substring")
    return Diagnosis(
        QueryError("substr() needs a start position: substr(text, start [, length])"),
        found[0] if found else None,
    )


@_rule(r"Physical plan does not support logical expression OuterReferenceColumn")
def _outer_reference(m: re.Match[str], text: _Text) -> Diagnosis:
    found = text.call("lateral")
    return Diagnosis(
        QueryError(
            "A subquery that reads a column of an outer query is not supported here "
            "(e.g. a LATERAL subquery with ORDER BY / LIMIT): join on the column instead"
        ),
        found[0] if found else None,
    )


@_rule(r"only support Literal types for field at idx: (?P<idx>\d+) in Window Function")
def _window_literal(m: re.Match[str], text: _Text) -> Diagnosis:
    found = text.call("lag") or text.call("lead")
    return Diagnosis(
        QueryError("lag() / lead() take only a constant as their default (third argument)"),
        found[0] if found else None,
    )


def locate_name(sql: str, dotted: str) -> int | None:
    """Offset of the first reference to ``ns.table`` / ``table`` in ``sql``."""
    return _Text(sql).name(dotted)


def explain(raw: str, sql: str | None = None) -> Diagnosis:
    """Our error for DataFusion's message ``raw``; ``sql`` is the text it was given."""
    text = _Text(sql)
    # The function-signature failure repeats one line per candidate type; its
    # summary sentence ("No function matches ...") is the one to read.
    for pattern, build in _RULES:
        if build is _argument_count and "No function matches" in raw:
            continue
        m = pattern.search(raw)
        if m is not None:
            return build(m, text)
    return Diagnosis(QueryError(clean(raw) or "The query failed"))
