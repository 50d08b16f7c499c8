"""The starter notebook `nb-assets new` writes: one template, its placeholders filled, bad names refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nb_assets.analysis.parser import parse_notebook
from nb_assets.errors import DeclarationError
from nb_assets.project.starter import starter_notebook, template_text, write_starter


def test_the_starter_is_valid_and_declares_one_input_one_output_and_a_parameter(tmp_path: Path) -> None:
    path = write_starter(tmp_path / "top_orders.ipynb", table="raw.orders")
    spec = parse_notebook(path)
    assert [i.name for i in spec.inputs] == ["rows"] and spec.input_tables == ("raw.orders",)
    assert spec.output_tables == ("mart.top_orders",)
    assert [p.name for p in spec.parameters] == ["limit"]
    assert not spec.findings, spec.findings
    assert "{table}" not in path.read_text() and "Top orders" in path.read_text()
    assert "".join(json.loads(path.read_text())["cells"][-1]["source"]) == "%nb_schedule"  # the form, as the manual shows


def test_braces_an_author_might_write_survive_and_the_template_stays_one_file() -> None:
    notebook = starter_notebook("x", table="raw.web_events", output="mart.events")
    text = json.dumps(notebook)
    assert "raw.web_events" in text and "mart.events" in text
    assert template_text().count("{table}") == 2  # the placeholders live only in the shipped template


@pytest.mark.parametrize("name,table,output,says", [
    ("Top-Orders", "raw.orders", None, "lowercase letters"),
    ("x", "orders", None, "--table 'orders'"),
    ("x", "raw.orders", "Mart.X", "--output 'Mart.X'"),
])
def test_bad_names_are_refused_with_the_fix(name: str, table: str, output: str | None, says: str) -> None:
    with pytest.raises(DeclarationError, match=says.replace(".", r"\.")):
        starter_notebook(name, table=table, output=output)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").write_text("mine")
    with pytest.raises(DeclarationError, match="exists already"):
        write_starter(tmp_path / "a.ipynb")
    assert (tmp_path / "a.ipynb").read_text() == "mine"


def test_the_manual_shows_the_template_as_it_is() -> None:
    """docs/authoring-in-jupyterlab.md shows the starter cell by cell (and runs it): it may not drift."""
    from support.paths import REPO

    page = (REPO / "docs" / "authoring-in-jupyterlab.md").read_text()
    notebook = starter_notebook("top_orders")
    for cell in notebook["cells"][1:]:  # the code cells; the markdown cell's title is shown shortened
        assert "".join(cell["source"]) in page, cell["source"]
