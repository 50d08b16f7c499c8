"""The notebook `nb-assets schedule --git` commits: outputs, execution counts and saved widget
state stripped, the code as saved; the form's and the context pane's cells never count as data."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from nb_assets.cli.committed_notebook import is_tool_cell, saved_output_cells, without_outputs
from support.notebook_factory import RUNTIME, code, md, write_notebook


def _ran(path: Path) -> Path:
    """As Jupyter saves a notebook after Run All with the form shown."""
    notebook = write_notebook(path, md("# x"), code(RUNTIME), code("rows = 1\nrows"), code("%nb_schedule"),
                              code("%load_ext nb_assets.notebook\n%nb_context"))
    nb = nbformat.read(str(notebook), as_version=4)
    for number, cell in enumerate(nb.cells[1:], start=1):
        cell.execution_count = number
        cell.outputs = [nbformat.v4.new_output("display_data", {"text/plain": f"shown {number}"})]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, str(notebook))
    return notebook


def test_every_output_count_and_widget_state_is_stripped_and_the_file_is_left_alone(tmp_path: Path) -> None:
    notebook = _ran(tmp_path / "x.ipynb")
    before = notebook.read_bytes()
    text = without_outputs(notebook)
    assert text is not None and notebook.read_bytes() == before
    copy = nbformat.reads(text, as_version=4)
    assert [(c.outputs, c.execution_count) for c in copy.cells if c.cell_type == "code"] == [([], None)] * 4
    assert "widgets" not in copy.metadata
    assert [c.source for c in copy.cells] == [c.source for c in nbformat.read(str(notebook), as_version=4).cells]


def test_a_clean_notebook_is_committed_as_it_is(tmp_path: Path) -> None:
    assert without_outputs(write_notebook(tmp_path / "x.ipynb", code(RUNTIME), code("%nb_schedule"))) is None


def test_only_cells_that_may_show_data_are_counted(tmp_path: Path) -> None:
    assert saved_output_cells(_ran(tmp_path / "x.ipynb")) == [2, 3]  # the runtime's and the rows'; not the form, not the pane
    assert is_tool_cell("%nb_schedule") and is_tool_cell("# the form\n%nb_schedule notebooks/x.ipynb\n")
    assert is_tool_cell("%load_ext nb_assets.notebook\n%nb_context clean_orders.ipynb")
    assert not is_tool_cell("%load_ext nb_assets.notebook") and not is_tool_cell("%nb_schedule\nrows.head()")
    assert not is_tool_cell("") and not is_tool_cell(json.dumps({"nb_schedule": 1}))
