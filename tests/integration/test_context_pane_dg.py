"""`%nb_context` in a project `dg` made: the notebook's declaration is its NotebookComponent's
defs.yaml (read as `nb-assets schedule` reads it), not the definitions.py dg writes into the
project's package; a notebook no component declares is said to be so, naming the defs folder."""

from __future__ import annotations

from pathlib import Path

from nb_assets.jupyter.context_pane import notebook_context
from nb_assets.project.starter import write_starter


def test_the_pane_reads_a_dg_projects_components(tmp_path: Path) -> None:
    root = tmp_path / "weekly"
    defs = root / "src" / "weekly" / "defs"
    (defs / "notebooks" / "x").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\nroot_module = "weekly"\n')
    (root / "src" / "weekly" / "definitions.py").write_text("")  # dg's own: not a definitions.py project of ours
    declared = write_starter(defs / "notebooks" / "x" / "x.ipynb")
    (defs / "notebooks" / "x" / "defs.yaml").write_text(
        "type: nb_assets.NotebookComponent\n\nattributes:\n  path: x.ipynb\n  owners: [a@example.com]\n  cron: 0 6 * * 1\n")
    other = write_starter(root / "notebooks" / "y.ipynb")

    context = notebook_context(declared)
    assert context.project_dir == root and context.problem is None, context.problem
    assert context.declared and context.owners == ["a@example.com"] and context.trigger == "cron 0 6 * * 1"

    context = notebook_context(other)
    assert not context.declared and context.project_dir == root
    assert context.problem == f"not declared in the dg project {root}: no NotebookComponent's defs.yaml under {defs} names it"
    assert context.command is not None and context.command.startswith("nb-assets schedule notebooks/y.ipynb ")
