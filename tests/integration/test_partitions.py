"""Daily partitions: a run replaces only its day; landings and triggers work per day — real DuckDB, Dagster, papermill."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nb_assets import DailyPartitions, NotebookAsset, NotebookResource, build_notebook_assets, notebook_definitions
from nb_assets.defs.automation import LANDING_SENSOR
from nb_assets.defs.build import RESOURCE_KEY, build_notebook_graph
from nb_assets.errors import DeclarationError
from nb_assets.warehouse.duckdb.landing import record_landing
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.warehouses import warehouse_snapshot

DAYS = ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05")
PARTS = DailyPartitions(start="2026-01-01")


@pytest.fixture(autouse=True)
def _quiet_dagster() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)


@pytest.fixture
def events(tmp_path: Path) -> Path:
    """raw.events, day d has d rows; mart.daily_events already holds every day with n = -1."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE SCHEMA mart")
        con.execute(
            "CREATE TABLE raw.events AS SELECT DATE '2026-01-01' + d::INTEGER AS event_date, r AS id "
            "FROM range(5) t(d), range(5) u(r) WHERE r <= d"
        )
        con.execute("CREATE TABLE mart.daily_events AS SELECT DATE '2026-01-01' + d::INTEGER AS ds, -1::BIGINT AS n FROM range(5) t(d)")
    return path


def _daily(tmp_path: Path, body: str = "out = ev.assign(ds=ev.event_date).groupby('ds', as_index=False).size().rename(columns={'size': 'n'})",
           param_cell: str = 'ds = "2026-01-01"') -> Path:
    return write_notebook(
        tmp_path / "daily.ipynb",
        md("# Daily events"),
        code(RUNTIME),
        params(param_cell),
        code("%%sql ev\nSELECT event_date, id FROM raw.events WHERE event_date = CAST($ds AS DATE)"),
        code(body),
        code("output('mart.daily_events', out)"),
    )


def _materialize(assets, warehouse: Path, tmp_path: Path, day: str, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    runner = NotebookResource(warehouse=str(warehouse), sandbox="local", records_dir=str(tmp_path / "records"))
    return dg.materialize(assets, resources={RESOURCE_KEY: runner}, partition_key=day, raise_on_error=False, instance=instance)


def _rows(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {d.isoformat(): n for d, n in con.execute("SELECT ds, n FROM mart.daily_events ORDER BY ds").fetchall()}


def test_a_partitioned_notebook_and_the_sources_only_it_reads_are_daily_partitioned(tmp_path: Path) -> None:
    _daily(tmp_path)
    graph = build_notebook_graph([NotebookAsset("daily.ipynb", partitions=PARTS)], base_dir=tmp_path)
    (notebook,) = [a for a in graph.assets if isinstance(a, dg.AssetsDefinition)]
    (source,) = [a for a in graph.assets if isinstance(a, dg.AssetSpec)]
    assert notebook.partitions_def == dg.DailyPartitionsDefinition(start_date="2026-01-01")
    assert notebook.backfill_policy == dg.BackfillPolicy.multi_run(1)  # one run per day
    assert source.key == dg.AssetKey(["raw", "events"]) and source.partitions_def == notebook.partitions_def
    assert "ds" not in notebook.op.config_schema.config_type.fields  # the day comes from the partition


def test_a_source_an_unpartitioned_notebook_also_reads_stays_unpartitioned(tmp_path: Path) -> None:
    _daily(tmp_path)
    write_notebook(tmp_path / "all.ipynb", code(RUNTIME), code("%%sql ev\nSELECT * FROM raw.events"), code("output('mart.all_events', ev)"))
    graph = build_notebook_graph([NotebookAsset("daily.ipynb", partitions=PARTS), NotebookAsset("all.ipynb")], base_dir=tmp_path)
    (source,) = [a for a in graph.assets if isinstance(a, dg.AssetSpec)]
    assert source.partitions_def is None and not graph.partitioned_sources


def test_a_day_replaces_only_its_own_rows(tmp_path: Path, events: Path) -> None:
    _daily(tmp_path)
    assets = build_notebook_assets([NotebookAsset("daily.ipynb", partitions=PARTS)], base_dir=tmp_path)
    assert _materialize(assets, events, tmp_path, "2026-01-03").success
    assert _rows(events) == {"2026-01-01": -1, "2026-01-02": -1, "2026-01-03": 3, "2026-01-04": -1, "2026-01-05": -1}
    assert _materialize(assets, events, tmp_path, "2026-01-01").success
    assert _materialize(assets, events, tmp_path, "2026-01-03").success  # again: replaced, not appended
    assert _rows(events) == {"2026-01-01": 1, "2026-01-02": -1, "2026-01-03": 3, "2026-01-04": -1, "2026-01-05": -1}


def test_a_day_creates_the_table_when_it_does_not_exist(tmp_path: Path, events: Path) -> None:
    with duckdb.connect(str(events)) as con:
        con.execute("DROP TABLE mart.daily_events")
    _daily(tmp_path)
    assets = build_notebook_assets([NotebookAsset("daily.ipynb", partitions=PARTS)], base_dir=tmp_path)
    assert _materialize(assets, events, tmp_path, "2026-01-02").success
    assert _rows(events) == {"2026-01-02": 2}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("out = ev.assign(ds=ev.event_date - __import__('datetime').timedelta(days=1)).groupby('ds', as_index=False).size()",
         "output mart.daily_events has 1 row(s) whose 'ds' is not 2026-01-03 (e.g. '2026-01-02')"),
        ("out = ev.groupby('event_date', as_index=False).size()", "output mart.daily_events has no partition column 'ds'"),
    ],
)
def test_an_output_with_another_day_or_no_day_column_loads_nothing(tmp_path: Path, events: Path, body: str, needle: str) -> None:
    _daily(tmp_path, body)
    assets = build_notebook_assets([NotebookAsset("daily.ipynb", partitions=PARTS)], base_dir=tmp_path)
    before = warehouse_snapshot(events)
    result = _materialize(assets, events, tmp_path, "2026-01-03")
    assert not result.success
    message = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "daily.ipynb" in message and "partition 2026-01-03" in message and needle in message, message
    assert warehouse_snapshot(events) == before


@pytest.mark.parametrize(
    ("decl", "param_cell", "needle"),
    [
        (NotebookAsset("daily.ipynb", partitions=PARTS), 'day = "2026-01-01"',
         "daily.ipynb: partitioned daily, but its parameters cell does not declare 'ds'"),
        (NotebookAsset("daily.ipynb", partitions=DailyPartitions(start="2026-13-01")), 'ds = "2026-01-01"',
         "daily.ipynb: DailyPartitions(start=...): partition key '2026-13-01' is not a date"),
        (NotebookAsset("daily.ipynb", partitions=PARTS, params={"ds": "2026-01-02"}), 'ds = "2026-01-01"',
         "params= sets 'ds', which a partitioned notebook receives from its partition"),
        (NotebookAsset("daily.ipynb", partitions=PARTS), "ds = 20260101", "parameter 'ds' receives the day as a string"),
    ],
)
def test_bad_partition_declarations_are_refused_naming_the_notebook(tmp_path: Path, decl, param_cell: str, needle: str) -> None:
    write_notebook(tmp_path / "daily.ipynb", code(RUNTIME), params(param_cell), code("%%sql ev\nSELECT * FROM raw.events"),
                   code("output('mart.daily_events', ev)"))
    with pytest.raises(DeclarationError) as err:
        build_notebook_assets([decl], base_dir=tmp_path)
    assert needle in str(err.value)


def test_waiting_for_an_unpartitioned_input_is_refused(tmp_path: Path) -> None:
    _daily(tmp_path)
    write_notebook(tmp_path / "all.ipynb", code(RUNTIME), code("%%sql ev\nSELECT * FROM raw.events"), code("output('mart.all_events', ev)"))
    with pytest.raises(DeclarationError, match="raw.events is not partitioned"):
        build_notebook_assets([NotebookAsset("daily.ipynb", partitions=PARTS, on_inputs_landed=True), NotebookAsset("all.ipynb")],
                              base_dir=tmp_path)


def test_a_landing_for_an_older_day_runs_that_day_only(tmp_path: Path, events: Path) -> None:
    """Landing sensor → partitioned materialization → the automation condition requests exactly that day."""
    _daily(tmp_path)
    defs = notebook_definitions([NotebookAsset("daily.ipynb", partitions=PARTS, on_inputs_landed=True)], warehouse=events, base_dir=tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def(LANDING_SENSOR)
    state = {"sensor": None, "automation": None}

    def landings_tick() -> list[dg.AssetMaterialization]:
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=state["sensor"], definitions=defs))
        for event in data.asset_events:
            instance.report_runless_asset_event(event)
        state["sensor"] = data.cursor or state["sensor"]
        return list(data.asset_events)

    def requested() -> set[str | None]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=state["automation"])
        state["automation"] = result.cursor
        return set(result.get_requested_partitions(dg.AssetKey(["mart", "daily_events"])))

    assert requested() == set()
    record_landing(events, "raw.events", partition="2026-01-04")
    record_landing(events, "raw.events", partition="2026-01-02")  # an older day, landed late
    record_landing(events, "raw.events")  # no day: not reported on a partitioned source
    reported = landings_tick()
    assert [e.partition for e in reported] == ["2026-01-04", "2026-01-02"]
    assert requested() == {"2026-01-02", "2026-01-04"}
    assert requested() == set()  # requested once
