"""The landing sensor: each landing in the log reported once on its source table's asset.

Real DuckDB warehouse, real definitions from notebook_definitions, real Dagster
instance; each tick's events are reported into the instance the way the
sensor daemon does, and the cursor is carried from tick to tick as it stores it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nb_assets import FileDrop, NotebookAsset, notebook_definitions
from nb_assets.defs.automation import LANDING_SENSOR
from nb_assets.defs.landing_sensor import parse_cursor
from nb_assets.errors import DeclarationError
from nb_assets.warehouse.duckdb.landing import record_landing
from support.notebook_factory import RUNTIME, code, write_notebook
from support.sensor_ticks import Daemon
from support.polling import read_line


@pytest.fixture(autouse=True)
def _quiet_dagster() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)


@pytest.fixture
def project(tmp_path: Path, warehouse: Path) -> dg.Definitions:
    """One notebook reading raw.orders and raw.customers; the warehouse has raw.orders."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE raw.customers AS SELECT range AS customer_id FROM range(3)")
    write_notebook(
        tmp_path / "report.ipynb", code(RUNTIME),
        code("%%sql rows\nSELECT * FROM raw.orders JOIN raw.customers USING (customer_id)"),
        code("output('mart.report', rows)"),
    )
    return notebook_definitions([NotebookAsset("report.ipynb", on_inputs_landed=True)], warehouse=warehouse, base_dir=tmp_path)


def test_each_landing_is_reported_once_with_its_facts(project: dg.Definitions, warehouse: Path) -> None:
    record_landing(warehouse, "raw.orders", rows=20, partition="2026-11-05", source="a loader")
    record_landing(warehouse, "raw.customers", source="crm export")
    record_landing(warehouse, "raw.orders", rows=5, source="a loader")
    daemon = Daemon(project)
    data = daemon.tick()
    assert [(e.asset_key.to_user_string(), e.metadata["landing/id"].value) for e in data.asset_events] == [
        ("raw/orders", 1), ("raw/customers", 2), ("raw/orders", 3),
    ]
    first = data.asset_events[0]
    assert first.metadata["landing/rows"].value == 20 and first.metadata["landing/partition"].value == "2026-11-05"
    assert first.metadata["landing/source"].value == "a loader" and first.metadata["landing/landed_at"].value > 0
    assert parse_cursor(daemon.cursor)[0] == 3
    assert daemon.tick().asset_events == []
    record_landing(warehouse, "raw.customers")
    assert [e.metadata["landing/id"].value for e in daemon.tick().asset_events] == [4]
    assert (daemon.reported("raw.orders"), daemon.reported("raw.customers")) == ([1, 3], [2, 4])


def test_a_tick_that_died_before_saving_its_cursor_reports_nothing_twice(project: dg.Definitions, warehouse: Path) -> None:
    for _ in range(3):
        record_landing(warehouse, "raw.orders")
    daemon = Daemon(project)
    daemon.tick(save_cursor=False)  # events written, then the daemon was killed
    record_landing(warehouse, "raw.customers")
    data = daemon.tick()  # the restarted daemon starts again from the old cursor
    assert [e.metadata["landing/id"].value for e in data.asset_events] == [4]
    assert daemon.reported("raw.orders") == [1, 2, 3] and parse_cursor(daemon.cursor)[0] == 4


def test_a_recreated_log_is_read_from_its_start(project: dg.Definitions, warehouse: Path) -> None:
    record_landing(warehouse, "raw.orders")
    record_landing(warehouse, "raw.orders")
    daemon = Daemon(project)
    daemon.tick()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE nb_assets.landings")
    record_landing(warehouse, "raw.orders")  # id 1 again, but a new landing
    assert [e.metadata["landing/id"].value for e in daemon.tick().asset_events] == [1]
    assert daemon.reported("raw.orders") == [1, 2, 1]


def test_landings_of_tables_no_notebook_reads_are_skipped(project: dg.Definitions, warehouse: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE raw.unrelated AS SELECT 1 AS x")
    record_landing(warehouse, "raw.unrelated")
    record_landing(warehouse, "raw.orders")
    daemon = Daemon(project)
    data = daemon.tick()
    assert [e.asset_key.to_user_string() for e in data.asset_events] == ["raw/orders"]
    assert parse_cursor(daemon.cursor)[0] == 2


def test_a_backlog_is_reported_over_several_ticks_in_order(tmp_path: Path, warehouse: Path) -> None:
    write_notebook(tmp_path / "r.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.r', rows)"))
    from nb_assets.defs.automation import landing_sensor

    for _ in range(5):
        record_landing(warehouse, "raw.orders")
    sensor = landing_sensor(warehouse, {"raw.orders": dg.AssetKey(["raw", "orders"])}, max_per_tick=2)
    defs = dg.Definitions(assets=[dg.AssetSpec(["raw", "orders"])], sensors=[sensor])
    daemon = Daemon(defs)
    batches = [[e.metadata["landing/id"].value for e in daemon.tick().asset_events] for _ in range(4)]
    assert batches == [[1, 2], [3, 4], [5], []]


def test_a_missing_log_fails_the_tick_with_a_clear_message(project: dg.Definitions, warehouse: Path) -> None:
    daemon = Daemon(project)
    with pytest.raises(Exception) as err:
        daemon.tick()
    assert "has no landing log (nb_assets.landings)" in str(err.value)
    record_landing(warehouse, "raw.orders")  # creates the log: the next tick works
    assert len(daemon.tick().asset_events) == 1


def test_a_cursor_written_before_it_named_the_sources_is_read_as_is(project: dg.Definitions, warehouse: Path) -> None:
    record_landing(warehouse, "raw.orders")
    record_landing(warehouse, "raw.orders")
    daemon = Daemon(project)
    daemon.cursor = "1"  # as an older nb_assets saved it
    assert [e.metadata["landing/id"].value for e in daemon.tick().asset_events] == [2]
    assert parse_cursor(daemon.cursor)[0] == 2


def test_a_corrupt_cursor_is_a_clear_error(project: dg.Definitions, warehouse: Path) -> None:
    record_landing(warehouse, "raw.orders")
    daemon = Daemon(project)
    daemon.cursor = "not-a-number"
    with pytest.raises(Exception, match="cursor 'not-a-number' is not a landing id"):
        daemon.tick()


def test_a_busy_warehouse_skips_the_tick(project: dg.Definitions, warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nb_assets.warehouse.duckdb import landing

    record_landing(warehouse, "raw.orders")
    monkeypatch.setattr(landing, "READ_LOCK_WAIT_S", 0.5)
    daemon = Daemon(project)
    # Another process holds the write lock, as a loader in the middle of a load would.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert read_line(holder, "the lock holder to hold the warehouse").strip() == "held"
        data = daemon.tick()
    finally:
        holder.kill()
        holder.wait()
    assert data.skip_message.startswith("warehouse busy") and data.asset_events == [] and daemon.cursor is None
    assert len(daemon.tick().asset_events) == 1  # the lock is gone: the landing is reported


def test_file_drops_must_name_a_source_table(tmp_path: Path, warehouse: Path) -> None:
    write_notebook(tmp_path / "r.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.r', rows)"))
    decl = [NotebookAsset("r.ipynb", on_inputs_landed=True)]
    with pytest.raises(DeclarationError) as err:
        notebook_definitions(decl, warehouse=warehouse, base_dir=tmp_path, file_drops=[
            FileDrop("raw.order", folder="in/orders"), FileDrop("mart.r", folder="in/r"),
            FileDrop("raw.orders", folder="in/x"), FileDrop("raw.orders", folder="in/x", pattern="*.csv"),
        ])
    assert str(err.value).startswith("3 problem(s) in file drops:")
    assert "FileDrop('raw.order', folder='in/orders'): no declared notebook reads raw.order" in str(err.value)
    assert "FileDrop('mart.r', folder='in/r'): mart.r is written by a declared notebook" in str(err.value)
    assert f"two file drops watch {tmp_path.resolve() / 'in' / 'x'}; give each its own folder" in str(err.value)


def test_the_definitions_carry_running_sensors(project: dg.Definitions) -> None:
    sensors = {s.name: s for s in project.sensors}
    assert set(sensors) == {LANDING_SENSOR, "nb_assets_automation"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


class Reloads:
    """A running `dagster dev` whose definitions are reloaded: one instance, both sensors'
    cursors carried over from one version of the definitions to the next."""

    def __init__(self, tmp_path: Path, warehouse: Path) -> None:
        self.tmp_path, self.warehouse = tmp_path, warehouse
        self.instance = dg.DagsterInstance.ephemeral()
        self.landing_cursor: str | None = None
        self.automation_cursor = None
        self.defs: dg.Definitions | None = None

    def declare(self, *notebooks: str) -> None:
        """Reload with these notebooks (all on_inputs_landed), as after `schedule --write`."""
        declared = [NotebookAsset(f"{name}.ipynb", on_inputs_landed=True) for name in notebooks]
        self.defs = notebook_definitions(declared, warehouse=self.warehouse, base_dir=self.tmp_path)

    def report_landings(self) -> list[str]:
        sensor = self.defs.resolve_sensor_def(LANDING_SENSOR)
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=self.instance, cursor=self.landing_cursor, definitions=self.defs))
        for event in data.asset_events:
            self.instance.report_runless_asset_event(event)
        self.landing_cursor = data.cursor or self.landing_cursor
        return [e.asset_key.to_user_string() for e in data.asset_events]

    def evaluate(self) -> list[str]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.automation_cursor)
        self.automation_cursor = result.cursor
        return sorted(r.key.to_user_string() for r in result.results if result.get_num_requested(r.key))


@pytest.fixture
def reloads(tmp_path: Path, warehouse: Path) -> Reloads:
    """x reads raw.orders; y, declared later, reads raw.customers."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE raw.customers AS SELECT range AS customer_id FROM range(3)")
    for name, table in (("x", "raw.orders"), ("y", "raw.customers"), ("z", "raw.orders")):
        write_notebook(tmp_path / f"{name}.ipynb", code(RUNTIME), code(f"%%sql rows\nSELECT * FROM {table}"), code(f"output('mart.{name}', rows)"))
    return Reloads(tmp_path, warehouse)


@pytest.mark.parametrize("sensors_after_reload", [["landings", "automation"], ["automation", "landings", "automation"]])
def test_a_landing_of_a_table_no_notebook_read_yet_starts_its_first_reader(reloads: Reloads, sensors_after_reload: list[str]) -> None:
    """Landed while no notebook read raw.customers: the tick read past it. Once y is declared, it runs once."""
    reloads.declare("x")
    assert reloads.evaluate() == []
    record_landing(reloads.warehouse, "raw.customers", source="crm export")
    assert reloads.report_landings() == []  # no declared notebook reads it yet
    assert reloads.evaluate() == []

    reloads.declare("x", "y")  # `schedule --write`, then `dagster dev` reloads its definitions
    requested = []
    for sensor in sensors_after_reload:  # whichever sensor ticks first after the reload
        if sensor == "landings":
            assert reloads.report_landings() == ["raw/customers"]
        else:
            requested += reloads.evaluate()
    assert requested == ["mart/y"]
    assert reloads.report_landings() == [] and reloads.evaluate() == []  # once
    [record] = reloads.instance.fetch_materializations(dg.AssetKey(["raw", "customers"]), limit=5).records
    assert record.asset_materialization.metadata["landing/source"].value == "crm export"


def test_a_landing_reported_before_a_reader_was_declared_starts_that_readers_first_run(reloads: Reloads) -> None:
    reloads.declare("x")
    reloads.evaluate()
    record_landing(reloads.warehouse, "raw.orders")
    assert reloads.report_landings() == ["raw/orders"]
    assert reloads.evaluate() == ["mart/x"]
    reloads.instance.report_runless_asset_event(dg.AssetMaterialization(["mart", "x"]))  # x's run

    reloads.declare("x", "z")  # z reads raw.orders too; it landed before z existed
    assert reloads.report_landings() == []  # nothing new to report: it was reported already
    assert reloads.evaluate() == ["mart/z"]  # z's first evaluation sees it; x already ran on it
    assert reloads.evaluate() == []
    record_landing(reloads.warehouse, "raw.orders")
    assert reloads.report_landings() == ["raw/orders"]
    assert reloads.evaluate() == ["mart/x", "mart/z"]  # from then on, each landing as usual


def test_a_notebook_run_by_hand_before_it_had_a_trigger_does_not_run_again_for_an_old_landing(reloads: Reloads) -> None:
    reloads.declare("z")
    record_landing(reloads.warehouse, "raw.orders")
    assert reloads.report_landings() == ["raw/orders"]
    assert reloads.evaluate() == ["mart/z"]
    reloads.instance.report_runless_asset_event(dg.AssetMaterialization(["mart", "x"]))  # x, run by hand on that data
    reloads.declare("x", "z")  # then declared with a trigger
    assert reloads.evaluate() == []  # only a notebook that never ran counts what landed before it was declared
    record_landing(reloads.warehouse, "raw.orders")
    assert reloads.report_landings() == ["raw/orders"]
    assert reloads.evaluate() == ["mart/x", "mart/z"]


def test_days_that_landed_before_a_daily_reader_was_declared_start_those_days(reloads: Reloads) -> None:
    from nb_assets import DailyPartitions
    from support.notebook_factory import params

    write_notebook(reloads.tmp_path / "daily.ipynb", code(RUNTIME), params('ds = "2026-01-01"'),
                   code("%%sql rows\nSELECT * FROM raw.customers WHERE customer_id >= 0 AND $ds IS NOT NULL"),
                   code("output('mart.daily', rows)"))
    reloads.declare("x")
    record_landing(reloads.warehouse, "raw.customers", partition="2026-01-02")
    record_landing(reloads.warehouse, "raw.customers", partition="2026-01-04")
    assert reloads.report_landings() == []
    reloads.defs = notebook_definitions(
        [NotebookAsset("x.ipynb", on_inputs_landed=True),
         NotebookAsset("daily.ipynb", on_inputs_landed=True, partitions=DailyPartitions(start="2026-01-01", column="ds"))],
        warehouse=reloads.warehouse, base_dir=reloads.tmp_path)
    assert reloads.report_landings() == ["raw/customers", "raw/customers"]
    result = dg.evaluate_automation_conditions(defs=reloads.defs, instance=reloads.instance, cursor=reloads.automation_cursor)
    assert set(result.get_requested_partitions(dg.AssetKey(["mart", "daily"]))) == {"2026-01-02", "2026-01-04"}
    again = dg.evaluate_automation_conditions(defs=reloads.defs, instance=reloads.instance, cursor=result.cursor)
    assert set(again.get_requested_partitions(dg.AssetKey(["mart", "daily"]))) == set()
