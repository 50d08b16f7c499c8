"""`nb-assets run` runs the notebook's output checks in its load, as Dagster does: real CLI process,
real kernel (local sandbox), real DuckDB; and so does the `nb-assets schedule` trial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.schedule_project import project  # noqa: F401 - the fixture: a git copy of the seeded demo
from support.warehouses import warehouse_snapshot


def _notebook(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "clean.ipynb", md("# Clean orders"), code(RUNTIME + "\nfrom nb_assets.notebook import unique, row_count"),
        params("dup = False"), code("%%sql o\nSELECT order_id, customer_id, amount FROM raw.orders"),
        code("import pandas as pd\nout = pd.concat([o, o.head(2)]) if dup else o"),
        code('output("mart.orders_clean", out, checks=[unique("order_id"), row_count(max=5, severity="warn")])'),
    )


@pytest.mark.parametrize("sandbox", ["local", "docker"])
def test_nb_assets_run_reports_warnings_and_a_blocking_failure_loads_nothing(
    tmp_path: Path, warehouse: Path, sandbox: str, request: pytest.FixtureRequest,
) -> None:
    if sandbox == "docker":
        request.getfixturevalue("docker_image")  # the in-box runtime takes checks= in the real image too
    notebook = _notebook(tmp_path)
    common = ("--warehouse", str(warehouse), "--sandbox", sandbox, "--records", str(tmp_path / "records"))
    good = nb_assets("run", str(notebook), *common, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "mart.orders_clean: check row_count = row_count(max=5) [warn] failed on 1 row(s) (warning: published)" in good.stdout
    assert "output checks passed: unique_order_id" in good.stdout
    before = warehouse_snapshot(warehouse)
    assert len(before["mart.orders_clean"]) == 20

    bad = nb_assets("run", str(notebook), *common, "--param", "dup=true", cwd=tmp_path)
    assert bad.returncode != 0
    assert "unique_order_id = unique(order_id) failed on 2 row(s)" in bad.stderr and "nothing loaded" in bad.stderr
    assert "order_id | n_rows" in bad.stderr  # the sample, on the runner's own terminal
    assert warehouse_snapshot(warehouse) == before
    [run_json] = [p for p in (tmp_path / "records").rglob("run.json") if json.loads(p.read_text()).get("status") == "failed"]
    checks = {c["check"]: c for c in json.loads(run_json.read_text())["output_checks"]}
    assert checks["unique_order_id"]["failed_rows"] == 2 and checks["unique_order_id"]["sample"]["columns"] == ["order_id", "n_rows"]


def test_the_schedule_trial_runs_the_checks_and_a_blocking_failure_declares_nothing(project: Path) -> None:  # noqa: F811
    write_notebook(
        project / "notebooks" / "order_kpis.ipynb", md("# Order KPIs"), code(RUNTIME + "\nfrom nb_assets.notebook import row_count"),
        params('ds = "2026-11-25"'), code("%%sql orders\nSELECT status, CAST(amount AS DOUBLE) AS amount FROM raw.orders"),
        code("kpis = orders.groupby('status', as_index=False).amount.sum()"),
        code("output('mart.order_kpis', kpis, checks=[row_count(max=1)])"),
    )
    before = warehouse_snapshot(project / "warehouse.duckdb")
    proc = nb_assets("schedule", "notebooks/order_kpis.ipynb", "--owner", "a@example.com", "--cron", "0 6 * * *",
                     "--purpose", "finance_reporting", "--write", cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the trial run failed, nothing declared" in proc.stderr
    assert "check row_count = row_count(max=1) failed on 1 row(s)" in proc.stderr, proc.stderr
    assert "notebooks: []" in (project / "declarations.yaml").read_text()
    assert warehouse_snapshot(project / "warehouse.duckdb") == before


def test_the_demos_check_catches_a_duplicated_order_id(project: Path) -> None:  # noqa: F811
    """The demo's clean_orders declares unique("order_id"): with its de-duplication gone, nothing is published."""
    notebook = project / "notebooks" / "clean_orders.ipynb"
    text = notebook.read_text()
    assert '.drop_duplicates(\\"order_id\\", keep=\\"last\\")' in text
    notebook.write_text(text.replace('.drop_duplicates(\\"order_id\\", keep=\\"last\\")', ""))
    before = warehouse_snapshot(project / "warehouse.duckdb")
    proc = nb_assets("run", "notebooks/clean_orders.ipynb", "--definitions", "definitions.py", "--sandbox", "local",
                     "--warehouse", str(project / "warehouse.duckdb"), "--records", str(project / "records"), cwd=project)
    assert proc.returncode != 0
    assert "mart.orders_clean: check unique_order_id = unique(order_id) failed on" in proc.stderr, proc.stderr
    assert warehouse_snapshot(project / "warehouse.duckdb") == before
