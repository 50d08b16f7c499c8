"""%nb_schedule's form, pressed in-process as the browser presses it: every button runs
`nb-assets schedule` (one code path), shows progress while it runs, and lands its verdict,
or the command's own error with the fix, in the form; never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nb_assets.jupyter.schedule_form import ScheduleForm
from nb_assets.project.starter import write_starter
from support.schedule_project import git, project  # noqa: F401 - the fixture: a git copy of the demo
from support.paths import REPO
from support.warehouses import new_pg_database, pg_snapshot, warehouse_snapshot

pytestmark = pytest.mark.slow


def _form(notebook: Path) -> tuple[ScheduleForm, list[str]]:
    form = ScheduleForm(notebook)
    form.owners.value = "a@example.com"
    form.cron.value = "0 6 * * *"
    form.purpose.value = "finance_reporting"
    seen: list[str] = []
    form.status.observe(lambda change: seen.append(change["new"]), "value")
    return form, seen


def test_check_preview_trial_and_schedule_from_the_form(project: Path) -> None:
    import nbformat

    notebook = write_starter(project / "notebooks" / "top_orders.ipynb")
    form, seen = _form(notebook)
    assert form.params["limit"].value == "100"  # prefilled from the parameters cell
    assert "as saved" in form.widget.children[0].value
    before = warehouse_snapshot(project / "warehouse.duckdb")

    form.press("check")
    assert "✔ Check: done" in form.status.value, form.result.value
    assert "no findings in any cell" in form.result.value
    assert any("1/6 checks" in s for s in seen)  # the progress line followed the command
    assert not (project / "plans").exists()  # a check writes nothing

    form.press("preview")
    assert "✔ Preview: done" in form.status.value, form.result.value
    svg = form.result.value
    assert "<svg" in svg and "raw.orders" in svg and "mart.top_orders" in svg and "finance" in svg

    form.params["limit"].value = "5"
    form.press("trial")
    assert "✔ Trial run: done" in form.status.value, form.result.value
    assert "status: <b>success</b>" in form.result.value and "output <code>mart.top_orders</code>: 5 rows" in form.result.value
    assert any("3/6 trial run" in s for s in seen)
    # Worded for the author at the form: what ran, where its executed notebook is, what to do next.
    trial = form.result.value
    assert "Ran <code>notebooks/top_orders.ipynb</code> once" in trial and "the real tables were not touched" in trial
    assert " rows read</li>" in trial  # the %%sql input's rows
    executed = trial.split("executed notebook: <code>", 1)[1].split("</code>", 1)[0]
    assert executed.endswith("executed.ipynb") and (project / executed).is_file(), trial  # JupyterLab opens it
    assert "File → Open from Path…" in trial
    assert "<b>Next:</b> if the rows look right" in trial and "press <b>Schedule</b>" in trial
    assert "<code>plans/top_orders.md</code>, written now" in trial
    for reviewers in ("nb-assets show", "try it yourself", "run id", "record: "):  # the plan's words, for a reviewer
        assert reviewers not in trial, trial

    # Run and saved in Jupyter, as the manual says: the file keeps every cell's output, the form's own too.
    nb = nbformat.read(str(notebook), as_version=4)
    assert nb.cells[-1].source == "%nb_schedule"  # the starter's form cell
    for number, cell in enumerate(nb.cells[1:], start=1):
        if cell.cell_type == "code":
            cell.execution_count = number
            cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": f"shown {number}"}, execution_count=number)]
    nbformat.write(nb, str(notebook))
    saved = notebook.read_bytes()
    form.press("schedule")
    assert "✔ Schedule: done" in form.status.value, form.result.value
    assert "schedule/top_orders" in form.result.value and "Test plan: <code>plans/top_orders.md</code>" in form.result.value
    assert "note: committed notebooks/top_orders.ipynb without its outputs" in form.result.value, form.result.value
    committed = nbformat.reads(git(project, "show", "HEAD:notebooks/top_orders.ipynb"), as_version=4)
    assert [(c.outputs, c.execution_count) for c in committed.cells if c.cell_type == "code"] == [([], None)] * 5
    assert notebook.read_bytes() == saved  # the author's file keeps its outputs
    again = ScheduleForm(notebook)  # %nb_schedule run again in the same kernel: the fields are as typed
    assert (again.owners.value, again.cron.value, again.purpose.value) == ("a@example.com", "0 6 * * *", "finance_reporting")
    assert again.params["limit"].value == "5"
    assert git(project, "branch", "--show-current").strip() == "schedule/top_orders"
    committed = set(git(project, "show", "--name-only", "--format=", "HEAD").split())
    assert committed == {"notebooks/top_orders.ipynb", "declarations.yaml", "plans/top_orders.md"}
    declared = (project / "declarations.yaml").read_text()
    assert "cron: 0 6 * * *" in declared and "limit: 5" in declared and "a@example.com" in declared
    assert warehouse_snapshot(project / "warehouse.duckdb") == before  # trials write a scratch copy
    assert "Traceback" not in form.result.value
    form.params["limit"].value, form.owners.value = "5", ""  # an empty field is named as the form names it, not as a flag
    form.press("check")
    assert "Fill in Owners (an e-mail address, or team:NAME), then press the button again." in form.result.value, form.result.value
    assert "--owner" not in form.result.value


def test_a_network_call_is_found_on_its_cell_and_schedule_is_refused(project: Path) -> None:
    import nbformat

    notebook = write_starter(project / "notebooks" / "net_orders.ipynb")
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[4].source = 'import urllib.request\nurllib.request.urlopen("http://example.invalid/")\n' + nb.cells[4].source
    nbformat.write(nb, str(notebook))
    declarations = (project / "declarations.yaml").read_bytes()
    form, _ = _form(notebook)

    form.press("check")
    assert "✖ Check: failed" in form.status.value
    assert "network-access" in form.result.value and "<td>cell 5 (`import urllib.request`)" in form.result.value, form.result.value
    assert "nb-finding" in form.result.value  # the offending cell is listed with its number
    form.press("schedule")
    assert "✖ Schedule: refused" in form.status.value and "network-access" in form.result.value
    assert "[network-access]" not in form.result.value  # the finding, once: not again as the refusal says it
    assert "Traceback" not in form.result.value
    assert git(project, "branch", "--list", "schedule/*").strip() == ""
    assert git(project, "branch", "--show-current").strip() == "main"
    assert (project / "declarations.yaml").read_bytes() == declarations


def test_check_of_a_notebook_not_declared_gives_checks_findings_once_each_on_their_cells(project: Path) -> None:
    """What `nb-assets check` finds (a network call, a literal read of a file a declared source
    holds, a table the warehouse lacks), each once, named with its cell; the refusal adds
    nothing it says already, and speaks of no declaration, since there is none yet."""
    import html
    import json
    from collections import Counter

    import nbformat

    notebook = write_starter(project / "notebooks" / "net_orders.ipynb", table="raw.order")  # misspelled
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[4].source = ('import urllib.request\nurllib.request.urlopen("http://example.invalid/")\n'
                          "import pandas as pd\nregions = pd.read_csv('../sources/sales_regions/emea.csv')\n"
                          + nb.cells[4].source)
    nbformat.write(nb, str(notebook))
    done = subprocess.run([sys.executable, "-m", "nb_assets.cli", "check", "--json", str(notebook)], cwd=project,
                          capture_output=True, text=True, timeout=300)
    [report] = json.loads(done.stdout)["notebooks"]
    rules = sorted(f["rule"] for f in report["findings"])
    assert {"network-access", "direct-data-access", "no-such-table"} <= set(rules), report["findings"]
    form, _ = _form(notebook)

    form.press("check")
    shown = form.result.value
    assert "✖ Check: failed" in form.status.value, shown
    assert shown.count("class='nb-finding'") == len(report["findings"]), shown
    for message, times in Counter(f["message"] for f in report["findings"]).items():
        assert shown.count(html.escape(message)) == times, (message, shown)  # once each
    cells = {c: nb.cells[c - 1].source.splitlines()[0] for c in (f["cell"] for f in report["findings"]) if c is not None}
    for number, first in cells.items():
        assert f"<td>cell {number} (`{html.escape(first[:39])}" in shown, shown
    assert "through the declared source &#x27;sales_regions&#x27; instead" in shown
    assert "no such table raw.order (did you mean raw.orders?)" in shown
    assert "declared notebooks" not in shown and "declarations.yaml:" not in shown, shown
    assert "[network-access]" not in shown  # the refusal's copy of the finding is not repeated
    assert "<b>Next:</b> fix the error findings above in their cells" in shown
    assert "Traceback" not in shown


def test_a_failed_trial_says_what_failed_where_to_look_and_what_next(project: Path) -> None:
    import nbformat

    notebook = write_starter(project / "notebooks" / "few_orders.ipynb")
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[4].source = "assert len(rows) > 10**6, 'fewer rows than expected'\n" + nb.cells[4].source
    nbformat.write(nb, str(notebook))
    form, _ = _form(notebook)

    form.press("trial")
    shown = form.result.value
    assert "✖ Trial run: failed" in form.status.value, shown
    assert "status: <b>failed</b>" in shown and "cell 5" in shown, shown
    assert "fewer rows than expected" in shown  # the command's message: the author may see the data
    assert "its message is in the record" not in shown  # the plan's reserve, meant for a reviewer
    executed = shown.split("executed notebook: <code>", 1)[1].split("</code>", 1)[0]
    assert (project / executed).is_file(), shown
    assert ("<b>Next:</b> open the executed notebook to see where it stopped (the error is above), fix that cell, "
            "save the notebook, and press <b>Trial run</b> again.") in shown


def test_a_bad_field_lands_in_the_form_with_the_fix(project: Path) -> None:
    notebook = write_starter(project / "notebooks" / "top_orders.ipynb")
    form, _ = _form(notebook)
    form.params["limit"].value = "many"
    form.press("check")
    assert "✖ Check: failed" in form.status.value
    assert "--param" in form.result.value and "limit" in form.result.value, form.result.value
    assert "Traceback" not in form.result.value


def test_the_form_schedules_on_a_postgres_warehouse(tmp_path: Path, pg_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same buttons on a project whose warehouse is Postgres: the trial reads the real
    tables and rolls its loads back; Schedule commits the branch."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, root / name)
    (root / ".gitignore").write_text(".nb_assets/\n__pycache__/\n")
    url = new_pg_database(pg_cluster)
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", url], check=True, capture_output=True)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "demo")):
        git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", *args)
    git(root, "config", "user.name", "Form Test")
    git(root, "config", "user.email", "form@example.com")
    monkeypatch.setenv("NB_ASSETS_WAREHOUSE", url)  # as `nb-assets lab` sets it for the kernel the form runs in
    monkeypatch.setenv("NB_ASSETS_SANDBOX", "local")
    notebook = write_starter(root / "notebooks" / "top_orders.ipynb")
    form, _ = _form(notebook)
    before = pg_snapshot(url)
    form.press("check")
    assert "✔ Check: done" in form.status.value, form.result.value
    form.press("preview")
    assert "✔ Preview: done" in form.status.value, form.result.value
    assert "raw.orders" in form.result.value and "finance" in form.result.value  # zones of the real catalog
    form.params["limit"].value = "5"
    form.press("trial")
    assert "✔ Trial run: done" in form.status.value, form.result.value
    assert "output <code>mart.top_orders</code>: 5 rows" in form.result.value
    assert git(root, "status", "--porcelain", "declarations.yaml") == ""  # the trial declares nothing
    form.press("schedule")
    assert "✔ Schedule: done" in form.status.value, form.result.value
    assert git(root, "branch", "--show-current").strip() == "schedule/top_orders"
    assert pg_snapshot(url) == before  # loaded inside the trial's transaction, then rolled back
