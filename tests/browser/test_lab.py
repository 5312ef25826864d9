"""What a person sees in JupyterLab (issue 13), checked in a real browser.

Every notebook in ``notebooks/`` is opened on the "Python 3 (Kalam)" kernel
and run with Run › Run All Cells; the rendered page is then checked: every
code cell ran, result tables are HTML tables, charts are drawn, errors are
short blocks without a traceback. Two scratch notebooks check exact cells,
the footer, an error's caret, completion of table names in a ``%%kalam``
cell, the progress line and Kernel › Interrupt of a query that never ends.
A screenshot of each page is saved under the pytest temporary directory;
``KALAM_README_SHOTS=DIR`` also writes the README's pictures there.

The page is loaded once per session; each test opens its notebook in it and
closes it after (see ``conftest``), and every wait is on a DOM or kernel
condition with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from labserver import CLOSE_ALL, NOTEBOOKS, KernelPool, Lab, shoot_quietly

NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
IDLE = "Python 3 (Kalam) | Idle"

ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


OPEN = """async (path) => {
  await window.jupyterapp.commands.execute('docmanager:open', {path, factory: 'Notebook'});
}"""
# This notebook is the current document and its own kernel is idle (not the
# status of a notebook closed a moment ago).
KERNEL_IDLE = """(path) => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || w.context.path !== path || !w.sessionContext) return false;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""


@contextmanager
def opened(page: Any, kernels: KernelPool, name: str, shots: Path) -> Iterator[Any]:
    """``name`` open in the page on a ready Kalam kernel of its own; closed after,
    and its kernel shut down (in the background). A failure is photographed
    (``shots/failure.png``) before the notebook closes."""
    kernels.ready(name)
    try:
        page.evaluate(OPEN, name)
        page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=60_000)
        page.wait_for_function(KERNEL_IDLE, arg=name, timeout=90_000)
        page.get_by_text(IDLE).wait_for(timeout=30_000)
        yield page
    except BaseException:
        shoot_quietly(page, shots / "failure.png")
        raise
    finally:
        # The document first, so the page never sees its kernel go away.
        page.evaluate(CLOSE_ALL)
        kernels.stop(name)


def menu(page: Any, top: str, item: str, command: str) -> None:
    """Click ``top`` › ``item`` once the app enables its ``command`` (right
    after a notebook opens, the notebook tracker may not have caught up, and a
    click on a disabled item does nothing)."""
    page.wait_for_function(
        "(id) => window.jupyterapp.commands.isEnabled(id)", arg=command, timeout=30_000
    )
    page.get_by_role("menuitem", name=top, exact=True).click()
    # An item's accessible name ends with its shortcut, if it has one ("I, I").
    page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(item)}\b")).first.click()


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def run_all(page: Any, timeout_ms: int = 90_000) -> None:
    menu(page, "Run", "Run All Cells", "notebook:run-all-cells")
    page.wait_for_function(ALL_RAN, timeout=timeout_ms)
    page.get_by_text(IDLE).wait_for(timeout=timeout_ms)


def code_cells(page: Any) -> list[Any]:
    return page.locator(f"{PANEL} .jp-CodeCell").all()


def write_notebook(lab: Lab, name: str, cells: list[tuple[str, list[str]]]) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {"tags": tags},
                "outputs": [],
                "source": source,
            }
            for source, tags in cells
        ],
        "metadata": {
            "kernelspec": {
                "name": "kalam",
                "display_name": "Python 3 (Kalam)",
                "language": "python",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    target = lab.root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb))


def expected_errors(name: str) -> int:
    nb = json.loads((NOTEBOOKS / name).read_text())
    return sum(
        "raises-exception" in c.get("metadata", {}).get("tags", [])
        for c in nb["cells"]
        if c["cell_type"] == "code"
    )


# ---------------------------------------------------------------- shipped notebooks


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_every_notebook_runs_on_the_kalam_kernel_and_renders(page, kernels, name, tmp_path):
    with opened(page, kernels, name, tmp_path):
        run_all(page)
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        errors = page.locator(f"{PANEL} [data-mime-type='application/vnd.jupyter.stderr']").all()
        texts = [e.inner_text() for e in errors]
        # Only cells tagged raises-exception fail, each as one short block.
        assert len(texts) == expected_errors(name), texts
        for text in texts:
            assert "Traceback" not in text and ".py" not in text, text
            assert len(text.strip().splitlines()) <= 6, text
        # The first cell's %load_ext kalam_magic printed nothing on this kernel.
        first = code_cells(page)[0].inner_text()
        assert "already loaded" not in first
        tables = page.locator(f"{PANEL} table.kalam-table").count()
        charts = page.locator(f"{PANEL} .vega-embed svg, {PANEL} .vega-embed canvas").count()
        assert tables + charts > 0
        if name == "charts.ipynb":
            assert page.locator(f"{PANEL} .jp-OutputArea-output .vega-embed").count() == 6


# ---------------------------------------------------------------- exact rendering

SCRATCH = [
    (
        "%%kalam\nCREATE TABLE people (id INT PRIMARY KEY, name TEXT);\n"
        "INSERT INTO people (id, name) VALUES (1, 'ana'), (2, 'ben')",
        [],
    ),
    ("%%kalam\nSELECT id, name FROM people ORDER BY id", []),
    ("%%kalam\nSELECT id,\n       nmae\nFROM people", ["raises-exception"]),
    (
        "%%kalam --chart bar --x name --y score\n"
        "SELECT name, id * 10 AS score FROM people ORDER BY name",
        [],
    ),
]


def _readme_shot(locator: Any, name: str, tmp_path: Path) -> None:
    target = os.environ.get("KALAM_README_SHOTS")
    locator.screenshot(path=str(Path(target) / name if target else tmp_path / name))


# Each scratch notebook in a directory of its own: with no data directory
# named, its kernel uses ./kalam-data there, never another kernel's.
RENDER = "scratch_render/scratch_render.ipynb"
COMPLETION = "scratch_typing/scratch_typing.ipynb"
INTERRUPT = "scratch_interrupt/scratch_interrupt.ipynb"


@pytest.mark.notebook(RENDER)
def test_results_errors_and_charts_render_as_a_person_reads_them(page, lab, kernels, tmp_path):
    write_notebook(lab, RENDER, SCRATCH)
    with opened(page, kernels, RENDER, tmp_path):
        run_all(page)
        page.screenshot(path=str(tmp_path / "scratch_render.png"), full_page=True)
        cells = code_cells(page)

        table = cells[1].locator("table.kalam-table")
        assert table.locator("thead tr").first.locator("th").all_inner_texts() == ["id", "name"]
        assert table.locator("thead tr.kalam-types th").all_inner_texts() == ["INT", "TEXT"]
        rows = [r.locator("td").all_inner_texts() for r in table.locator("tbody tr").all()]
        assert rows == [["1", "ana"], ["2", "ben"]]
        footer = cells[1].locator(".kalam-footer").inner_text()
        assert re.match(r"2 rows · \d+\.\d\d ms", footer), footer

        outputs = cells[2].locator(".jp-OutputArea-output")
        assert outputs.count() == 1
        error = outputs.inner_text()
        assert error.splitlines()[0] == (
            "ColumnNotFoundError: Unknown column nmae; did you mean name? (columns here: id, name)"
        )
        assert "at line 3, column 8 of the cell" in error
        caret_line = error.splitlines()[-1]
        assert caret_line.index("^") == error.splitlines()[-2].index("nmae")
        assert "Traceback" not in error

        chart = cells[3].locator(".vega-embed")
        chart.locator("svg, canvas").first.wait_for()
        assert "score" in chart.inner_text() or chart.locator("svg, canvas").count() > 0

        _readme_shot(cells[1].locator(".jp-OutputArea-output"), "result.png", tmp_path)
        _readme_shot(cells[3].locator(".jp-OutputArea-output"), "chart.png", tmp_path)


# ---------------------------------------------------------------- typing and interrupting

TYPING = [
    (
        "%%kalam\nCREATE TABLE IF NOT EXISTS parcels (id INT PRIMARY KEY, weight DOUBLE);\n"
        "CREATE TABLE IF NOT EXISTS partners (id INT PRIMARY KEY)",
        [],
    ),
    ("%%kalam\nSELECT * FROM par", []),
    ("%kalam SELECT value FROM range(0, 1000000000000) WHERE value % 1000 = 7", []),
]


def _run_cell(page: Any, cell: Any) -> None:
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


@pytest.mark.notebook(COMPLETION)
def test_completion_pops_up_table_names_in_a_kalam_cell(page, lab, kernels, tmp_path):
    write_notebook(lab, COMPLETION, TYPING)
    with opened(page, kernels, COMPLETION, tmp_path):
        cells = code_cells(page)
        _run_cell(page, cells[0])
        first = cells[0].locator(".jp-InputArea-prompt")
        page.wait_for_function("(el) => /\\[1\\]/.test(el.textContent)", arg=first.element_handle())
        editor = cells[1].locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.press("Tab")
        completer = page.locator(".jp-Completer")
        completer.wait_for(state="visible", timeout=15_000)
        items = completer.locator(".jp-Completer-match").all_inner_texts()
        page.screenshot(path=str(tmp_path / "completion.png"))
        assert [i.strip() for i in items] == ["parcels", "partners"]
        kinds = completer.locator(".jp-Completer-typeExtended").all_inner_texts()
        assert kinds == ["table", "table"]


@pytest.mark.notebook(INTERRUPT)
def test_interrupt_returns_control_during_a_query_that_never_ends(page, lab, kernels, tmp_path):
    write_notebook(lab, INTERRUPT, TYPING)
    with opened(page, kernels, INTERRUPT, tmp_path):
        cell = code_cells(page)[2]
        _run_cell(page, cell)
        prompt = cell.locator(".jp-InputArea-prompt")
        page.wait_for_function("(el) => el.textContent.includes('*')", arg=prompt.element_handle())
        # Past a second the cell shows how long it has run and the rows so far.
        progress = cell.locator(".kalam-progress")
        progress.wait_for(timeout=15_000)
        assert re.match(r"running · \d+\.\d s · [\d,]+ rows so far", progress.inner_text())
        menu(page, "Kernel", "Interrupt Kernel", "kernelmenu:interrupt")
        started = time.monotonic()
        page.wait_for_function(
            "(el) => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=10_000
        )
        returned_in = time.monotonic() - started
        page.screenshot(path=str(tmp_path / "interrupt.png"))
        assert returned_in < 3.0, f"control came back after {returned_in:.1f} s"
        assert "QueryCancelledError" in cell.locator(".jp-OutputArea").inner_text()
        assert cell.locator(".kalam-progress").count() == 0 or not (
            cell.locator(".kalam-progress").inner_text().strip()
        )
