"""A new notebook, never saved, is empty on disk: the form's buttons and the pane say "save it
first" instead of check's findings of an empty file (`no-kernelspec`); once saved, the buttons
run the command again. Real ipywidgets, the real `nb-assets schedule` and `nb-assets check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from nb_assets.jupyter.context_pane import live_pane, notebook_context
from nb_assets.jupyter.context_pane_view import render_html, render_text
from nb_assets.jupyter.schedule_form import ScheduleForm
from nb_assets.project.starter import starter_notebook
from support.paths import REPO

SAVE_FIRST = "save the notebook first (File → Save Notebook), then press the button again"


@pytest.fixture
def untitled(tmp_path: Path) -> Path:
    """notebooks/Untitled.ipynb as JupyterLab's "new notebook" writes it: no cells, no metadata."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "policy.yaml", root / "policy.yaml")
    (root / "definitions.py").write_text("from pathlib import Path\nNOTEBOOKS = []\nPOLICY = Path(__file__).parent / 'policy.yaml'\n")
    notebook = root / "notebooks" / "Untitled.ipynb"
    notebook.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), str(notebook))
    return notebook


def test_the_forms_buttons_say_save_it_first_then_run_once_it_is_saved(untitled: Path) -> None:
    form = ScheduleForm(untitled)
    form.owners.value, form.cron.value = "a@example.com", "0 6 * * *"
    for step in ("check", "preview", "trial", "schedule"):
        form.press(step)  # type: ignore[arg-type]
        assert f"Untitled.ipynb is empty as saved: {SAVE_FIRST}" in form.status.value, (step, form.status.value)
        assert "no-kernelspec" not in form.result.value + form.status.value
        assert not any(button.disabled for button in form.buttons.values())
    assert not (untitled.parents[1] / ".nb_assets").exists()  # no command ran

    untitled.write_text(json.dumps(starter_notebook("top_orders")))  # saved: the starter's cells
    form.press("check")
    assert "empty as saved" not in form.status.value and "Check:" in form.status.value, form.status.value
    assert "<table class='nb-findings'>" in form.result.value or "no findings in any cell" in form.result.value, form.result.value


def test_the_pane_says_save_it_first_and_so_does_its_check(untitled: Path) -> None:
    context = notebook_context(untitled)
    said = "Untitled.ipynb is empty as saved: save the notebook first (File → Save Notebook), then press Refresh"
    assert said in (context.problem or "") and said in render_text(context)
    shown = render_html(context)
    assert "no-kernelspec" not in shown and "To schedule it" not in shown and not context.findings

    pane = live_pane(untitled)
    refresh, check = pane.children[0].children
    check.click()
    findings = pane.children[2].value
    assert f"Untitled.ipynb is empty as saved: {SAVE_FIRST}" in findings and "no-kernelspec" not in findings

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])  # saved, without a kernelspec
    nbformat.write(nb, str(untitled))
    check.click()  # a file with cells and no kernelspec: check's warning is what is true now
    assert "no-kernelspec" in pane.children[2].value and "empty as saved" not in pane.children[2].value
    refresh.click()
    assert "empty as saved" not in render_text(pane.context) and any("no-kernelspec" in f for f in pane.context.findings)
