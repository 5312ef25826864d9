"""Imports flow downward: nothing below the ``Engine`` façade imports it, and
the engine's modules form no import cycle (run-time imports)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
SHELLS = {"engine", "engine.api", "engine.cli", "engine.demo"}  # the façade and its shells


def _modules() -> dict[str, Path]:
    out = {}
    for path in ENGINE.rglob("*.py"):
        name = ".".join(path.relative_to(ENGINE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path, known: set[str]) -> set[str]:
    """Engine modules ``path`` imports at run time (``TYPE_CHECKING`` blocks skipped)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found & known


def test_nothing_below_the_facade_imports_it():
    mods = _modules()
    offenders = {
        name
        for name, path in mods.items()
        if name not in SHELLS and _imports(path, set(mods)) & {"engine", "engine.api"}
    }
    assert offenders == set()


def test_engine_modules_form_no_import_cycle():
    mods = _modules()
    graph = {name: _imports(path, set(mods)) - {name} for name, path in mods.items()}
    cycles = []

    def walk(node: str, trail: list[str], done: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in done:
                walk(nxt, [*trail, nxt], done)
        done.add(node)

    finished: set[str] = set()
    for start in sorted(graph):
        if start not in finished:
            walk(start, [start], finished)
    # The package __init__ re-exports the façade; a module importing a package
    # runs its __init__, so those edges are part of the check too.
    assert cycles == []
