"""The context pane's last failure links to the failing cell: `NAME.ipynb#cell-id=ID`,
which JupyterLab opens by selecting that cell (tests/e2e/test_jupyterlab.py clicks it).

The failure is a real run's (support.failed_project: broken.ipynb, cell 5); the id must
be the one the saved notebook has now, even after cells were added above the failing one.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from nb_assets.jupyter.cell_links import failed_cell_id
from nb_assets.jupyter.context_pane import notebook_context
from nb_assets.jupyter.context_pane_view import render_html
from support.failed_project import FailedProject, failed_project  # noqa: F401  (fixture)


def _ids(notebook: Path) -> list[str]:
    return [c["id"] for c in json.loads(notebook.read_text())["cells"]]


def test_the_last_failure_links_to_the_failing_cell_by_its_id(failed_project: FailedProject, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the runs are found in the project's .dagster_home
    notebook = failed_project.root / "broken.ipynb"
    pane = html.unescape(render_html(notebook_context(notebook)))
    failure = pane[pane.index("<h4>Last failure"):]
    assert (f"<a class='nb-context-cell-link' href='broken.ipynb#cell-id={_ids(notebook)[4]}'>go to cell 5 in broken.ipynb</a>"
            " (`total = len(rows)`)</p>") in failure


def test_the_id_follows_the_cell_when_cells_are_added_above_it(
    failed_project: FailedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    [run] = [r for r in notebook_context(failed_project.root / "broken.ipynb").runs
             if r.run_id == failed_project.broken_run]
    assert run.executed is not None
    edited = tmp_path / "broken.ipynb"
    shutil.copy(failed_project.root / "broken.ipynb", edited)
    nb = nbformat.read(edited, as_version=4)
    failing = nb.cells[4].id
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("A note added after the run"))
    nbformat.write(nb, edited)
    assert failed_cell_id(edited, 5, run.executed) == failing  # now the saved file's 6th cell
    assert failed_cell_id(edited, 5) == nb.cells[4].id != failing  # without the run's notebook: by number
    assert failed_cell_id(edited, 99) is None


def test_check_names_each_cell_by_its_first_line(tmp_path: Path) -> None:
    """JupyterLab's prompt numbers skip markdown cells and ours count them: the first line finds the cell."""
    from nb_assets.jupyter.cell_findings import findings_html
    from support.notebook_factory import RUNTIME, code, md, write_notebook

    notebook = write_notebook(tmp_path / "draft.ipynb", md("# A draft"), code(RUNTIME),
                              code("\n\nimport requests  # a first line longer than the label keeps, cut short"))
    shown = html.unescape(findings_html(notebook))
    assert "<td>cell 3 (`import requests  # a first line longer …`), line 3</td>" in shown, shown
