"""Placeholders: which kind a statement uses (``?``, ``$n`` or ``:name``), the
text DataFusion gets (``$n`` / ``$name``), and binding user parameters to them.
Values are always bound, never spliced into SQL text; ``{name}`` templates
are refused."""

from __future__ import annotations

from typing import Any

from sqlglot.tokens import Token, TokenType

from engine.errors import ParameterError
from engine.sql import statements as st
from engine.sql.tokens import position


def param_spec(sql: str, tokens: list[Token]) -> tuple[st.ParamSpec, str]:
    """Find placeholders; return their spec and the text with ``?`` and
    ``:name`` rewritten to DataFusion's ``$n`` / ``$name`` form."""
    styles: set[str] = set()
    names: list[str] = []
    numbers: set[int] = set()
    edits: list[tuple[int, int, str]] = []
    qmarks = 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        adjacent = nxt is not None and nxt.start == tok.end + 1
        if tok.token_type == TokenType.PLACEHOLDER and tok.text == "?":
            qmarks += 1
            styles.add("qmark")
            edits.append((tok.start, tok.end + 1, f"${qmarks}"))
        elif (
            tok.token_type == TokenType.COLON
            and adjacent
            and nxt is not None
            and (nxt.token_type in (TokenType.VAR, TokenType.NAME) or nxt.text.isidentifier())
        ):
            prev = tokens[i - 1] if i else None
            if (
                prev is not None
                and prev.end + 1 == tok.start
                and prev.token_type
                in (
                    TokenType.VAR,
                    TokenType.NUMBER,
                    TokenType.IDENTIFIER,
                    TokenType.R_PAREN,
                    TokenType.R_BRACKET,
                )
            ):
                continue  # slice syntax like a[1:2] or x:y, not a parameter
            styles.add("named")
            if nxt.text not in names:
                names.append(nxt.text)
            edits.append((tok.start, nxt.end + 1, f"${nxt.text}"))
        elif tok.token_type == TokenType.PARAMETER and adjacent and nxt is not None:
            if nxt.token_type == TokenType.NUMBER and nxt.text.isdigit():
                styles.add("numeric")
                numbers.add(int(nxt.text))
        elif (
            tok.token_type == TokenType.L_BRACE
            and nxt is not None
            and nxt.token_type
            in (
                TokenType.VAR,
                TokenType.NAME,
            )
        ):
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if after is not None and after.token_type == TokenType.R_BRACE:
                line, col = position(sql, tok.start)
                raise ParameterError(
                    f"'{{{nxt.text}}}' templates are not supported: values are bound, never "
                    f"spliced into SQL. Write :{nxt.text} instead",
                    line=line,
                    column=col,
                )
    if len(styles) > 1:
        raise ParameterError("Do not mix ?, $n and :name placeholders in one statement")
    if not styles:
        return st.ParamSpec(), sql
    style = styles.pop()
    out = sql
    for start, end, repl in reversed(edits):
        out = out[:start] + repl + out[end:]
    if style == "qmark":
        return st.ParamSpec("qmark", qmarks), out
    if style == "numeric":
        return st.ParamSpec("numeric", max(numbers)), out
    return st.ParamSpec("named", 0, tuple(names)), out


def bind_params(spec: st.ParamSpec, params: Any, *, check_ranges: bool = True) -> dict[str, Any]:
    """Turn user ``params`` into DataFusion-style keys: ``"1"``.. or ``"name"``.

    Values DataFusion cannot hold (integers beyond 64 bits, text that is not
    valid Unicode) are refused here; ``check_ranges=False`` leaves integers to
    the statement (an INSERT names the column a value does not fit)."""
    if spec.style is None:
        if params:
            raise ParameterError("Parameters were given but the statement has no placeholders")
        return {}
    if params is None:
        raise ParameterError(
            f"The statement has placeholders but no parameters were given ({_expected(spec)})"
        )
    if spec.style == "named":
        if not hasattr(params, "keys"):
            raise ParameterError("Named placeholders (:name) need a mapping of parameters")
        missing = [n for n in spec.names if n not in params]
        if missing:
            raise ParameterError(f"Missing value for parameter :{missing[0]}")
        return {n: _checked(params[n], f":{n}", check_ranges) for n in spec.names}
    if hasattr(params, "keys") or isinstance(params, (str, bytes)):
        raise ParameterError(
            f"Positional placeholders need a sequence of parameters ({_expected(spec)})"
        )
    values = list(params)
    if len(values) != spec.count:
        raise ParameterError(f"The statement needs {spec.count} parameter(s), {len(values)} given")
    return {str(i + 1): _checked(v, f"${i + 1}", check_ranges) for i, v in enumerate(values)}


_INT64 = range(-(2**63), 2**63)


def check_int_range(value: Any, name: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise ParameterError(
            f"Parameter {name} = {value} is out of range: integers must fit in 64 bits (BIGINT)"
        )


def _checked(value: Any, name: str, ranges: bool = True) -> Any:
    """A parameter value DataFusion can hold exactly, or a ``ParameterError``."""
    if isinstance(value, bool) or value is None:
        return value
    if ranges:
        check_int_range(value, name)
    if isinstance(value, (list, tuple)):
        return type(value)(_checked(v, name, ranges) for v in value)
    if isinstance(value, dict):
        return {k: _checked(v, name, ranges) for k, v in value.items()}
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParameterError(
                f"Parameter {name} is not valid text: {exc.reason} at character {exc.start}"
            ) from None
    return value


def _expected(spec: st.ParamSpec) -> str:
    if spec.style == "named":
        return "named: " + ", ".join(f":{n}" for n in spec.names)
    return f"{spec.count} positional"
