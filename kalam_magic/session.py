"""Engines and statement execution for the magic.

``EnginePool`` keeps one engine per data directory for the life of the
extension: reconnecting to a directory reuses its engine (RocksDB allows one
opener per directory and process). When a ``kalam serve`` owns the directory
the engine is a ``RemoteEngine`` client of it, with the same surface. ``run_sql`` asks the engine to split a
cell into statements, binds ``:name`` parameters from the notebook namespace
and executes the statements in order, stopping at the first error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import engine as kalam_engine
from engine import Engine, KalamError, Result
from engine.errors import ParameterError, QueryCancelledError
from engine.remote import RemoteEngine
from kalam_magic.errors import KalamCellError, cell_position
from kalam_magic.progress import ProgressBar

#: What the magic runs statements on: the engine in this process, or a client
#: of the ``kalam serve`` that owns the data directory.
AnyEngine: TypeAlias = Engine | RemoteEngine


class EnginePool:
    """One open engine per data directory, closed together on unload.

    ``Engine.open`` connects to the directory's Kalam server when one runs
    (every notebook then shares the directory); ``embedded=True`` opens it in
    this kernel instead. A client whose server went away is replaced on the
    next use, so a restarted server (or a now free directory) is picked up."""

    def __init__(self) -> None:
        self._engines: dict[Path, AnyEngine] = {}

    def get(self, data_dir: Path, *, durability: str, embedded: bool = False) -> AnyEngine:
        key = data_dir.resolve()
        engine = self._engines.get(key)
        if isinstance(engine, RemoteEngine) and engine.lost:
            del self._engines[key]
            engine.close()
            engine = None
        if engine is None:
            key.mkdir(parents=True, exist_ok=True)
            engine = Engine.open(str(key), durability=durability, embedded=embedded)
            self._engines[key] = engine
        return engine

    def __len__(self) -> int:
        return len(self._engines)

    def close_all(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()


@dataclass(frozen=True)
class SqlSource:
    """SQL text as typed, and where it sits: lines above it, and what to call it."""

    text: str
    line_offset: int = 0
    where: str = "cell"
    #: Absolute path hidden from error messages.
    data_dir: str | None = None


# Both are pure functions of the text; a notebook re-runs the same cells, so
# remembering their answers keeps the engine's tokenizer out of the magic's cost.
@functools.lru_cache(maxsize=512)
def _statements(sql: str) -> tuple[Any, ...]:
    return tuple(kalam_engine.split_statements(sql))


@functools.lru_cache(maxsize=512)
def _parameter_names(sql: str) -> tuple[str, ...]:
    return tuple(kalam_engine.parameter_names(sql))


def bind_parameters(sql: str, namespace: Mapping[str, Any]) -> dict[str, Any] | None:
    """Values for the ``:name`` placeholders the engine found in ``sql``, read from ``namespace``.

    Values travel as bound parameters; they are never written into the SQL text.
    """
    names = _parameter_names(sql)
    if not names:
        return None
    missing = [n for n in names if n not in namespace]
    if missing:
        listed = ", ".join(f":{n}" for n in missing)
        raise ParameterError(
            f"{listed} {'is' if len(missing) == 1 else 'are'} not defined in the notebook; "
            "assign a Python variable of that name first"
        )
    return {n: namespace[n] for n in names}


Executor = Callable[[AnyEngine, str, "dict[str, Any] | None", str, ProgressBar], Result]

# Long statements (FLUSH of a large table) report progress through a callback
# when the engine's execute() accepts one; otherwise they run without a bar.
_EXECUTE_TAKES_PROGRESS = "progress" in inspect.signature(Engine.execute).parameters


def execute(
    engine: AnyEngine, sql: str, params: dict[str, Any] | None, user: str, progress: ProgressBar
) -> Result:
    if _EXECUTE_TAKES_PROGRESS:
        return engine.execute(sql, params, user=user, progress=progress)  # type: ignore[call-arg]
    return engine.execute(sql, params, user=user)


_EXPLAIN = "EXPLAIN "


def explain(
    engine: AnyEngine, sql: str, params: dict[str, Any] | None, user: str, progress: ProgressBar
) -> Result:
    """The plan of one statement, with the engine's scan and pruning figures.

    The engine has no ``explain()`` entry point yet, so this asks for the plan
    with its own EXPLAIN statement; positions are moved back past the prefix.
    """
    try:
        return engine.execute(_EXPLAIN + sql, params, user=user)
    except KalamError as err:
        if err.line == 1 and isinstance(err.column, int):
            err.column = max(1, err.column - len(_EXPLAIN))
        raise


def run_sql(
    engine: AnyEngine,
    source: SqlSource,
    *,
    user: str,
    namespace: Mapping[str, Any],
    executor: Executor = execute,
    progress_threshold: int = 0,
) -> list[Result]:
    """Run every statement of ``source`` in order; raise ``KalamCellError`` at the first error."""
    try:
        statements = _statements(source.text)
    except KalamError as err:
        # Split errors are already relative to the whole text.
        raise _cell_error(err, source, 1, 1, None) from err
    results: list[Result] = []

    def number(index: int) -> int | None:
        return index if len(statements) > 1 else None

    for index, stmt in enumerate(statements, start=1):
        try:
            params = bind_parameters(stmt.sql, namespace)
            with ProgressBar(f"statement {index}", threshold=progress_threshold) as bar:
                results.append(executor(engine, stmt.sql, params, user, bar))
        except KalamError as err:
            raise _cell_error(err, source, stmt.line, stmt.column, number(index)) from err
        except KeyboardInterrupt:
            # The engine cancels on interrupt and stays usable; report it like any
            # user-facing error so the cell fails without a traceback.
            cancelled = QueryCancelledError("Query cancelled by a kernel interrupt")
            raise _cell_error(cancelled, source, stmt.line, stmt.column, number(index)) from None
    return results


def _cell_error(
    err: KalamError, source: SqlSource, line: int, column: int, index: int | None
) -> KalamCellError:
    pos = cell_position(
        err, statement_line=line, statement_column=column, line_offset=source.line_offset
    )
    lines = source.text.split("\n")
    i = pos.line - source.line_offset - 1
    return KalamCellError(
        err,
        position=pos,
        source_line=lines[i] if 0 <= i < len(lines) else None,
        statement_index=index,
        where=source.where,
        data_dir=source.data_dir,
    )
