"""The context pane's last failure links to the failing cell: `NAME.ipynb#cell-id=ID`,
which JupyterLab opens by selecting that cell (tests/e2e/test_jupyterlab.py clicks it).

The failure is a real run's (support.failed_project: broken.ipynb, cell 5); the id must
be the one the saved notebook has now, even after cells were added above the failing one.
In a real JupyterLab (`nb-assets lab`, Chromium), the link in the pane at the end of a long
notebook brings the failing cell far above it into view (issue 22).
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from nb_assets.jupyter.cell_links import failed_cell_id
from nb_assets.jupyter.context_pane import notebook_context
from nb_assets.jupyter.context_pane_view import render_html
from support.cli import NB_ASSETS
from support.failed_project import FailedProject, failed_project  # noqa: F401  (fixture)
from support.lab_server import chromium, lab_page, lab_server, open_notebook, wait_idle
from support.notebook_factory import RUNTIME, code, md, params, write_notebook


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

    notebook = write_notebook(tmp_path / "draft.ipynb", md("# A draft"), code(RUNTIME),
                              code("\n\nimport requests  # a first line longer than the label keeps, cut short"))
    shown = html.unescape(findings_html(notebook))
    assert "<td>cell 3 (`import requests  # a first line longer …`), line 3</td>" in shown, shown


# The browser half: the link, clicked in JupyterLab, brings the failing cell into view, also when the
# notebook is long and the cell far above the pane (issue 22). JupyterLab does not select it there:
# Notebook.setFragment selects only a cell with inViewport false, and in the default windowing mode
# every attached cell keeps it true. The "full" mode selects it but broke the link from another
# notebook (tests/e2e/test_jupyterlab.py test_d), so the pane's cell stays the active one.
FILLER_CELLS = 30  # markdown notes below the failing cell: the pane at the end is far below it
JS_TARGET = """(id) => {
  const panel = window.jupyterapp.shell.currentWidget, nb = panel.content;
  const index = nb.widgets.findIndex(c => c.model.id === id);
  const cell = nb.widgets[index].node.getBoundingClientRect(), view = nb.outerNode.getBoundingClientRect();
  return {path: panel.context.path, index, active: nb.activeCellIndex,
          visible: cell.bottom > view.top && cell.top < view.bottom};
}"""


@pytest.mark.slow
@pytest.mark.browser
def test_in_jupyterlab_the_link_brings_an_out_of_view_failing_cell_into_view(tmp_path: Path, warehouse: Path) -> None:
    executable = chromium()
    project = tmp_path / "project"
    notes = [md(f"## Step {i}\n\n" + "A note that takes room on the page.\n\n" * 6) for i in range(FILLER_CELLS)]
    notebook = write_notebook(project / "long.ipynb", md("# Long"), code(RUNTIME), params("d = 0"), code("x = 1 / d"), *notes)
    ran = subprocess.run([*NB_ASSETS, "run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local"],
                         cwd=project, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 1 and "ZeroDivisionError" in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    # The author then adds the pane at the end of the notebook, as after any failure.
    nb = nbformat.read(notebook, as_version=4)
    failing = nb.cells[3].id
    nb.cells.append(code("%load_ext nb_assets.notebook\n%nb_context"))
    nbformat.write(nb, notebook)

    env = {k: v for k, v in os.environ.items() if k not in ("NB_ASSETS_WAREHOUSE", "DAGSTER_HOME")}
    with lab_server(project, tmp_path, {**env, "NB_ASSETS_WAREHOUSE": str(warehouse)}, expose_app=True) as lab, \
            lab_page(executable) as page:
        open_notebook(page, lab, "long.ipynb")
        page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = nb.widgets.length - 1; }")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")  # the pane's cell only
        wait_idle(page)
        link = page.locator("a.nb-context-cell-link")
        link.wait_for()
        assert link.inner_text() == "go to cell 4 in long.ipynb"
        link.scroll_into_view_if_needed()
        before = page.evaluate(JS_TARGET, failing)
        assert before["index"] == 3 and not before["visible"], before  # out of view: the case at issue
        link.click()
        try:
            page.wait_for_function(f"(id) => {{ const t = ({JS_TARGET})(id); return t.visible; }}",
                                   arg=failing, timeout=10_000)
        except Exception:  # noqa: BLE001 - say what the page shows instead
            pytest.fail(f"after the click: {page.evaluate(JS_TARGET, failing)}")
        assert len(page.context.pages) == 1  # handled inside JupyterLab, not opened as /files/... in a new tab
        assert page.offsite == []
