"""`nb-assets schedule` on a git copy of the demo: checks, preview, a trial that never
touches the real tables, a test plan, the YAML declaration and a review branch."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.schedule_project import git as _git, kpis_notebook as _kpis, project  # noqa: F401 - `project` is the fixture: a git copy of the demo
from support.warehouses import warehouse_snapshot

pytestmark = pytest.mark.slow


def _schedule(project: Path, notebook: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return nb_assets("schedule", str(notebook), "--owner", "a@example.com", "--cron", "0 6 * * *",
                     "--purpose", "finance_reporting", *extra, cwd=project)


def test_schedule_writes_a_reviewable_branch_and_never_touches_the_real_tables(project: Path) -> None:
    notebook = _kpis(project)
    checkpoint = write_notebook(project / "notebooks" / ".ipynb_checkpoints" / "order_kpis-checkpoint.ipynb", code("1"))
    before = warehouse_snapshot(project / "warehouse.duckdb")
    # A dry run first leaves its plan, which --git takes along. It runs with -X importtime:
    # the CLI process checks and tries without ever importing Dagster.
    dry = subprocess.run([sys.executable, "-X", "importtime", "-m", "nb_assets.cli", "schedule", str(notebook), "--owner",
                          "a@example.com", "--cron", "0 6 * * *", "--purpose", "finance_reporting", "--param", "ds=2026-11-20"],
                         cwd=project, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0 and (project / "plans" / "order_kpis.md").is_file(), dry.stdout + dry.stderr[-3000:]
    assert "4/6 load: " in dry.stdout and "6/6 dry run" in dry.stdout, dry.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in dry.stderr.splitlines() if line.startswith("import time:")]
    assert "nb_assets.cli.schedule_workflow" in imported and not [m for m in imported if m.split(".")[0] == "dagster"]
    proc = _schedule(project, notebook, "--param", "ds=2026-11-20", "--write", "--git")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "← reads  raw.orders [finance] (source table)" in proc.stdout
    assert "→ writes mart.order_kpis [finance]" in proc.stdout
    assert "git push -u origin schedule/order_kpis" in proc.stdout
    assert "which you are on now (you were on main; `git switch main` goes back)" in proc.stdout
    assert "Reload definitions in the Dagster UI (Deployment → Reload) or restart `make dev`" in proc.stdout
    assert f"6/6 declared in {project / 'declarations.yaml'}:4" in proc.stdout
    assert warehouse_snapshot(project / "warehouse.duckdb") == before  # the trial wrote to a scratch copy

    assert _git(project, "branch", "--show-current").strip() == "schedule/order_kpis"
    committed = set(_git(project, "show", "--name-only", "--format=", "HEAD").split())
    assert committed == {"notebooks/order_kpis.ipynb", "declarations.yaml", "plans/order_kpis.md"}
    assert _git(project, "status", "--porcelain", "--untracked-files=all").split() == ["??", str(checkpoint.relative_to(project))]
    plan = (project / "plans" / "order_kpis.md").read_text()
    assert "- status: **success**" in plan and "- output `mart.order_kpis`: " in plan
    assert "; columns: `status (string)`, `amount (double)`" in plan  # the output's schema, not its rows
    assert "```mermaid" in plan and 'n_raw_orders[("raw.orders")] --> n_order_kpis' in plan
    assert "- loads, as Dagster loads it" in plan
    # The executed notebook stays in its record, on this machine; the plan says where.
    record = plan.split("- record: `")[1].split("`")[0]
    assert record.startswith(".nb_assets/schedule/order_kpis/") and (project / record / "executed.html").is_file(), plan
    assert "(it read raw.orders [finance])" in plan and "out of the test plan and out of git" in proc.stdout

    # The definitions now declare it, as Dagster will load them.
    listed = nb_assets("lineage", "raw.orders", "--json", cwd=project)
    assert "order_kpis" in listed.stdout
    declared = (project / "declarations.yaml").read_text()
    assert "path: notebooks/order_kpis.ipynb" in declared and "ds: '2026-11-20'" in declared and "cron: 0 6 * * *" in declared


def test_a_failing_trial_declares_nothing(project: Path) -> None:
    notebook = _kpis(project, body="kpis = orders.groupby('currency').amount.sum()")
    proc = _schedule(project, notebook, "--write")
    assert proc.returncode == 1
    assert "the trial run failed, nothing declared" in proc.stderr and "KeyError" in proc.stderr
    assert "notebooks: []" in (project / "declarations.yaml").read_text()
    assert "- status: **failed**" in (project / "plans" / "order_kpis.md").read_text()


def test_findings_and_policy_stop_before_the_trial(project: Path) -> None:
    notebook = _kpis(project, body="import requests\nkpis = orders")
    proc = _schedule(project, notebook)
    assert proc.returncode == 2 and "[network-access]" in proc.stderr
    assert "3/6 trial" not in proc.stdout
    pii = write_notebook(project / "notebooks" / "people.ipynb", code(RUNTIME),
                         code("%%sql people\nSELECT * FROM raw.customers"), code("output('mart.people', people)"))
    before = (project / "declarations.yaml").read_bytes()
    proc = _schedule(project, pii, "--write")
    assert proc.returncode == 2 and "purpose 'finance_reporting' may not read zone 'pii'" in proc.stderr
    assert f"{project / 'declarations.yaml'}:4: " in proc.stderr  # names the line the entry would have had
    assert not (project / "plans").exists() and (project / "declarations.yaml").read_bytes() == before


def test_git_refuses_a_dirty_tree(project: Path) -> None:
    notebook = _kpis(project)
    (project / "policy.yaml").write_text((project / "policy.yaml").read_text() + "\n# an unrelated edit\n")
    proc = _schedule(project, notebook, "--git")
    assert proc.returncode == 2 and "changes unrelated to this notebook" in proc.stderr and "policy.yaml" in proc.stderr
    assert _git(project, "branch", "--show-current").strip() == "main"
    assert "notebooks: []" in (project / "declarations.yaml").read_text()


def test_schedule_declares_instances_and_daily_partitions_and_tries_each(project: Path) -> None:
    by_currency = write_notebook(
        project / "notebooks" / "currency_totals.ipynb",
        md("# Currency totals\nOne currency's orders."), code(RUNTIME), params('currency = "EUR"'),
        code("%%sql orders\nSELECT order_id, CAST(amount AS DOUBLE) AS amount FROM raw.orders WHERE currency = $currency"),
        code("output('mart.currency_totals', orders)"),
    )
    proc = _schedule(project, by_currency, "--instance", "eur", "currency=EUR", "--instance", "gbp", "currency=GBP",
                     "--output", "mart.currency_totals=mart.totals_{currency}", "--write")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "→ writes mart.totals_eur [finance]" in proc.stdout and "→ writes mart.totals_gbp [finance]" in proc.stdout
    plan = (project / "plans" / "currency_totals.md").read_text()
    assert plan.count("- status: **success**") == 2  # one trial per instance
    assert "(instance 'eur')" in plan and "- output `mart.totals_gbp`: " in plan

    per_day = write_notebook(
        project / "notebooks" / "day_totals.ipynb",
        md("# Day totals"), code(RUNTIME), params('ds = "2026-11-20"'),
        code("%%sql orders\nSELECT CAST(order_date AS VARCHAR) AS ds, CAST(amount AS DOUBLE) AS amount "
             "FROM raw.orders WHERE order_date = CAST($ds AS DATE)"),
        code("output('mart.day_totals', orders.groupby('ds', as_index=False).amount.sum())"),
    )
    proc = _schedule(project, per_day, "--daily-from", "2026-10-01", "--write")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "daily partitions from 2026-10-01 (column ds)" in proc.stdout
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    assert f"day {yesterday}: success" in proc.stdout  # the trial runs what the cron would: the latest day

    declared = (project / "declarations.yaml").read_text()
    assert "instances:" in declared and "currency: GBP" in declared and "mart.currency_totals: 'mart.totals_{currency}'" in declared
    assert "start: '2026-10-01'" in declared
    listed = nb_assets("lineage", "raw.orders", "--json", cwd=project).stdout
    assert "currency_totals_eur" in listed and "currency_totals_gbp" in listed and "day_totals" in listed


def test_schedule_refuses_an_instance_parameter_the_notebook_does_not_declare(project: Path) -> None:
    proc = _schedule(project, _kpis(project), "--instance", "x", "region=EMEA")
    assert proc.returncode == 2 and "--instance x: " in proc.stderr and "unknown parameter 'region'" in proc.stderr
    assert "1/6" not in proc.stdout
    proc = _schedule(project, _kpis(project), "--daily-from", "2999-01-01", "--write")
    assert proc.returncode == 2 and "--daily-from 2999-01-01: daily partitions run up to yesterday" in proc.stderr
    assert "notebooks: []" in (project / "declarations.yaml").read_text()


CANARY = "zq.canary.7731@example.invalid"  # one customer's address, as the warehouse holds it


def _contacts(project: Path, body: str) -> Path:
    """A notebook that reads raw.customers (zone pii) and shows some of its rows."""
    return write_notebook(
        project / "notebooks" / "contacts.ipynb",
        md("# Contacts"), code(RUNTIME),
        code("%%sql customers\nSELECT customer_id, email FROM raw.customers ORDER BY customer_id DESC LIMIT 3"),
        code(body),
        code("output('mart.contact_sample', customers[['customer_id']])"),
    )


def _plant_canary(project: Path) -> None:
    import duckdb

    with duckdb.connect(str(project / "warehouse.duckdb")) as con:
        con.execute("UPDATE raw.customers SET email = ? WHERE customer_id = (SELECT max(customer_id) FROM raw.customers)",
                    [CANARY])


def _holding(folder: Path, value: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]


def _schedule_contacts(project: Path, notebook: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return nb_assets("schedule", str(notebook), "--owner", "a@example.com", "--purpose", "customer_analytics", *extra, cwd=project)


def test_a_trial_shows_customers_rows_in_its_record_and_never_in_the_plan_or_the_commit(project: Path) -> None:
    _plant_canary(project)
    notebook = _contacts(project, "display(customers.head(3))\nprint(customers.email.tolist())")
    # An earlier nb-assets copied the trial's executed notebook beside the plan, and it was committed.
    (project / "plans").mkdir()
    (project / "plans" / "contacts.trial.html").write_text(f"<td>{CANARY}</td>")
    _git(project, "add", "plans")
    _git(project, "commit", "-q", "-m", "an earlier schedule's trial page")

    dry = _schedule_contacts(project, notebook)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert _holding(project / "plans", CANARY) == [], "a customer's address is under plans/:\n" + dry.stdout
    assert "removed plans/contacts.trial.html: an earlier nb-assets copied" in dry.stdout
    assert sorted(p.name for p in (project / "plans").iterdir()) == ["contacts.md"] and CANARY not in dry.stdout
    plan = (project / "plans" / "contacts.md").read_text()
    assert "(it read raw.customers [pii])" in plan and "(it read raw.customers [pii])" in dry.stdout, plan
    assert "- input `customers`: 3 rows" in plan and "- output `mart.contact_sample`: 3 rows; columns: `customer_id (" in plan
    # The trial did show the address: its record keeps it, on this machine, where the plan points.
    record = project / plan.split("- record: `")[1].split("`")[0]
    assert CANARY in (record / "executed.html").read_text(), plan
    kept = json.loads((record / "run.json").read_text())  # the gate's facts, as a Dagster run's record has them
    assert kept["policy/purpose"] == "customer_analytics" and kept["policy/labels"]["raw.customers"] == ["pii"], kept
    assert ("`nb-assets schedule notebooks/contacts.ipynb --owner a@example.com --purpose customer_analytics`"
            in plan), plan
    run_id = plan.split("run id `")[1].split("`")[0]
    assert f"`nb-assets show {run_id} --records .nb_assets/schedule`" in plan
    shown = nb_assets("show", run_id, "--records", ".nb_assets/schedule", cwd=project)
    assert shown.returncode == 0 and "success" in shown.stdout, shown.stdout + shown.stderr

    proc = _schedule_contacts(project, notebook, "--git")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _git(project, "branch", "--show-current").strip() == "schedule/contacts"
    tree = _git(project, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert "plans/contacts.md" in tree and not [p for p in tree if ".trial" in p], tree
    grep = subprocess.run(["git", "grep", "-l", CANARY, "HEAD"], cwd=project, capture_output=True, text=True)
    assert grep.returncode == 1, f"the commit holds a customer's address in: {grep.stdout}"
    assert "D\tplans/contacts.trial.html" in _git(project, "show", "--name-status", "--format=", "HEAD")
    assert _holding(project / "plans", CANARY) == []


def test_a_failing_trial_and_saved_outputs_keep_customers_rows_out_of_plans_and_git(project: Path) -> None:
    _plant_canary(project)
    notebook = _contacts(project, "assert customers.empty, customers.email.tolist()")
    proc = _schedule_contacts(project, notebook)
    assert proc.returncode == 1 and CANARY in proc.stderr, proc.stdout + proc.stderr  # the terminal of who ran it
    plan = (project / "plans" / "contacts.md").read_text()
    assert _holding(project / "plans", CANARY) == [], "the failure's message put a customer's address in the plan:\n" + plan
    assert "- status: **failed**: AssertionError in cell 4 (cell-error); its message is in the record" in plan, plan

    # Saved from Jupyter after running, the context pane and the Schedule form shown in it: the file shows the
    # rows. The trial runs it (a scheduled run skips both magics); --git commits a copy without any output.
    saved = _contacts(project, "customers.head(3)")
    doc = json.loads(saved.read_text())
    doc["cells"][3]["outputs"] = [{"output_type": "execute_result", "execution_count": 3, "metadata": {},
                                   "data": {"text/plain": f"0  {CANARY}"}}]
    doc["cells"][3]["execution_count"] = 3
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"text/plain": "VBox(children=(HTML(value='<b>Schedule</b>'),))",
                       "application/vnd.jupyter.widget-view+json": {"model_id": "f00d", "version_major": 2, "version_minor": 0}}}
    doc["cells"].append({"cell_type": "code", "execution_count": 5, "metadata": {}, "outputs": [], "source": ["%nb_context"]})
    doc["cells"].append({"cell_type": "code", "execution_count": 6, "metadata": {}, "outputs": [widget], "source": ["%nb_schedule"]})
    doc["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"f00d": {"owners": CANARY}}}}
    saved.write_text(json.dumps(doc))
    kept = saved.read_bytes()
    dry = _schedule_contacts(project, saved)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    # The form's cell does not count: only the cell that shows rows is named.
    assert "notebooks/contacts.ipynb keeps the outputs of cell(s) 4, which may show warehouse data: --git commits it " \
           "without them" in dry.stdout, dry.stdout
    proc = _schedule_contacts(project, saved, "--git")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keeps the outputs of cell(s)" not in proc.stdout  # with --git there is nothing to warn about
    assert ("note: committed notebooks/contacts.ipynb without its outputs and execution counts (they may show "
            "warehouse data); your file keeps them") in proc.stdout, proc.stdout
    assert _git(project, "branch", "--show-current").strip() == "schedule/contacts"
    committed = json.loads(_git(project, "show", "HEAD:notebooks/contacts.ipynb"))
    assert [c.get("outputs") for c in committed["cells"] if c["cell_type"] == "code"] == [[]] * 6
    assert {c.get("execution_count") for c in committed["cells"] if c["cell_type"] == "code"} == {None}
    assert "widgets" not in committed["metadata"]
    assert [c["source"] for c in committed["cells"]] == [c["source"] for c in doc["cells"]]  # the code itself, as saved
    grep = subprocess.run(["git", "grep", "-l", CANARY, "HEAD"], cwd=project, capture_output=True, text=True)
    assert grep.returncode == 1, f"the commit holds a customer's address in: {grep.stdout}"
    assert saved.read_bytes() == kept  # the author's file is untouched: outputs, counts, the form's state
    assert _git(project, "status", "--porcelain", "--", "notebooks/contacts.ipynb").strip() == "M notebooks/contacts.ipynb"
