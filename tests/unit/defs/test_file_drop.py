"""File drops: each file in a watched folder loaded once, through the real sensor and a real warehouse."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.warehouses import warehouse_snapshot
from nb_assets import FileDrop, NotebookAsset, notebook_definitions
from nb_assets.defs.file_drop import sweep
from nb_assets.warehouse.duckdb.landing import read_landings
from support.notebook_factory import RUNTIME, code, write_notebook

HEADER = "order_id,customer_id,amount,order_date\n"
DROP = FileDrop("raw.orders", folder="drops/orders", pattern="*.csv")


@pytest.fixture(autouse=True)
def _quiet_dagster() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "drops" / "orders"


def _drop(folder: Path, name: str, body: str, *, age_s: float = 10) -> Path:
    """Write a file into the folder, as old as `age_s` (settled) unless told otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(HEADER + body)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _orders(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT count(*) FROM raw.orders").fetchone()[0]


def test_the_sensor_loads_each_new_file_once_and_moves_it(
    tmp_path: Path, warehouse: Path, folder: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    write_notebook(tmp_path / "r.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.r', rows)"))
    defs = notebook_definitions([NotebookAsset("r.ipynb", on_inputs_landed=True)], warehouse=warehouse, base_dir=tmp_path, file_drops=[DROP])
    sensor = defs.resolve_sensor_def("nb_assets_file_drop_raw_orders")
    instance = dg.DagsterInstance.ephemeral()
    _drop(folder, "a.csv", "100,1,2.5,2026-11-06\n101,1,3.5,2026-11-06\n")
    _drop(folder, "b.csv", "102,2,1.0,2026-11-06\n")
    _drop(folder, "notes.txt", "not matched by the pattern\n")

    logging.getLogger("dagster").setLevel(logging.INFO)
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    logged = capfd.readouterr().err
    assert "INFO - loaded 2 rows into raw.orders from drops/orders/a.csv (landing 1)" in logged, logged
    assert "skipped" not in logged
    assert data.skip_message == ("loaded 2 rows into raw.orders from drops/orders/a.csv (landing 1); "
                                 "loaded 1 row into raw.orders from drops/orders/b.csv (landing 2)")
    assert sorted(p.name for p in (folder / "loaded").iterdir()) == ["a.csv", "b.csv"]
    assert sorted(p.name for p in folder.iterdir()) == ["loaded", "notes.txt"]
    landings = read_landings(warehouse, after_id=0, limit=10)
    assert [(landing.table, landing.rows) for landing in landings] == [("raw.orders", 2), ("raw.orders", 1)]
    assert landings[0].source.startswith("file-drop drops/orders/a.csv sha256:")

    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
    assert data.skip_message == f"no new files in {folder}" and _orders(warehouse) == 23


def test_a_bad_file_is_rejected_with_its_reason_and_changes_nothing(warehouse: Path, folder: Path) -> None:
    _drop(folder, "good.csv", "100,1,2.5,2026-11-06\n")
    sweep(DROP, folder, warehouse)
    before = warehouse_snapshot(warehouse)
    _drop(folder, "bad.csv", "101,1,lots,2026-11-06\n")
    [outcome] = sweep(DROP, folder, warehouse)
    assert outcome.status == "rejected"
    reason = (folder / "rejected" / "bad.csv.reason.txt").read_text()
    assert reason == f"{folder / 'bad.csv'}: line 2, column amount: 'lots' is not a DOUBLE; nothing loaded\n"
    assert (folder / "rejected" / "bad.csv").is_file() and not (folder / "bad.csv").exists()
    assert warehouse_snapshot(warehouse) == before


def test_a_file_still_being_written_waits_for_the_next_tick(warehouse: Path, folder: Path) -> None:
    _drop(folder, "fresh.csv", "100,1,2.5,2026-11-06\n", age_s=0)
    [outcome] = sweep(DROP, folder, warehouse, settle_s=60)
    assert outcome.status == "skipped"
    assert outcome.message.startswith("skipped drops/orders/fresh.csv for now: modified ")
    assert outcome.message.endswith("it may still be being written; tried again once it is 60 s old")
    assert (folder / "fresh.csv").exists() and _orders(warehouse) == 20
    assert [o.status for o in sweep(DROP, folder, warehouse, settle_s=0)] == ["loaded"]


def test_a_file_loaded_by_a_tick_that_died_before_moving_it_is_not_loaded_again(warehouse: Path, folder: Path) -> None:
    from nb_assets.defs.file_drop import _sha256
    from nb_assets.warehouse.backends import land_file

    path = _drop(folder, "a.csv", "100,1,2.5,2026-11-06\n")
    # What a tick does before the move, with the same identity it records.
    land_file(warehouse, "raw.orders", path, source=f"file-drop drops/orders/a.csv sha256:{_sha256(path)}", once_per_source=True)
    [outcome] = sweep(DROP, folder, warehouse)
    assert (outcome.status, outcome.landing_id) == ("recovered", 1)
    assert (folder / "loaded" / "a.csv").is_file() and _orders(warehouse) == 21
    assert len(read_landings(warehouse, after_id=0, limit=10)) == 1


def test_the_same_file_dropped_again_is_refused_as_a_duplicate(warehouse: Path, folder: Path) -> None:
    _drop(folder, "a.csv", "100,1,2.5,2026-11-06\n")
    sweep(DROP, folder, warehouse)
    _drop(folder, "a.csv", "100,1,2.5,2026-11-06\n")
    [outcome] = sweep(DROP, folder, warehouse)
    assert outcome.status == "rejected" and "already loaded: identical to loaded/a.csv (landing 1)" in outcome.detail
    _drop(folder, "a.csv", "101,1,9.0,2026-11-07\n")  # same name, new content: a new file
    [outcome] = sweep(DROP, folder, warehouse)
    assert outcome.status == "loaded" and (folder / "loaded" / f"a.{outcome.landing_id}.csv").is_file()
    assert _orders(warehouse) == 22


def test_a_symbolic_link_is_rejected_not_followed(warehouse: Path, folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.csv"
    target.write_text(HEADER + "100,1,2.5,2026-11-06\n")
    folder.mkdir(parents=True)
    (folder / "link.csv").symlink_to(target)
    os.utime(folder / "link.csv", (time.time() - 10,) * 2, follow_symlinks=False)
    [outcome] = sweep(DROP, folder, warehouse)
    assert outcome.status == "rejected" and "symbolic link" in outcome.detail
    assert _orders(warehouse) == 20 and target.exists()


def test_sweeping_again_after_a_restart_loads_nothing_twice(warehouse: Path, folder: Path) -> None:
    for i in range(3):
        _drop(folder, f"{i}.csv", f"{100 + i},1,1.0,2026-11-06\n")
    first = sweep(DROP, folder, warehouse, budget_s=0)  # the budget ends after the first file
    assert [(o.file, o.status) for o in first] == [
        ("drops/orders/0.csv", "loaded"), ("drops/orders/1.csv", "skipped"), ("drops/orders/2.csv", "skipped"),
    ]
    assert first[1].message == "skipped drops/orders/1.csv for now: this tick used its 0 s; tried again next tick"
    rest = sweep(DROP, folder, warehouse)
    assert [(o.file, o.status) for o in rest] == [("drops/orders/1.csv", "loaded"), ("drops/orders/2.csv", "loaded")]
    assert sweep(DROP, folder, warehouse) == []
    assert _orders(warehouse) == 23 and [landing.id for landing in read_landings(warehouse, after_id=0, limit=10)] == [1, 2, 3]
