"""Replacing one entry of declarations.yaml in place (`nb-assets schedule --update`): the bytes
before and after it stay, whatever style the file is written in."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets import NotebookAsset, load_declarations_yaml
from nb_assets.errors import DeclarationError
from nb_assets.project.declarations_yaml import with_declaration, with_updated_declaration

HEAD = "# our notebooks\nnotebooks:\n  # a: the daily one, ask finance first\n"
TAIL = "  # b: the other team's\n  - path: b.ipynb\n    owners: [b@example.com]\nsources: []\n"


@pytest.mark.parametrize("entry", [
    "  - path: a.ipynb\n    cron: '0 5 * * *'  # five\n    params:\n      ds: x\n      days: [1, 2]\n",
    "  - {path: a.ipynb, cron: 0 5 * * *}\n",
    "  - path: a.ipynb\n    purpose: |\n      finance_reporting\n\n",
    "  -   path: a.ipynb\n      owners:\n        - a@example.com\n",
])
def test_the_entry_is_replaced_and_every_other_byte_stays(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "declarations.yaml"
    text = with_updated_declaration(HEAD + entry + TAIL, path, NotebookAsset("a.ipynb", owners=("o@example.com",), cron="0 7 * * *"))
    assert text.startswith(HEAD) and text.endswith(TAIL), text
    path.write_text(text)
    assert [(d.path, tuple(d.owners), d.cron) for d in load_declarations_yaml(path)] == [
        ("a.ipynb", ("o@example.com",), "0 7 * * *"), ("b.ipynb", ("b@example.com",), None)]


def test_a_list_at_the_left_margin_keeps_its_indentation(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    text = "notebooks:\n- path: a.ipynb\n  cron: '0 5 * * *'\n- path: b.ipynb\n"
    updated = with_updated_declaration(text, path, NotebookAsset("b.ipynb", owners=("o@example.com",), params={"x": [1]}))
    assert updated == "notebooks:\n- path: a.ipynb\n  cron: '0 5 * * *'\n- path: b.ipynb\n  owners: [o@example.com]\n  params:\n    x: [1]\n"


def test_what_append_writes_update_replaces(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    text = with_declaration(with_declaration("", path, NotebookAsset("a.ipynb")), path, NotebookAsset("b.ipynb"))
    updated = with_updated_declaration(text, path, NotebookAsset("a.ipynb", cron="0 6 * * *"))
    assert updated == text.replace("  - {path: a.ipynb}\n", "  - {path: a.ipynb, cron: 0 6 * * *}\n")


def test_update_refuses_a_notebook_the_file_does_not_declare_and_an_entry_it_cannot_place(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    with pytest.raises(DeclarationError, match=rf"^{path}: declares no c.ipynb, so there is nothing to update"):
        with_updated_declaration("notebooks:\n  - path: a.ipynb\n", path, NotebookAsset("c.ipynb"))
    with pytest.raises(DeclarationError, match=rf"^{path}:1: a.ipynb's entry does not start its own line with `- `"):
        with_updated_declaration("notebooks: [{path: a.ipynb}]\n", path, NotebookAsset("a.ipynb"))
    with pytest.raises(DeclarationError, match=rf"^{path}:3: unknown key 'cronn'"):
        with_updated_declaration("notebooks:\n  - path: a.ipynb\n    cronn: x\n", path, NotebookAsset("a.ipynb"))


def test_declaring_twice_says_to_use_update(tmp_path: Path) -> None:
    path = tmp_path / "declarations.yaml"
    with pytest.raises(DeclarationError) as err:
        with_declaration("notebooks:\n  - path: a.ipynb\n", path, NotebookAsset("a.ipynb"))
    assert str(err.value).startswith(f"{path}:2: a.ipynb is already declared there.")
    assert "run the same command with --update (it replaces that entry)" in str(err.value)


def test_an_entry_written_as_another_path_to_the_same_notebook_is_found(tmp_path: Path) -> None:
    """`./nb/a.ipynb` or `../proj/nb/a.ipynb` declares the notebook schedule names `nb/a.ipynb`."""
    project = tmp_path / "proj"
    project.mkdir()
    path = project / "declarations.yaml"
    for written in ("./nb/a.ipynb", "../proj/nb/a.ipynb", str(project / "nb" / "a.ipynb")):
        text = f"notebooks:\n  - path: {written}\n    owners: [o@example.com]\n"
        updated = with_updated_declaration(text, path, NotebookAsset("nb/a.ipynb", owners=("o@example.com",), cron="0 7 * * *"))
        assert "cron: 0 7 * * *" in updated and updated.count("path:") == 1, (written, updated)
