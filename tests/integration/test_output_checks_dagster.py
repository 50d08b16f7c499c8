"""Output checks through Dagster: real kernel (papermill, local sandbox), real DuckDB and Postgres, a real instance on disk.

The check results land in the instance's event log (the asset page's Checks tab), a blocking failure
fails the run and leaves the warehouse as it was, and a blocked output does not trigger its
`on_inputs_landed` downstream notebook: the automation condition, evaluated on the real instance,
requests it after a good load and not after a blocked one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest

from nb_assets import NotebookAsset, NotebookResource, build_notebook_assets, notebook_definitions
from nb_assets.defs.build import RESOURCE_KEY
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.warehouses import pg_snapshot, warehouse_snapshot

CLEAN = dg.AssetKey(["mart", "orders_clean"])
DOWN = dg.AssetKey(["mart", "orders_total"])


@pytest.fixture(autouse=True)
def _quiet_dagster() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)


@pytest.fixture
def project(tmp_path: Path, warehouse: Path) -> list[NotebookAsset]:
    write_notebook(
        tmp_path / "clean.ipynb", md("# Clean orders"), code(RUNTIME + "\nfrom nb_assets.notebook import unique, row_count"),
        params("dup = False"), code("%%sql o\nSELECT order_id, customer_id, amount FROM raw.orders"),
        code("import pandas as pd\nout = pd.concat([o, o.head(2)]) if dup else o"),
        code('output("mart.orders_clean", out, checks=[unique("order_id"), row_count(min=100, severity="warn")])'),
    )
    write_notebook(
        tmp_path / "total.ipynb", md("# Total"), code(RUNTIME),
        code("%%sql c\nSELECT sum(amount) AS total FROM mart.orders_clean"), code('output("mart.orders_total", c)'),
    )
    from nb_assets import not_null

    return [NotebookAsset("clean.ipynb", checks={"mart.orders_clean": [not_null("customer_id")]}),
            NotebookAsset("total.ipynb", on_inputs_landed=True)]


def _run(project: list[NotebookAsset], tmp_path: Path, warehouse: Path | str, instance: dg.DagsterInstance, dup: bool) -> dg.ExecuteInProcessResult:
    assets = build_notebook_assets(project, base_dir=tmp_path, warehouse=warehouse)
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    return dg.materialize(assets, selection=[CLEAN], resources={RESOURCE_KEY: runner}, instance=instance, raise_on_error=False,
                          run_config={"ops": {"clean": {"config": {"dup": dup}}}})


def _evaluations(instance: dg.DagsterInstance, run_id: str) -> dict[str, dg.AssetCheckEvaluation]:
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return {e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data for e in events}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_check_results_are_in_the_event_log_and_a_blocked_load_changes_nothing(
    project: list[NotebookAsset], tmp_path: Path, warehouse: Path, kind: str, request: pytest.FixtureRequest,
) -> None:
    if kind == "postgres":
        location: str = request.getfixturevalue("pg_warehouse")
        snapshot = lambda: pg_snapshot(location)  # noqa: E731
    else:
        location = str(warehouse)
        snapshot = lambda: warehouse_snapshot(warehouse)  # noqa: E731
    defs = notebook_definitions(project, warehouse=location, base_dir=tmp_path)
    specs = {c.name: c for c in defs.resolve_assets_def(CLEAN).check_specs}
    assert {n: s.blocking for n, s in specs.items()} == {"unique_order_id": True, "row_count": False, "not_null_customer_id": True}
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        good = _run(project, tmp_path, location, instance, dup=False)
        assert good.success
        found = _evaluations(instance, good.run_id)
        assert {n: (e.passed, e.severity) for n, e in found.items()} == {
            "unique_order_id": (True, dg.AssetCheckSeverity.ERROR),
            "not_null_customer_id": (True, dg.AssetCheckSeverity.ERROR),
            "row_count": (False, dg.AssetCheckSeverity.WARN),  # a warning: reported, and the table published
        }
        assert found["row_count"].metadata["failed_rows"].value == 1
        before = snapshot()
        assert len(before["mart.orders_clean"]) == 20

        bad = _run(project, tmp_path, location, instance, dup=True)
        assert not bad.success
        assert snapshot() == before
        blocked = _evaluations(instance, bad.run_id)["unique_order_id"]
        assert not blocked.passed and blocked.metadata["failed_rows"].value == 2
        assert "| order_id | n_rows |" in blocked.metadata["sample"].value
        failure = next(e for e in instance.all_logs(bad.run_id, of_type=dg.DagsterEventType.STEP_FAILURE))
        text = failure.dagster_event.step_failure_data.error.message  # type: ignore[union-attr]
        assert "unique_order_id = unique(order_id) failed on 2 row(s)" in text and "nothing loaded" in text


def test_a_blocked_output_does_not_trigger_its_downstream_notebook(
    project: list[NotebookAsset], tmp_path: Path, warehouse: Path,
) -> None:
    defs = notebook_definitions(project, warehouse=warehouse, base_dir=tmp_path)
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        cursor = None

        def requested() -> set[dg.AssetKey]:
            nonlocal cursor
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            cursor = result.cursor
            return {r.key for r in result.results if r.true_subset.size}

        assert DOWN not in requested()
        assert _run(project, tmp_path, warehouse, instance, dup=False).success
        assert DOWN in requested()  # a published load lands the input: the downstream notebook runs
        assert not _run(project, tmp_path, warehouse, instance, dup=True).success
        assert DOWN not in requested()  # the blocked load published nothing: nothing to run on
        assert DOWN not in requested()
        assert _run(project, tmp_path, warehouse, instance, dup=False).success
        assert DOWN in requested()
