"""sqlglot trees -> typed statements, one small function per node type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp

from engine.errors import (
    ColumnNotFoundError,
    SchemaError,
    SqlParseError,
    UnsupportedStatementError,
)
from engine.sql import statements as st

DIALECT = "postgres"


def ident(node: exp.Expression | str | None) -> str:
    """An identifier's name: unquoted names fold to lower case (like DataFusion)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.lower()
    if isinstance(node, exp.Identifier):
        return node.name if node.quoted else node.name.lower()
    if isinstance(node, (exp.Column, exp.Table)):
        return ident(node.this)
    return node.name.lower()


def table_ref(table: exp.Expression) -> st.TableRef:
    if not isinstance(table, exp.Expression):  # e.g. DELETE without FROM
        raise SqlParseError("Syntax error: expected a table name")
    if isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise SqlParseError(f"Expected a table name, got {table.sql(DIALECT)!r}")
    if table.args.get("catalog"):
        raise SqlParseError(f"Table names have at most two parts (namespace.table): {table.sql()}")
    ns = table.args.get("db")
    alias = table.args.get("alias")
    return st.TableRef(
        ident(ns) if ns else None, ident(table.this), alias=ident(alias.this) if alias else None
    )


def _create(
    tree: exp.Create, base: dict[str, Any], table_type: str | None, sql: str
) -> st.Statement:
    kind = (tree.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise UnsupportedStatementError(f"CREATE {kind} is not supported")
    schema = tree.this
    if not isinstance(schema, exp.Schema):
        raise UnsupportedStatementError(
            "CREATE TABLE needs a column list (CREATE TABLE ... AS SELECT is not supported)"
        )
    if tree.expression is not None:
        raise UnsupportedStatementError("CREATE TABLE ... AS SELECT is not supported")
    columns: list[st.ColumnSpec] = []
    table_pk: list[str] = []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            columns.append(_column(item))
        elif isinstance(item, exp.PrimaryKey):
            table_pk.extend(
                ident(e.this if isinstance(e, exp.Ordered) else e) for e in item.expressions
            )
        else:
            raise UnsupportedStatementError(f"Unsupported table element: {item.sql(DIALECT)}")
    if table_pk:
        columns = _with_table_key(columns, table_pk)
    options: list[tuple[str, Any]] = []
    props = tree.args.get("properties")
    for prop in props.expressions if props else []:
        if not isinstance(prop, exp.Property):
            raise UnsupportedStatementError(f"Unsupported table property: {prop.sql(DIALECT)}")
        key = (
            prop.name.upper()
            if isinstance(prop.this, (exp.Var, exp.Identifier))
            else str(prop.this).upper()
        )
        options.append((key, _literal(prop.args.get("value"))))
    return st.CreateTable(
        **base,
        table=table_ref(schema.this),
        table_type=table_type,
        columns=tuple(columns),
        options=tuple(options),
        if_not_exists=bool(tree.args.get("exists")),
    )


def _with_table_key(columns: list[st.ColumnSpec], key: list[str]) -> list[st.ColumnSpec]:
    """Columns with a table-level ``PRIMARY KEY (a, b, ...)`` applied (key order kept)."""
    names = {c.name for c in columns}
    if len(set(key)) != len(key):
        raise SchemaError(f"PRIMARY KEY ({', '.join(key)}) names a column twice")
    for name in key:
        if name not in names:
            raise SchemaError(f"PRIMARY KEY names '{name}', which is not a column of the table")
    if any(c.primary_key for c in columns):
        raise SchemaError("A table has one PRIMARY KEY: a column constraint or PRIMARY KEY (...)")
    place = {name: i for i, name in enumerate(key, start=1)}
    composite = len(key) > 1
    return [
        st.ColumnSpec(
            c.name, c.type_name, False, True, c.default, place[c.name] if composite else 0
        )
        if c.name in place
        else c
        for c in columns
    ]


def _literal(node: Any) -> Any:
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        return float(text) if any(ch in text for ch in ".eE") else int(text)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_literal(node.this)
    if isinstance(node, (exp.Var, exp.Identifier, exp.Column)):
        return node.name
    if node is None:
        return None
    raise UnsupportedStatementError(f"Option values must be literals, got {node.sql(DIALECT)}")


def _column(cd: exp.ColumnDef) -> st.ColumnSpec:
    kind = cd.args.get("kind")
    if kind is None:
        raise SqlParseError(f"Column '{cd.name}' needs a type")
    type_name = kind.sql(DIALECT)
    if kind.this == exp.DataType.Type.USERDEFINED:
        type_name = kind.args.get("kind") or type_name
    nullable, pk, default, unique = True, False, None, False
    for con in cd.constraints:
        k = con.args.get("kind")
        if isinstance(k, exp.PrimaryKeyColumnConstraint):
            pk, nullable = True, False
        elif isinstance(k, exp.NotNullColumnConstraint):
            nullable = bool(k.args.get("allow_null"))
        elif isinstance(k, exp.DefaultColumnConstraint):
            default = k.this
        elif isinstance(k, exp.UniqueColumnConstraint) and not k.this and not k.args.get("nulls"):
            unique = True  # plain UNIQUE (not NULLS NOT DISTINCT, not over an expression)
        else:
            raise UnsupportedStatementError(f"Unsupported column constraint: {con.sql(DIALECT)}")
    return st.ColumnSpec(ident(cd.this), str(type_name), nullable, pk, default, unique=unique)


def _insert(tree: exp.Insert, base: dict[str, Any], _t: str | None, _sql: str) -> st.Statement:
    target = tree.this
    columns = None
    if isinstance(target, exp.Schema):
        columns = tuple(ident(c) for c in target.expressions)
        target = target.this
    if tree.args.get("overwrite"):
        raise UnsupportedStatementError("INSERT OVERWRITE is not supported")
    ref = table_ref(target)
    returning = _returning(tree, ref)
    conflict = _on_conflict(tree)
    source = tree.expression
    if isinstance(source, exp.Values):
        rows = tuple(
            tuple(r.expressions) if isinstance(r, exp.Tuple) else (r,) for r in source.expressions
        )
        return st.Insert(
            **base,
            table=ref,
            columns=columns,
            rows=rows,
            returning=returning,
            on_conflict=conflict,
        )
    if isinstance(source, exp.Query):
        if tree.args.get("with_") is not None:
            # `WITH x AS (...) INSERT INTO t SELECT ... FROM x`: the CTEs belong
            # to the SELECT (they were dropped, and `x` read as a table).
            if not isinstance(source, exp.Select) or source.args.get("with_") is not None:
                raise UnsupportedStatementError(
                    "WITH before INSERT needs a plain SELECT after it; "
                    "write INSERT INTO t WITH ... SELECT ... instead"
                )
            source = source.copy()
            source.set("with_", tree.args["with_"].copy())
        return st.Insert(
            **base,
            table=ref,
            columns=columns,
            query=source,
            query_sql=source.sql(DIALECT),
            returning=returning,
            on_conflict=conflict,
        )
    raise UnsupportedStatementError("INSERT needs VALUES or a SELECT")


def _query(tree: exp.Query, base: dict[str, Any], _t: str | None, sql: str) -> st.Statement:
    return st.Query(**base, tree=tree, explain_sql=sql)


def _drop(tree: exp.Drop, base: dict[str, Any], _t: str | None, _sql: str) -> st.Statement:
    kind = (tree.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise UnsupportedStatementError(f"DROP {kind} is not supported")
    tables = tree.args.get("tables") or ([tree.this] if tree.this is not None else [])
    if len(tables) != 1:
        raise UnsupportedStatementError("DROP TABLE takes one table")
    return st.DropTable(**base, table=table_ref(tables[0]), if_exists=bool(tree.args.get("exists")))


def _update(tree: exp.Update, base: dict[str, Any], _t: str | None, _sql: str) -> st.Statement:
    from_ = tree.args.get("from_")
    if tree.args.get("from") or (
        from_ is not None
        and not all(
            isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier)
            for item in [from_.this, *(j.this for j in from_.this.args.get("joins") or ())]
        )
    ):
        raise UnsupportedStatementError(
            "UPDATE ... FROM takes tables (with aliases and joins); use a subquery in WHERE "
            "for anything else"
        )
    assignments = []
    for eq in tree.expressions:
        if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column):
            raise SqlParseError(f"Expected column = value, got {eq.sql(DIALECT)}")
        assignments.append((ident(eq.this), eq.expression))
    where = tree.args.get("where")
    ref = table_ref(tree.this)
    return st.Update(
        **base,
        table=ref,
        assignments=tuple(assignments),
        where=where.this if where is not None else None,
        tree=tree,
        returning=_returning(tree, ref),
    )


def _delete(tree: exp.Delete, base: dict[str, Any], _t: str | None, _sql: str) -> st.Statement:
    for item in tree.args.get("using") or ():
        if not isinstance(item, exp.Table) or not isinstance(item.this, exp.Identifier):
            raise UnsupportedStatementError(
                "DELETE ... USING takes tables (with aliases); use a subquery in WHERE "
                "for anything else"
            )
    where = tree.args.get("where")
    ref = table_ref(tree.this)
    return st.Delete(
        **base,
        table=ref,
        where=where.this if where is not None else None,
        tree=tree,
        returning=_returning(tree, ref),
    )


def _returning(tree: exp.Expression, ref: st.TableRef) -> tuple[str, ...] | None:
    """RETURNING's column names (``*`` for a star), qualified by the table's
    name or alias at most; expressions are not supported."""
    ret = tree.args.get("returning")
    if ret is None:
        return None
    if ret.args.get("into"):
        raise UnsupportedStatementError("RETURNING ... INTO is not supported")
    names: list[str] = []
    for e in ret.expressions:
        if isinstance(e, exp.Column) and e.table:
            qualifier = ident(e.args.get("table"))
            if e.args.get("db") or qualifier != (ref.alias or ref.name):
                raise ColumnNotFoundError(
                    f"RETURNING: {e.sql(DIALECT)} does not name a column of "
                    f"{ref.alias or ref.name}",
                    column_name=e.name,
                )
        if isinstance(e, exp.Star) or isinstance(e, exp.Column) and isinstance(e.this, exp.Star):
            names.append("*")
        elif isinstance(e, exp.Column):
            names.append(ident(e))
        else:
            raise UnsupportedStatementError("RETURNING supports column names and * only")
    return tuple(names)


def _on_conflict(tree: exp.Insert) -> st.OnConflict | None:
    """``ON CONFLICT ...`` or ``INSERT OR IGNORE / OR REPLACE`` -> an OnConflict."""
    alternative = (tree.args.get("alternative") or "").upper()
    conflict = tree.args.get("conflict")
    if alternative and conflict is not None:
        raise UnsupportedStatementError(f"INSERT OR {alternative} cannot also have ON CONFLICT")
    if alternative in ("IGNORE", "REPLACE"):
        return st.OnConflict("nothing" if alternative == "IGNORE" else "replace")
    if alternative:
        raise UnsupportedStatementError(
            f"INSERT OR {alternative} is not supported (use INSERT OR IGNORE, INSERT OR "
            "REPLACE or ON CONFLICT)"
        )
    if conflict is None:
        return None
    if conflict.args.get("duplicate"):
        raise UnsupportedStatementError(
            "ON DUPLICATE KEY UPDATE is not supported; use ON CONFLICT (pk) DO UPDATE SET ..."
        )
    if conflict.args.get("constraint") is not None:
        raise UnsupportedStatementError(
            "ON CONFLICT ON CONSTRAINT is not supported; name the primary key column: "
            "ON CONFLICT (id)"
        )
    target = tuple(
        ident(k.this if isinstance(k, exp.Ordered) else k)
        for k in conflict.args.get("conflict_keys") or []
    )
    action_node = conflict.args.get("action")
    action = (action_node.name if isinstance(action_node, exp.Expression) else "").upper()
    if action == "DO NOTHING":
        return st.OnConflict("nothing", target)
    if action != "DO UPDATE":
        raise UnsupportedStatementError(f"ON CONFLICT {action} is not supported")
    assignments = []
    for eq in conflict.expressions:
        if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column):
            raise SqlParseError(f"Expected column = value, got {eq.sql(DIALECT)}")
        assignments.append((ident(eq.this), eq.expression))
    where = conflict.args.get("where")
    return st.OnConflict(
        "update", target, tuple(assignments), where.this if where is not None else None
    )


def _alter(tree: exp.Alter, base: dict[str, Any], _t: str | None, _sql: str) -> st.Statement:
    return st.AlterTable(**base, table=table_ref(tree.this), tree=tree)


_HANDLERS: dict[type, Callable[..., st.Statement]] = {
    exp.Create: _create,
    exp.Insert: _insert,
    exp.Drop: _drop,
    exp.Update: _update,
    exp.Delete: _delete,
    exp.Alter: _alter,
}


def to_statement(
    tree: exp.Expression, base: dict[str, Any], table_type: str | None, sql: str
) -> st.Statement:
    if isinstance(tree, exp.Query):
        return _query(tree, base, table_type, sql)
    handler = _HANDLERS.get(type(tree))
    if handler is None:
        first = base["sql"].split(None, 1)[0].upper() if base["sql"].strip() else ""
        raise UnsupportedStatementError(f"Unsupported statement: {first} ...")
    return handler(tree, base, table_type, sql)
