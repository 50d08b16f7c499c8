"""%nb_schedule's form on a notebook already declared, and in a project `dg` made, pressed
in-process as the browser presses it.

A declared notebook's form opens filled in from its declaration and its buttons run
`nb-assets schedule --update`: a changed cron goes through Check and Update schedule, and the
declarations file changes on exactly that line, committed on branch reschedule/NAME. In a dg
project the form runs the command from the project's root without --definitions, so Schedule
declares the notebook as a NotebookComponent, whose defs.yaml `dg check defs` accepts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest

from nb_assets.jupyter.schedule_form import ScheduleForm
from nb_assets.project.starter import write_starter
from support import dg_project
from support.cli import nb_assets
from support.schedule_project import git, kpis_notebook, project  # noqa: F401 - `project`: a git copy of the demo

pytestmark = pytest.mark.slow


def test_a_declared_notebook_is_updated_from_its_prefilled_form(project: Path) -> None:
    notebook = kpis_notebook(project)
    declared = nb_assets("schedule", str(notebook), "--owner", "a@example.com", "--purpose", "finance_reporting",
                         "--param", "ds=2026-11-20", "--cron", "0 6 * * *", "--timezone", "Europe/Amsterdam",
                         "--write", cwd=project)
    assert declared.returncode == 0, declared.stdout + declared.stderr
    git(project, "add", "declarations.yaml", "notebooks/order_kpis.ipynb")
    git(project, "commit", "-q", "-m", "order_kpis declared")
    before = (project / "declarations.yaml").read_text()

    form = ScheduleForm(notebook)
    assert (form.owners.value, form.cron.value, form.timezone.value, form.purpose.value, form.params["ds"].value) == \
        ("a@example.com", "0 6 * * *", "Europe/Amsterdam", "finance_reporting", "2026-11-20")
    assert "is declared in <code>declarations.yaml:4</code>" in form.header.value, form.header.value
    assert form.buttons["schedule"].description == "Update schedule"

    form.cron.value = "0 7 * * *"
    form.press("check")  # no longer refused as "already declared": the check runs on the updated entry
    assert "✔ Check: done" in form.status.value, form.result.value
    form.press("schedule")
    assert "✔ Update schedule: done" in form.status.value, form.result.value
    assert "Updated its declaration in <code>declarations.yaml:4</code>" in form.result.value, form.result.value
    assert "reschedule/order_kpis" in form.result.value and "Traceback" not in form.result.value
    assert git(project, "branch", "--show-current").strip() == "reschedule/order_kpis"
    assert set(git(project, "show", "--name-only", "--format=", "HEAD").split()) == {"declarations.yaml", "plans/order_kpis.md"}
    changed = [line for line in git(project, "diff", "-U0", "HEAD~1", "HEAD", "--", "declarations.yaml").splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-    cron: 0 6 * * *", "+    cron: 0 7 * * *"], changed
    assert (project / "declarations.yaml").read_text() == before.replace("cron: 0 6 * * *", "cron: 0 7 * * *")


def test_in_a_dg_project_the_form_declares_a_component_dg_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = dg_project.run([str(dg_project.BIN / "create-dagster"), "project", "--no-uv-sync", "weekly"], tmp_path, tmp_path)
    assert made.returncode == 0, dg_project.shown(made)
    root = tmp_path / "weekly"
    notebook = write_starter(root / "notebooks" / "weekly_kpis.ipynb", table="raw.orders")
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT * FROM (VALUES (1, 10.5), (2, 20.0)) t(id, amount)")
    with (root / ".gitignore").open("a") as ignore:
        ignore.write("\n*.duckdb\n*.duckdb.wal\n.nb_assets/\n__pycache__/\n")
    for words in (("init", "-q", "-b", "main"), ("add", "-A"), ("-c", "user.name=t", "-c", "user.email=t@example.com",
                                                                "commit", "-q", "-m", "weekly")):
        git(root, *words)
    for name in ("DAGSTER_HOME", "NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in dg_project.env(root).items():  # the kernel's environment, which the form's command inherits
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Form Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "form@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Form Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "form@example.com")
    component = root / "src" / "weekly" / "defs" / "notebooks" / "weekly_kpis" / "defs.yaml"

    form = ScheduleForm(notebook)
    assert "as a component, in <code>src/weekly/defs/notebooks/weekly_kpis/defs.yaml</code>" in form.header.value
    form.owners.value, form.cron.value = "a@example.com", "0 6 * * 1"
    form.press("schedule")
    assert "✔ Schedule: done" in form.status.value, form.result.value
    assert "Declared it in <code>src/weekly/defs/notebooks/weekly_kpis/defs.yaml:4</code>" in form.result.value, \
        form.result.value
    assert git(root, "branch", "--show-current").strip() == "schedule/weekly_kpis"
    assert "src/weekly/defs/notebooks/weekly_kpis/defs.yaml" in git(root, "show", "--name-only", "--format=", "HEAD")
    assert "cron: 0 6 * * 1" in component.read_text() and not (root / "declarations.yaml").exists()
    # Declared now: the form says where, and its next Schedule would update that component.
    assert "is declared in <code>src/weekly/defs/notebooks/weekly_kpis/defs.yaml:4</code>" in form.header.value
    assert form.buttons["schedule"].description == "Update schedule"

    checked = dg_project.run(["dg", "check", "defs"], root, root)
    assert checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout + checked.stderr, \
        dg_project.shown(checked)
    listed = subprocess.run(["dg", "list", "defs"], cwd=root, env=dg_project.env(root), capture_output=True, text=True,
                            timeout=240)
    assert "mart/weekly_kpis" in listed.stdout, dg_project.shown(listed)
