"""`nb-assets schedule --update`: change a declared notebook through the same workflow, in place.

The entry is replaced where it is in declarations.yaml; every other byte (comments, the
other entries) stays. The same checks run, the load check in a child process included:
an update the project would not load with leaves the file as it was."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, write_notebook
from support.schedule_project import git, kpis_notebook, project  # noqa: F401 - `project` is the fixture: a git copy of the demo

pytestmark = pytest.mark.slow

OTHER = "  # kept: the other team's notebook, and this comment about it\n  - path: notebooks/other.ipynb\n    owners: [b@example.com]\n    purpose: finance_reporting\n"


def _declared(project: Path) -> tuple[Path, str, str]:
    """The demo's declarations.yaml with order_kpis declared (by schedule --write) and a hand-written
    entry and comment after it. Returns the file, its text before order_kpis's entry, and after it."""
    write_notebook(project / "notebooks" / "other.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM raw.orders"),
                   code("output('mart.other_orders', o)"))
    notebook = kpis_notebook(project)
    done = _schedule(project, notebook, "--cron", "0 6 * * *", "--write")
    assert done.returncode == 0, done.stdout + done.stderr
    declarations = project / "declarations.yaml"
    head = declarations.read_text()
    declarations.write_text(head + OTHER)
    return declarations, head[: head.index("  - path: notebooks/order_kpis.ipynb")], OTHER


def _schedule(project: Path, notebook: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return nb_assets("schedule", str(notebook), "--owner", "a@example.com", "--purpose", "finance_reporting",
                     "--param", "ds=2026-11-20", *flags, cwd=project)


def test_update_changes_the_cron_in_place_and_leaves_every_other_byte(project: Path) -> None:
    declarations, before, after = _declared(project)
    notebook = project / "notebooks" / "order_kpis.ipynb"

    refused = _schedule(project, notebook, "--cron", "0 7 * * *", "--write")
    assert refused.returncode == 2 and "is already declared there" in refused.stderr, refused.stderr
    assert "run the same command with --update" in refused.stderr and f"{declarations}:4:" in refused.stderr

    done = _schedule(project, notebook, "--cron", "0 7 * * *", "--timezone", "Europe/Amsterdam", "--update", "--write")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3/6 trial" in done.stdout and "4/6 load" in done.stdout
    assert f"6/6 updated its declaration in {declarations}:4" in done.stdout
    text = declarations.read_text()
    assert text.startswith(before) and text.endswith(after), text
    entry = yaml.safe_load(text[len(before): len(text) - len(after)])
    assert entry == [{"path": "notebooks/order_kpis.ipynb", "owners": ["a@example.com"], "params": {"ds": "2026-11-20"},
                      "purpose": "finance_reporting", "cron": "0 7 * * *", "timezone": "Europe/Amsterdam"}]
    listed = nb_assets("lineage", "mart.order_kpis", "--json", cwd=project)
    assert listed.returncode == 0 and "order_kpis" in listed.stdout, listed.stdout + listed.stderr


def test_an_update_the_load_refuses_leaves_the_file_as_it_was(project: Path) -> None:
    declarations, _, _ = _declared(project)
    text = declarations.read_bytes()
    # A group Dagster refuses is caught by the load's own rules before anything is tried ...
    refused = _schedule(project, project / "notebooks" / "order_kpis.ipynb", "--group", "order kpis", "--update", "--write")
    assert refused.returncode == 2 and "group='order kpis' is not a Dagster group name" in refused.stderr, refused.stderr
    assert f"{declarations}:4: " in refused.stderr and "3/6 trial" not in refused.stdout
    assert declarations.read_bytes() == text
    # ... and one only Dagster's load knows after the trial, by the load check in a child process.
    definitions = project / "definitions.py"
    definitions.write_text(
        definitions.read_text().replace("from nb_assets import (", "from nb_assets import (\n    NotebookTranslator,")
        .replace("defs = notebook_definitions(\n    [*NOTEBOOKS, *NOTEBOOKS_WITH_SOURCES],", "class HouseRules(NotebookTranslator):\n"
                 "    def get_tags(self, props):\n"
                 "        if props.notebook is not None and props.notebook.cron == '0 9 * * *':\n"
                 "            raise ValueError('house rule: nothing at nine')\n"
                 "        return super().get_tags(props)\n\n\n"
                 "defs = notebook_definitions(\n    [*NOTEBOOKS, *NOTEBOOKS_WITH_SOURCES], translator=HouseRules(),"))
    assert "translator=HouseRules()" in definitions.read_text()
    refused = _schedule(project, project / "notebooks" / "order_kpis.ipynb", "--cron", "0 9 * * *", "--update", "--write")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "4/6 load" in refused.stdout and "Dagster would not load the project with this declaration" in refused.stderr
    assert "ValueError: house rule: nothing at nine" in refused.stderr
    assert declarations.read_bytes() == text


def test_update_refuses_what_it_cannot_update(project: Path) -> None:
    never = kpis_notebook(project)
    refused = _schedule(project, never, "--update", "--write")
    assert refused.returncode == 2 and f"--update: {never} is not declared in definitions.py" in refused.stderr
    assert "declare it with --write" in refused.stderr
    # clean_orders is declared in definitions.py's Python list: named with its line, never rewritten.
    before = (project / "definitions.py").read_bytes()
    refused = _schedule(project, project / "notebooks" / "clean_orders.ipynb", "--update", "--write")
    line = next(n for n, s in enumerate(before.decode().splitlines(), 1) if '"notebooks/clean_orders.ipynb"' in s)
    assert refused.returncode == 2 and f"definitions.py:{line}: notebooks/clean_orders.ipynb is already declared there, " \
        "in Python, which nb-assets does not rewrite" in refused.stderr, refused.stderr
    assert (project / "definitions.py").read_bytes() == before


def test_update_with_git_commits_the_change_on_a_branch(project: Path) -> None:
    _declared(project)
    git(project, "add", "declarations.yaml", "notebooks", "plans")
    git(project, "commit", "-q", "-m", "order_kpis declared")
    done = _schedule(project, project / "notebooks" / "order_kpis.ipynb", "--cron", "0 8 * * *", "--update", "--git")
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(project, "branch", "--show-current").strip() == "reschedule/order_kpis"
    assert git(project, "log", "-1", "--format=%s").strip() == "Reschedule notebook order_kpis (cron 0 8 * * *)"
    diff = git(project, "show", "--format=", "HEAD", "--", "declarations.yaml")
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-    cron: 0 6 * * *", "+    cron: 0 8 * * *"], diff
