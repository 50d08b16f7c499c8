"""The demo project end to end: real Dagster materialization of every notebook."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.paths import REPO
from support.dagster_runs import materialize_ok
from nb_assets import NotebookResource
from nb_assets.defs.build import RESOURCE_KEY

pytestmark = pytest.mark.slow


def _seed(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("seed_demo", REPO / "scripts" / "seed_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.seed(path, scale=1, seed=42)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("demo")
    warehouse = tmp / "warehouse.duckdb"
    _seed(warehouse)
    previous = os.environ.get("NB_ASSETS_WAREHOUSE")
    os.environ["NB_ASSETS_WAREHOUSE"] = str(warehouse)  # definitions.py reads it, as a deployment would
    try:
        spec = importlib.util.spec_from_file_location("demo_definitions", REPO / "definitions.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del os.environ["NB_ASSETS_WAREHOUSE"]
        else:
            os.environ["NB_ASSETS_WAREHOUSE"] = previous
    return module.defs, warehouse, tmp


def test_graph_is_wired_by_the_sql_cells(demo) -> None:
    defs, _, _ = demo
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert {d.asset_key.to_user_string() for d in specs["mart/customer_revenue"].deps} == {
        "mart/orders_clean", "raw/customers",
    }
    assert {d.asset_key.to_user_string() for d in specs["reports/revenue_report"].deps} == {
        "mart/customer_revenue", "mart/daily_traffic",
    }
    assert {"raw/orders", "raw/customers", "raw/web_events"} <= set(specs)
    revenue = specs["mart/customer_revenue"]
    assert revenue.owners == ["analytics@example.com"]
    assert revenue.kinds == {"notebook", "duckdb"}
    assert {"zone/pii", "zone/finance"} <= set(revenue.tags) and revenue.tags["purpose"] == "customer_analytics"
    assert "dagster/code_references" in revenue.metadata
    columns = revenue.metadata["notebook/columns_read"].value
    assert {"customer_id", "country", "segment"} <= set(columns["raw.customers"])
    assert {"amount_usd", "status"} <= set(columns["mart.orders_clean"])


def test_materializing_the_whole_graph_loads_the_tables(demo) -> None:
    defs, warehouse, tmp = demo
    # A run covers one partition, or none: the daily-partitioned notebook runs per day, below.
    assets = [a for a in defs.assets if not (isinstance(a, dg.AssetsDefinition) and a.partitions_def)]
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp / "records"))
    result = materialize_ok(assets, resources={RESOURCE_KEY: runner})

    with duckdb.connect(str(warehouse), read_only=True) as con:
        raw_ids = con.execute("SELECT count(DISTINCT order_id) FROM raw.orders WHERE amount > 0").fetchone()[0]
        clean = con.execute("SELECT count(*), count(DISTINCT order_id), min(amount) FROM mart.orders_clean").fetchone()
        statuses = {r[0] for r in con.execute("SELECT DISTINCT status FROM mart.orders_clean").fetchall()}
        completed = con.execute("SELECT count(*) FROM mart.orders_clean WHERE status = 'completed'").fetchone()[0]
        revenue_orders = con.execute("SELECT sum(orders) FROM mart.customer_revenue").fetchone()[0]
        days = con.execute("SELECT min(event_date), max(event_date) FROM mart.daily_traffic").fetchone()
    assert clean[0] == clean[1] and 0 < clean[0] <= raw_ids and clean[2] > 0
    assert statuses <= {"completed", "cancelled", "refunded", "pending"}
    assert revenue_orders == completed
    assert [str(d) for d in days] == ["2026-11-14", "2026-11-20"]

    mats = {m.asset_key.to_user_string(): m for m in result.asset_materializations_for_node("customer_revenue")}
    meta = mats["mart/customer_revenue"].metadata
    assert meta["dagster/row_count"].value == duckdb.connect(str(warehouse), read_only=True).execute(
        "SELECT count(*) FROM mart.customer_revenue").fetchone()[0]
    assert [c.name for c in meta["dagster/column_schema"].schema.columns][:3] == ["customer_id", "country", "segment"]
    executed = Path(meta["notebook/executed"].value)
    assert executed.exists() and not executed.stat().st_mode & 0o222  # an immutable record:
    assert not executed.parent.stat().st_mode & 0o222  # read-only files in a read-only folder
    assert Path(meta["notebook/html"].value).read_text().startswith("<!DOCTYPE html>")
    report = result.asset_materializations_for_node("revenue_report")[0]
    html = Path(report.metadata["notebook/html"].value).read_text()
    assert "image/png" in html or "data:image/png" in html  # the chart made it into the record

    with duckdb.connect(str(warehouse), read_only=True) as con:  # each instance, its region, its table
        for instance, region, currencies in (("emea", "EMEA", {"EUR", "GBP"}), ("apac", "APAC", {"AUD", "JPY"})):
            rows = con.execute(f"SELECT DISTINCT region, currency FROM mart.regional_revenue_{instance}").fetchall()
            assert {r for r, _ in rows} == {region} and {c for _, c in rows} == currencies


def test_the_daily_notebook_runs_one_day_at_a_time(demo) -> None:
    defs, warehouse, tmp = demo
    daily = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def)
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp / "daily-records"))
    for day in ("2026-11-19", "2026-11-20", "2026-11-19"):
        materialize_ok([daily], resources={RESOURCE_KEY: runner}, partition_key=day)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = con.execute("SELECT ds, sum(orders) FROM mart.daily_orders GROUP BY ds ORDER BY ds").fetchall()
        raw = con.execute(
            "SELECT order_date, count(DISTINCT order_id) FROM raw.orders WHERE order_date IN ('2026-11-19', '2026-11-20') GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert loaded == raw  # the second run of 11-19 replaced its rows, not added to them


def test_dagster_accepts_the_definitions_file() -> None:
    env = {**os.environ, "DAGSTER_HOME": ""}
    env.pop("DAGSTER_HOME")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-f", "definitions.py"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_dagster_asset_list_leaves_out_source_tables_as_the_readme_says() -> None:
    """Dagster's `asset list` resolves AssetSelection.all(), which excludes external assets;
    the manual sends users to the UI graph and `nb-assets lineage` for the full picture."""
    dagster = str(Path(sys.executable).parent / "dagster")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    listed = subprocess.run([dagster, "asset", "list", "-f", "definitions.py"],
                            cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert {"mart/orders_clean", "reports/revenue_report", "mart/regional_revenue_emea", "mart/daily_orders"} <= set(listed.stdout.split())
    assert not [key for key in listed.stdout.split() if key.startswith("raw/")]
    assert "dagster asset list` shows only the notebooks' assets" in (REPO / "docs" / "declaring-notebooks.md").read_text()


@pytest.mark.docker
def test_a_notebook_materializes_in_docker_with_provenance(demo, docker_image: str) -> None:
    defs, warehouse, tmp = demo
    runner = NotebookResource(warehouse=str(warehouse), sandbox="docker", records_dir=str(tmp / "docker-records"))
    traffic = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.node_def.name == "daily_traffic")
    result = materialize_ok([traffic], resources={RESOURCE_KEY: runner})
    sandbox = result.asset_materializations_for_node("daily_traffic")[0].metadata["notebook/sandbox"].value
    assert (sandbox["kind"], sandbox["network"], sandbox["image"], sandbox["exit_code"]) == ("docker", "none", docker_image, 0)
    assert sandbox["image_id"].startswith("sha256:") and sandbox["duration_s"] > 0
    assert sandbox["limits"]["memory_mb"] > 0 and sandbox["limits"]["pids"] > 0


@pytest.mark.docker
def test_the_demo_report_keeps_its_chart_when_materialized_in_docker(demo, docker_image: str) -> None:
    defs, warehouse, tmp = demo
    by_name = {a.node_def.name: a for a in defs.assets if isinstance(a, dg.AssetsDefinition)}
    # Its upstream tables first (in whichever sandbox is quickest), so this test stands alone.
    local = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp / "upstream-records"))
    upstream = [by_name[n] for n in ("clean_orders", "customer_revenue", "daily_traffic")]
    materialize_ok(upstream, resources={RESOURCE_KEY: local})

    docker = NotebookResource(warehouse=str(warehouse), sandbox="docker", records_dir=str(tmp / "report-records"))
    result = materialize_ok([by_name["revenue_report"]], resources={RESOURCE_KEY: docker})
    meta = result.asset_materializations_for_node("revenue_report")[0].metadata
    assert meta["notebook/sandbox"].value["kind"] == "docker"
    cells = json.loads(Path(meta["notebook/executed"].value).read_text())["cells"]
    chart_cell = next(c for c in cells if "plt.show()" in "".join(c["source"]))
    assert [sorted(o["data"]) for o in chart_cell["outputs"]] == [["image/png", "text/plain"]]
    assert '<img alt="No description has been provided for this image" class="" src="data:image/png;base64,' in Path(
        meta["notebook/html"].value).read_text()


def test_triggers_become_automation_conditions_and_sensors_start_running(demo) -> None:
    defs, _, _ = demo
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    labels = {k: s.automation_condition.get_label() if s.automation_condition else None for k, s in specs.items()}
    assert labels["mart/orders_clean"] == labels["mart/customer_revenue"] == "once every input has landed since the last run"
    assert labels["mart/daily_traffic"] == "at each tick of '0 6 * * *' (Europe/Amsterdam)"
    assert labels["reports/revenue_report"].startswith("at each tick of '0 5 * * 1' (Europe/Amsterdam), once every input")
    assert labels["raw/orders"] is None  # sources land; they are not run
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"nb_assets_landings", "nb_assets_file_drop_raw_orders", "nb_assets_automation", "nb_assets_failure_notifications",
                            "nb_assets_freshness"}
    assert specs["mart/daily_traffic"].freshness_policy == dg.FreshnessPolicy.cron("0 7 * * *", timedelta(hours=24), "Europe/Amsterdam")
    assert {s.default_status for s in sensors.values()} == {dg.DefaultSensorStatus.RUNNING}
    assert isinstance(sensors["nb_assets_automation"], dg.AutomationConditionSensorDefinition)
    assert not list(defs.schedules or [])  # cron is a condition now, so the UI can say why a run did not start
