"""`nb-assets schedule --freshness`: the rule goes into the declaration it writes, read back by the project's
own loader; a rule the declaration's parser refuses stops the command before anything is tried or written.

On a git copy of the demo (support.schedule_project): the real CLI, a real trial run in the local sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import nb_assets
from support.schedule_project import kpis_notebook, project  # noqa: F401 - `project` is the fixture: a git copy of the demo

pytestmark = pytest.mark.slow

FLAGS = ("--owner", "a@example.com", "--cron", "0 6 * * *", "--purpose", "finance_reporting", "--param", "ds=2026-11-20")


def test_the_freshness_flag_is_written_into_the_declaration(project: Path) -> None:
    from nb_assets.project.declarations_yaml import load_declarations_yaml

    notebook = kpis_notebook(project)
    proc = nb_assets("schedule", str(notebook), *FLAGS, "--freshness", "26h", "--write", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "freshness: 26h" in (project / "declarations.yaml").read_text()
    [declared] = [d for d in load_declarations_yaml(project / "declarations.yaml") if d.path == "notebooks/order_kpis.ipynb"]
    assert declared.freshness == "26h"
    # The plan's dry-run command tries it again with the same rule.
    assert "--freshness 26h" in (project / "plans" / "order_kpis.md").read_text()


BAD = {
    "26 hours": "freshness='26 hours' is not a freshness rule: '26h', '90m', '2d', '1d 2h' (a maximum age) or 'by 07:00 Europe/Berlin'",
    "30s": "freshness='30s' is not a freshness rule",
    "0m": "freshness='0m' is under one minute, which Dagster's freshness policies refuse",
    "by 07:00 Mars/Olympus": "freshness='by 07:00 Mars/Olympus': 'Mars/Olympus' is not an IANA time zone",
}


def test_a_bad_freshness_rule_is_refused_and_nothing_is_tried_or_written(project: Path) -> None:
    notebook = kpis_notebook(project)
    declarations = (project / "declarations.yaml").read_bytes()
    for rule, said in BAD.items():
        proc = nb_assets("schedule", str(notebook), *FLAGS, "--freshness", rule, "--write", cwd=project)
        assert proc.returncode == 2, (rule, proc.stdout + proc.stderr)
        assert f"--freshness: {said}" in proc.stderr and "nothing was tried or written" in proc.stderr, (rule, proc.stderr)
        assert "Traceback" not in proc.stderr and "1/6" not in proc.stdout, (rule, proc.stdout)
        assert (project / "declarations.yaml").read_bytes() == declarations, rule
        assert not (project / "plans").exists() and not (project / ".nb_assets").exists(), rule
