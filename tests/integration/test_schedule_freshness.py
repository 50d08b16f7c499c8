"""`nb-assets schedule --freshness`: the rule goes into the declaration schedule writes, and reads back through
the project's own YAML loader; a rule the declaration's parser refuses stops the command before anything is
tried or written.

The flag is read by the CLI's own parser and turned into the declaration and its YAML entry by the functions
`cmd_schedule` writes with (in-process: a trial run adds nothing to what is tested here). The refusal runs the
real CLI on a copy of the demo project.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.cli import nb_assets
from support.paths import REPO
from support.schedule_project import kpis_notebook

FLAGS = ("--owner", "a@example.com", "--on-inputs-landed", "--purpose", "finance_reporting", "--param", "ds=2026-11-20")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo's declarations and notebooks, and the notebook to schedule (no warehouse: nothing is run)."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, root / name)
    kpis_notebook(root)
    return root


def test_the_freshness_flag_is_written_into_the_declaration(demo: Path) -> None:
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.cli.main import _parser
    from nb_assets.cli.schedule import _declaration, _dry_run_command
    from nb_assets.project.declarations_yaml import read_declarations, with_declaration

    notebook = demo / "notebooks" / "order_kpis.ipynb"
    args = _parser().parse_args(["schedule", str(notebook), *FLAGS, "--freshness", "26h", "--write"])
    decl = _declaration(args, parse_notebook(notebook), notebook.resolve(), demo.resolve())
    declarations = demo / "declarations.yaml"
    text = with_declaration(declarations.read_text(), declarations, decl)  # what --write puts in the file
    assert "    freshness: 26h\n" in text, text
    [declared] = [d for d in read_declarations(text, declarations) if d.path == "notebooks/order_kpis.ipynb"]
    assert declared.freshness == "26h" and declared.on_inputs_landed
    assert "--freshness 26h" in _dry_run_command(args, demo.resolve())  # the plan's dry run tries the same rule


BAD = {
    "26 hours": "freshness='26 hours' is not a freshness rule: '26h', '90m', '2d', '1d 2h' (a maximum age) or 'by 07:00 Europe/Berlin'",
    "0m": "freshness='0m' is under one minute, which Dagster's freshness policies refuse",
}


@pytest.mark.parametrize("rule", BAD)
def test_a_bad_freshness_rule_is_refused_and_nothing_is_tried_or_written(demo: Path, rule: str) -> None:
    before = sorted(p.relative_to(demo) for p in demo.rglob("*"))
    declarations = (demo / "declarations.yaml").read_bytes()
    proc = nb_assets("schedule", "notebooks/order_kpis.ipynb", *FLAGS, "--freshness", rule, "--write", cwd=demo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"nb-assets schedule: --freshness: {BAD[rule]}" in proc.stderr and "nothing was tried or written" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "1/6" not in proc.stdout, proc.stdout
    assert (demo / "declarations.yaml").read_bytes() == declarations
    assert sorted(p.relative_to(demo) for p in demo.rglob("*")) == before  # no plan, no trial record
