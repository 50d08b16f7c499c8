"""`nb-assets` as a user runs it: a real process, real notebooks, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from support.cli import NB_ASSETS, nb_assets
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.paths import REPO
from support.warehouses import warehouse_snapshot


def test_check_reports_the_demo_contract_as_json() -> None:
    proc = nb_assets("check", "notebooks", "--json")
    assert proc.returncode == 0, proc.stderr
    by_name = {Path(n["path"]).stem: n for n in json.loads(proc.stdout)["notebooks"]}
    assert set(by_name) == {"clean_orders", "customer_revenue", "daily_traffic", "revenue_report", "regional_revenue", "daily_orders",
                            "fx_revenue"}
    revenue = by_name["customer_revenue"]
    assert revenue["inputs"] == [{"name": "customer_orders", "tables": ["mart.orders_clean", "raw.customers"], "cell": 4}]
    assert revenue["outputs"] == ["mart.customer_revenue"]
    assert revenue["parameters"] == [{"name": "min_orders", "type": "int", "default": 1}]
    assert by_name["revenue_report"]["outputs"] == []
    assert all(n["findings"] == [] for n in by_name.values())


def test_check_exits_1_naming_rule_and_cell_for_requests(tmp_path: Path) -> None:
    write_notebook(tmp_path / "fetch.ipynb", code(RUNTIME), code("import pandas as pd"), code("import requests\nr = requests.get('https://x')"))
    proc = nb_assets("check", str(tmp_path / "fetch.ipynb"), "--json")
    assert proc.returncode == 1
    finding = json.loads(proc.stdout)["notebooks"][0]["findings"][0]
    assert (finding["rule"], finding["severity"], finding["cell"], finding["line"]) == ("network-access", "error", 3, 1)
    text = nb_assets("check", str(tmp_path / "fetch.ipynb"))
    assert "error: cell 3, line 1: [network-access]" in text.stdout


def test_check_reports_an_invalid_notebook_as_a_finding(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text("{nope")
    proc = nb_assets("check", str(tmp_path), "--json")
    assert proc.returncode == 1
    finding = json.loads(proc.stdout)["notebooks"][0]["findings"][0]
    assert finding["rule"] == "invalid-notebook" and "invalid JSON" in finding["message"]
    assert "Traceback" not in proc.stderr


def test_check_usage_errors_exit_2(tmp_path: Path) -> None:
    assert nb_assets("check", str(tmp_path / "missing.ipynb")).returncode == 2
    assert nb_assets("check").returncode == 2


def _orders_notebook(tmp_path: Path, fail: bool = False) -> Path:
    return write_notebook(
        tmp_path / "orders_by_customer.ipynb",
        md("# Orders by customer"),
        code(RUNTIME),
        params("min_amount = 0.0"),
        code("%%sql orders\nSELECT * FROM raw.orders WHERE amount >= $min_amount"),
        code("raise RuntimeError('boom')" if fail else "x = 1"),
        code("output('mart.by_customer', orders.groupby('customer_id', as_index=False).amount.sum())"),
    )


def test_run_loads_output_into_the_warehouse(tmp_path: Path, warehouse: Path) -> None:
    path = _orders_notebook(tmp_path)
    proc = nb_assets("run", str(path), "--param", "min_amount=20", "--warehouse", str(warehouse),
                     "--sandbox", "local", "--records", str(tmp_path / "records"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "success" and report["error"] is None
    assert report["outputs"] == [{"table": "mart.by_customer", "rows": 3}]
    assert report["parameters"] == {"min_amount": 20.0}
    assert report["sandbox"]["kind"] == "local" and report["sandbox"]["network"].startswith("none")
    assert Path(report["executed_notebook"]).exists()
    assert len(warehouse_snapshot(warehouse)["mart.by_customer"]) == 3


def test_run_failure_exits_1_with_the_cell_and_loads_nothing(tmp_path: Path, warehouse: Path) -> None:
    path = _orders_notebook(tmp_path, fail=True)
    before = warehouse_snapshot(warehouse)
    proc = nb_assets("run", str(path), "--warehouse", str(warehouse), "--sandbox", "local",
                     "--records", str(tmp_path / "records"), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["status"] == "failed"
    assert report["error"]["cell"] == 5 and report["error"]["kind"] == "cell-error"
    assert report["error"]["type"] == "RuntimeError"  # the exception; `kind` says what failed
    assert "RuntimeError: boom" in report["error"]["message"]
    assert Path(report["executed_notebook"]).exists()
    assert warehouse_snapshot(warehouse) == before


def test_run_rejects_an_unknown_parameter(tmp_path: Path, warehouse: Path) -> None:
    proc = nb_assets("run", str(_orders_notebook(tmp_path)), "--param", "min_amont=1", "--warehouse", str(warehouse), "--json")
    assert proc.returncode == 1 and "unknown parameter 'min_amont'" in proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "failed" and report["error"]["kind"] == "declaration"
    assert report["error"]["type"] == "DeclarationError"
    assert "unknown parameter 'min_amont'" in report["error"]["message"]


def test_run_failing_sql_input_names_the_cell_in_json(tmp_path: Path, warehouse: Path) -> None:
    path = write_notebook(tmp_path / "bad_sql.ipynb", code(RUNTIME), code("%%sql o\nSELECT nope FROM raw.orders"))
    proc = nb_assets("run", str(path), "--warehouse", str(warehouse), "--sandbox", "local",
                     "--records", str(tmp_path / "records"), "--json")
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["cell"], error["kind"], error["type"]) == (2, "warehouse", "WarehouseError") and "bad_sql.ipynb: cell 2" in error["message"]


def test_run_failing_before_the_kernel_names_only_files_that_exist(tmp_path: Path, warehouse: Path) -> None:
    path = write_notebook(tmp_path / "bad_sql.ipynb", code(RUNTIME), code("%%sql o\nSELECT nope FROM raw.orders"))
    records = tmp_path / "records"
    proc = nb_assets("run", str(path), "--warehouse", str(warehouse), "--sandbox", "local", "--records", str(records))
    assert proc.returncode == 1
    assert "executed.ipynb" not in proc.stdout + proc.stderr  # the kernel never ran: there is none
    (record,) = records.glob("bad_sql/*/*/record")
    assert f"nothing was executed: the run stopped before the notebook started; record: {record}" in proc.stderr
    assert {p.name for p in record.iterdir()} == {"parameterized.ipynb", "parameters.json", "run.json"}
    proc = nb_assets("run", str(path), "--warehouse", str(warehouse), "--sandbox", "local", "--records", str(records),
                     "--html", "--json")
    report = json.loads(proc.stdout)
    assert report["executed_notebook"] is None and report["html"] is None
    assert json.loads(Path(report["record"], "run.json").read_text())["executed_notebook"] is None


def test_run_html_names_the_file_it_wrote(tmp_path: Path, warehouse: Path) -> None:
    path = _orders_notebook(tmp_path)
    args = ("run", str(path), "--warehouse", str(warehouse), "--sandbox", "local", "--records", str(tmp_path / "records"))
    proc = nb_assets(*args, "--html")
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines()[1:])
    assert Path(lines["html"]).read_text().startswith("<!DOCTYPE html>")
    assert Path(lines["executed notebook"]).exists()
    report = json.loads(nb_assets(*args, "--html", "--json").stdout)
    assert Path(report["html"]).name == "executed.html" and Path(report["html"]).exists()
    assert json.loads(nb_assets(*args, "--json").stdout)["html"] is None  # not asked for, not written
    assert "html" not in dict(line.split(": ", 1) for line in nb_assets(*args).stdout.splitlines()[1:])


def test_run_of_a_missing_notebook_is_a_usage_error(tmp_path: Path) -> None:
    assert nb_assets("run", str(tmp_path / "nope.ipynb")).returncode == 2


def test_lineage_downstream_of_customers_on_the_demo() -> None:
    proc = nb_assets("lineage", "raw.customers", "--downstream", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["labels"] == ["pii"]
    hops = {h["notebook"]: h for h in report["notebooks"]}
    assert list(hops) == ["customer_revenue", "revenue_report"]
    assert hops["customer_revenue"]["purpose"] == "customer_analytics"
    assert hops["customer_revenue"]["writes"] == [{"table": "mart.customer_revenue", "labels": ["finance", "pii"]}]
    assert hops["revenue_report"]["depth"] == 2
    reads = {r["table"]: r for r in hops["customer_revenue"]["reads"]}
    assert {"customer_id", "country", "segment"} <= set(reads["raw.customers"]["columns"])


def test_lineage_upstream_of_the_report() -> None:
    proc = nb_assets("lineage", "mart.customer_revenue", "--upstream")
    assert proc.returncode == 0, proc.stderr
    assert "← customer_revenue (purpose: customer_analytics)" in proc.stdout
    assert "← clean_orders (purpose: finance_reporting)" in proc.stdout
    assert nb_assets("lineage", "raw.nothing").returncode == 1


@pytest.mark.docker
def test_run_in_docker_reports_network_none(tmp_path: Path, warehouse: Path, docker_image: str) -> None:
    proc = nb_assets("run", str(_orders_notebook(tmp_path)), "--warehouse", str(warehouse), "--sandbox", "docker",
                     "--timeout", "120", "--records", str(tmp_path / "records"), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sandbox = json.loads(proc.stdout)["sandbox"]
    assert (sandbox["kind"], sandbox["network"], sandbox["image"]) == ("docker", "none", docker_image)
    assert sandbox["image_id"].startswith("sha256:") and sandbox["exit_code"] == 0
    assert sandbox["limits"]["timeout_s"] == 120


def test_docker_requested_without_an_engine_is_a_clear_error(tmp_path: Path, warehouse: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    proc = subprocess.run(
        [*NB_ASSETS, "run", str(_orders_notebook(tmp_path)), "--warehouse", str(warehouse), "--sandbox", "docker"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 1
    assert "Docker" in proc.stderr and "Traceback" not in proc.stderr
    assert "mart" not in warehouse_snapshot(warehouse).__repr__()  # nothing ran, nothing loaded


def test_auto_without_an_engine_falls_back_to_local_and_says_why(tmp_path: Path, warehouse: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    proc = subprocess.run(
        [*NB_ASSETS, "run", str(_orders_notebook(tmp_path)), "--warehouse", str(warehouse),
         "--records", str(tmp_path / "records"), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    sandbox = json.loads(proc.stdout)["sandbox"]
    assert sandbox["kind"] == "local" and sandbox["fallback_reason"] == "no Docker engine answers"
    assert "using the local sandbox (network and process isolation only)" in proc.stderr


def test_run_with_definitions_applies_the_policy_gate(tmp_path: Path, warehouse: Path) -> None:
    """The demo declares revenue_report for customer_analytics; tightening that purpose refuses the run.
    (A policy changed after loading is refused by the gate itself: test_build_assets.)"""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    for name in ("definitions.py", "policy.yaml"):
        (project / name).write_text((REPO / name).read_text())
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        (project / "notebooks" / nb.name).write_bytes(nb.read_bytes())
    policy = project / "policy.yaml"
    policy.write_text(policy.read_text().replace("customer_analytics: [finance, pii, public]", "customer_analytics: [finance, public]"))
    proc = nb_assets("run", str(project / "notebooks" / "revenue_report.ipynb"), "--warehouse", str(warehouse),
                     "--definitions", str(project / "definitions.py"), "--sandbox", "local", "--json", cwd=project)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    # Reading the declarations builds nothing; the run's own gate refuses, as in Dagster.
    assert error["kind"] == "policy-refused" and "may not read zone 'pii'" in error["message"]
    assert "refused before any data was fetched" in error["message"]
    policy.write_text((REPO / "policy.yaml").read_text())
    undeclared = write_notebook(tmp_path / "stray.ipynb", code(RUNTIME))
    proc = nb_assets("run", str(undeclared), "--definitions", str(project / "definitions.py"), "--json", cwd=project)
    assert proc.returncode == 1 and "is not declared in" in json.loads(proc.stdout)["error"]["message"]


def test_a_param_without_a_name_or_an_equals_sign_is_a_usage_error(tmp_path: Path, warehouse: Path) -> None:
    notebook = write_notebook(tmp_path / "p.ipynb", code(RUNTIME), params("factor = 2"), code("x = factor"))
    for bad in ("factor", "=3"):
        proc = nb_assets("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", "--param", bad)
        assert proc.returncode == 2 and f"--param takes K=V, got {bad!r}" in proc.stderr, proc.stderr
