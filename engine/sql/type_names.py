"""``arrow_typeof`` names the type users see, whichever tier rows come from.

Segments' TEXT columns stay Utf8View inside DataFusion (no cast per value at
the scan, ``engine.exec.cast``) while hot rows and the warm cache hold Utf8,
and results leave as Utf8 either way. The one place the difference shows is
``arrow_typeof``, which would say ``Utf8View`` for a flushed row and ``Utf8``
for the same row in hot: its answer is written with the view types as the
plain ones (also inside nested types, e.g. ``List(... Utf8View ...)``).
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from engine.sql.tokens import rewritten

_TYPEOF = re.compile(r"\barrow_typeof\s*\(", re.IGNORECASE)


def plain_type_names(sql: str) -> tuple[Any, str] | None:
    """(tree, text) of ``sql`` with each ``arrow_typeof(x)`` as
    ``replace(arrow_typeof(x), 'Utf8View', 'Utf8')``; None when it has none."""
    if _TYPEOF.search(sql) is None:
        return None

    def rewrite(tree: Any) -> bool:
        calls = [
            node
            for node in tree.find_all(exp.Anonymous)
            if str(node.name).lower() == "arrow_typeof"
            and not (
                isinstance(node.parent, exp.Anonymous)
                and str(node.parent.name).lower() == "replace"
            )
        ]
        for node in calls:
            node.replace(
                exp.Anonymous(
                    this="replace",
                    expressions=[
                        node.copy(),
                        exp.Literal.string("Utf8View"),
                        exp.Literal.string("Utf8"),
                    ],
                )
            )
        return bool(calls)

    return rewritten(sql, rewrite)


_WRAPPED = re.compile(r'replace\((arrow_typeof\(.*?\)),Utf8\("Utf8View"\),Utf8\("Utf8"\)\)')


def written_names(table: Any) -> Any:
    """The result with the column names ``arrow_typeof(...)`` had as written
    (DataFusion names an unaliased projection after its expression, which the
    rewrite above wrapped)."""
    names = list(table.column_names)
    plain = [_WRAPPED.sub(r"\1", n) if "Utf8View" in n else n for n in names]
    return table if plain == names else table.rename_columns(plain)
