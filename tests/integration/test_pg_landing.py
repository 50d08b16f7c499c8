"""Landing on a Postgres warehouse: `nb-assets land`, the landing sensor, file drops, a partitioned load."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg
import pytest

from support.warehouses import pg_snapshot
from nb_assets import FileDrop, NotebookAsset, notebook_definitions
from nb_assets.cli.main import main
from nb_assets.defs.file_drop import sweep
from nb_assets.defs.landing_sensor import parse_cursor
from nb_assets.errors import LandingError
from nb_assets.warehouse.backends import land_file, last_landing_id, latest_landings, read_landings, record_landing
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.sensor_ticks import Daemon

DEFINITIONS = """
import os
from pathlib import Path
from nb_assets import DailyPartitions, NotebookAsset, notebook_definitions
BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("clean.ipynb", on_inputs_landed=True),
     NotebookAsset("daily.ipynb", partitions=DailyPartitions(start="2026-11-01", column="ds"))],
    warehouse=os.environ["TEST_PG_WAREHOUSE"], base_dir=BASE_DIR)
"""


@pytest.fixture(autouse=True)
def _quiet_dagster() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)


@pytest.fixture
def project(tmp_path: Path, pg_warehouse: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    with psycopg.connect(pg_warehouse, autocommit=True) as con:
        con.execute("CREATE TABLE raw.customers AS SELECT g::bigint AS customer_id FROM generate_series(0, 2) g")
        con.execute("CREATE TABLE raw.events (ds date, n bigint)")
    write_notebook(tmp_path / "clean.ipynb", code(RUNTIME),
                   code("%%sql rows\nSELECT * FROM raw.orders JOIN raw.customers USING (customer_id)"),
                   code("output('mart.clean', rows)"))
    write_notebook(tmp_path / "daily.ipynb", code(RUNTIME), params("ds = '2026-11-02'"),
                   code("%%sql rows\nSELECT * FROM raw.events WHERE ds = CAST($ds AS DATE)"),
                   code("output('mart.daily', rows)"))
    (tmp_path / "definitions.py").write_text(DEFINITIONS)
    monkeypatch.setenv("TEST_PG_WAREHOUSE", pg_warehouse)
    return tmp_path / "definitions.py"


def _land(project: Path, *args: str) -> int:
    return main(["land", *args, "--definitions", str(project)])


def test_nb_assets_land_loads_a_file_and_logs_it_in_one_transaction(
    project: Path, pg_warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "new.csv").write_text("order_id,customer_id,amount,order_date\n100,1,2.5,2026-11-06\n101,2,3,2026-11-07\n")
    assert _land(project, "raw.orders", "--from", str(tmp_path / "new.csv"), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["landing"]["id"], out["landing"]["table"], out["landing"]["rows"]) == (1, "raw.orders", 2)
    assert pg_warehouse.split("@")[1] in out["warehouse"]
    assert _land(project, "raw.customers", "--source", "crm export") == 0
    assert capsys.readouterr().out == "raw.customers landed (landing 2): recorded; no data loaded\n"
    rows = pg_snapshot(pg_warehouse)["raw.orders"]
    assert len(rows) == 22 and (100, 1, 2.5, pd.Timestamp("2026-11-06").date()) in rows
    assert [(l.id, l.table, l.source) for l in read_landings(pg_warehouse, after_id=0, limit=10)] == [
        (1, "raw.orders", f"file {(tmp_path / 'new.csv').resolve()}"), (2, "raw.customers", "crm export"),
    ]
    assert last_landing_id(pg_warehouse) == 2


def test_a_bad_value_is_located_and_changes_nothing(project: Path, pg_warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_landing(pg_warehouse, "raw.orders", source="first")
    (tmp_path / "bad.csv").write_text("order_id,customer_id,amount,order_date\n100,1,2.5,2026-11-06\n101,x,3,2026-11-07\n")
    before = pg_snapshot(pg_warehouse)
    assert _land(project, "raw.orders", "--from", str(tmp_path / "bad.csv")) == 1
    assert "bad.csv: line 3, column customer_id: 'x' is not a BIGINT; nothing loaded" in capsys.readouterr().err
    assert pg_snapshot(pg_warehouse) == before


def test_a_new_table_is_created_from_its_file_and_replace_replaces(pg_warehouse: str, tmp_path: Path) -> None:
    pd.DataFrame({"k": [1, 2], "label": ["a", "b"]}).to_parquet(tmp_path / "k.parquet")
    assert land_file(pg_warehouse, "raw.keys", tmp_path / "k.parquet").landing.rows == 2
    pd.DataFrame({"label": ["c"], "k": [3]}).to_parquet(tmp_path / "k2.parquet")
    land_file(pg_warehouse, "raw.keys", tmp_path / "k2.parquet", mode="replace")
    assert pg_snapshot(pg_warehouse)["raw.keys"] == [(3, "c")]
    with pytest.raises(LandingError, match="raw.nope is not in the warehouse postgresql://"):
        record_landing(pg_warehouse, "raw.nope")


def test_the_landing_sensor_reports_each_landing_once(project: Path, pg_warehouse: str) -> None:
    defs = notebook_definitions([NotebookAsset("clean.ipynb", on_inputs_landed=True)], warehouse=pg_warehouse, base_dir=project.parent)
    record_landing(pg_warehouse, "raw.orders", rows=20, source="a loader")
    record_landing(pg_warehouse, "raw.customers", source="crm export")
    daemon = Daemon(defs)
    data = daemon.tick()
    assert [(e.asset_key.to_user_string(), e.metadata["landing/id"].value) for e in data.asset_events] == [
        ("raw/orders", 1), ("raw/customers", 2),
    ]
    assert data.asset_events[0].metadata["landing/rows"].value == 20 and parse_cursor(daemon.cursor)[0] == 2
    assert daemon.tick().asset_events == []
    record_landing(pg_warehouse, "raw.customers")
    assert [e.metadata["landing/id"].value for e in daemon.tick().asset_events] == [3]
    # What a tick after new definitions reads: each table's newest landing up to its cursor.
    assert [(l.id, l.table) for l in latest_landings(pg_warehouse, up_to_id=3)] == [(1, "raw.orders"), (3, "raw.customers")]
    assert [l.id for l in latest_landings(pg_warehouse, up_to_id=2)] == [1, 2]


def test_a_file_drop_lands_once(pg_warehouse: str, tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    pd.DataFrame({"order_id": [500], "customer_id": [1], "amount": [9.5],
                  "order_date": [pd.Timestamp("2026-11-09").date()]}).to_parquet(folder / "more.parquet")
    (outcome,) = sweep(FileDrop("raw.orders", folder=str(folder)), folder, pg_warehouse, settle_s=0)
    assert outcome.status == "loaded" and (folder / "loaded" / "more.parquet").is_file()
    assert sum(1 for row in pg_snapshot(pg_warehouse)["raw.orders"] if row[0] == 500) == 1
    assert sweep(FileDrop("raw.orders", folder=str(folder)), folder, pg_warehouse, settle_s=0) == []


def test_a_partitioned_landing_and_load_on_postgres(project: Path, pg_warehouse: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`land --partition` for the day, then the partitioned load replaces only that day in mart.daily."""
    from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse
    from nb_assets.warehouse.base import PartitionLoad

    (tmp_path / "day.csv").write_text("ds,n\n2026-11-02,7\n")
    assert _land(project, "raw.events", "--from", str(tmp_path / "day.csv"), "--partition", "2026-11-02") == 0
    assert [l.partition for l in read_landings(pg_warehouse, after_id=0, limit=5)] == ["2026-11-02"]
    wh = PostgresWarehouse(pg_warehouse)
    for day, n in (("2026-11-02", 7), ("2026-11-03", 8), ("2026-11-02", 9)):
        out = tmp_path / f"{day}.parquet"
        pd.DataFrame({"ds": [pd.Timestamp(day).date()], "n": [n]}).to_parquet(out)
        wh.load_partition("daily.ipynb", {"mart.daily": out}, PartitionLoad("ds", day))
    assert sorted(n for _, n in pg_snapshot(pg_warehouse)["mart.daily"]) == [8, 9]

