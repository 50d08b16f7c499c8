from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from support.warehouses import warehouse_snapshot
from nb_assets.errors import OutputValidationError, WarehouseError
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from nb_assets.warehouse.base import PrefetchRequest
from nb_assets.warehouse.files import validate_outputs
from nb_assets.warehouse.writer import Writer, writer_of


def test_prefetch_binds_parameters_and_writes_parquet(warehouse: Path, tmp_path: Path) -> None:
    dest = tmp_path / "orders.parquet"
    request = PrefetchRequest(
        "orders", "SELECT * FROM raw.orders WHERE order_date = CAST($ds AS DATE)", {"ds": "2026-11-02"}, 3, dest
    )
    rows = DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request])
    df = pq.read_table(dest).to_pandas()
    assert rows == {"orders": 4} and len(df) == 4
    assert set(df.order_date.astype(str)) == {"2026-11-02"}


def test_a_parameter_value_is_data_not_sql(warehouse: Path, tmp_path: Path) -> None:
    request = PrefetchRequest(
        "o", "SELECT * FROM raw.orders WHERE CAST(order_id AS VARCHAR) = $id", {"id": "1' OR '1'='1"}, 3, tmp_path / "o.parquet"
    )
    assert DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request]) == {"o": 0}


def test_prefetch_cannot_read_files(warehouse: Path, tmp_path: Path) -> None:
    request = PrefetchRequest("x", "SELECT * FROM read_csv('/etc/passwd')", {}, 4, tmp_path / "x.parquet")
    with pytest.raises(WarehouseError, match=r"nb.ipynb: cell 4: SQL input 'x' failed: .*disabled"):
        DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request])


def test_bad_query_names_notebook_and_cell(warehouse: Path, tmp_path: Path) -> None:
    request = PrefetchRequest("x", "SELECT * FROM raw.nope", {}, 7, tmp_path / "x.parquet")
    with pytest.raises(WarehouseError, match=r"nb.ipynb: cell 7: SQL input 'x' failed: .*nope"):
        DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request])


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("SELECT * FROM raw.order", 'Table with name order does not exist! Did you mean "orders"?'),
        ("SELECT amont FROM raw.orders", 'Referenced column "amont" not found in FROM clause! Candidate bindings: "amount"'),
    ],
    ids=["table", "column"],
)
def test_a_failing_query_keeps_the_engines_hint_on_one_line(warehouse: Path, tmp_path: Path, query: str, hint: str) -> None:
    request = PrefetchRequest("x", query, {}, 3, tmp_path / "x.parquet")
    with pytest.raises(WarehouseError) as info:
        DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request])
    message = str(info.value)
    assert hint in message and "\n" not in message and "LINE 1" not in message, message


def test_each_load_records_its_notebook_in_the_tables_comment(warehouse: Path, tmp_path: Path) -> None:
    """What lets an ad hoc run tell its own table from anyone else's (run_guard): the notebook's
    name and where it lives, relative to its project (the nearest definitions.py), else absolute."""
    project = tmp_path / "project"
    (project / "notebooks" / "ks").mkdir(parents=True)
    (project / "definitions.py").write_text("")
    wh = DuckDBWarehouse(warehouse)
    wh.load(str(project / "notebooks" / "ks" / "Daily Sales.ipynb"), {"mart.a": _write(tmp_path, "mart.a", pd.DataFrame({"x": [1]}))})
    assert wh.recorded_writers(["mart.a", "raw.orders", "mart.nope"]) == {
        "mart.a": Writer("daily_sales", "notebooks/ks/Daily Sales.ipynb"), "raw.orders": None,
    }
    with duckdb.connect(str(warehouse), read_only=True) as con:
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'a'").fetchone()[0]
    assert comment == "nb-assets: written by notebook daily_sales (notebooks/ks/Daily Sales.ipynb)"
    loose = tmp_path / "loose" / "other.ipynb"  # in no project: its absolute path
    wh.load(str(loose), {"mart.a": _write(tmp_path, "mart.a", pd.DataFrame({"x": [2]}))})
    assert wh.recorded_writers(["mart.a"]) == {"mart.a": Writer("other", str(loose.resolve()))}
    assert DuckDBWarehouse(tmp_path / "absent.duckdb").recorded_writers(["mart.a"]) == {}
    assert not (tmp_path / "absent.duckdb").exists()


def test_a_comment_naming_only_the_notebook_is_a_writer_of_unknown_location() -> None:
    """The form loads wrote before they recorded where a notebook lives."""
    assert writer_of("nb-assets: written by notebook ks_empty") == Writer("ks_empty", None)
    assert writer_of("nb-assets: written by notebook ks_empty (/srv/a (b)/ks_empty.ipynb)") == Writer("ks_empty", "/srv/a (b)/ks_empty.ipynb")
    assert writer_of("loaded by hand") is None and writer_of(None) is None


def _write(folder: Path, table: str, df: pd.DataFrame) -> Path:
    path = folder / f"{table}.parquet"
    df.to_parquet(path, index=False)
    return path


def test_load_replaces_tables_in_one_transaction(warehouse: Path, tmp_path: Path) -> None:
    wh = DuckDBWarehouse(warehouse)
    a = _write(tmp_path, "mart.a", pd.DataFrame({"x": [1, 2, 3]}))
    b = _write(tmp_path, "mart.b", pd.DataFrame({"y": ["p"]}))
    assert wh.load("nb", {"mart.a": a, "mart.b": b}) == {"mart.a": 3, "mart.b": 1}
    a2 = _write(tmp_path, "mart.a", pd.DataFrame({"x": [9]}))
    wh.load("nb", {"mart.a": a2})
    assert warehouse_snapshot(warehouse)["mart.a"] == [(9,)]
    assert wh.describe("mart.a").columns == (("x", "BIGINT"),)


def test_failed_load_leaves_every_table_unchanged(warehouse: Path, tmp_path: Path) -> None:
    wh = DuckDBWarehouse(warehouse)
    wh.load("nb", {"mart.a": _write(tmp_path, "mart.a", pd.DataFrame({"x": [1]}))})
    before = warehouse_snapshot(warehouse)
    good = _write(tmp_path, "mart.a", pd.DataFrame({"x": [5, 6]}))
    vanished = tmp_path / "mart.b.parquet"  # validated earlier, then gone: the load itself fails midway
    with pytest.raises(WarehouseError, match="nothing loaded"):
        wh.load("nb", {"mart.a": good, "mart.b": vanished})
    assert warehouse_snapshot(warehouse) == before


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    folder = tmp_path / "output"
    folder.mkdir()
    _write(folder, "mart.a", pd.DataFrame({"x": [1]}))
    return folder


def test_validate_accepts_exactly_the_declared_outputs(outputs: Path) -> None:
    assert validate_outputs("nb", outputs, ["mart.a"]) == {"mart.a": outputs / "mart.a.parquet"}


def test_undeclared_output_is_refused(outputs: Path) -> None:
    _write(outputs, "mart.sneaky", pd.DataFrame({"x": [1]}))
    with pytest.raises(OutputValidationError, match="'mart.sneaky.parquet' is not a declared output"):
        validate_outputs("nb", outputs, ["mart.a"])


def test_missing_declared_output_is_refused(outputs: Path) -> None:
    with pytest.raises(OutputValidationError, match="declared output mart.b was not written"):
        validate_outputs("nb", outputs, ["mart.a", "mart.b"])


def test_corrupt_parquet_is_refused(outputs: Path) -> None:
    (outputs / "mart.a.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(OutputValidationError, match="not a readable Parquet file"):
        validate_outputs("nb", outputs, ["mart.a"])


def test_symlink_in_outputs_is_refused(outputs: Path, tmp_path: Path) -> None:
    (outputs / "mart.a.parquet").unlink()
    os.symlink(tmp_path / "elsewhere", outputs / "mart.a.parquet")
    with pytest.raises(OutputValidationError, match="not a regular file"):
        validate_outputs("nb", outputs, ["mart.a"])


def test_a_flood_of_files_is_refused(outputs: Path) -> None:
    for i in range(1001):
        (outputs / f"junk{i}").touch()
    with pytest.raises(OutputValidationError, match="more than 1000 files"):
        validate_outputs("nb", outputs, ["mart.a"])


def test_prefetch_shows_the_catalog_to_check_before_any_query(warehouse: Path, tmp_path: Path) -> None:
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE VIEW raw.big AS SELECT * FROM raw.orders WHERE amount > 10")
    dest = tmp_path / "big.parquet"
    request = PrefetchRequest("big", "SELECT * FROM raw.big", {}, 3, dest)
    seen = []
    assert DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request], seen.append) == {"big": 13}
    (catalog,) = seen
    assert catalog.views == {"raw.big": "CREATE VIEW raw.big AS SELECT * FROM raw.orders WHERE (amount > 10);"}
    assert catalog.relations == {"raw.big", "raw.orders"}

    def refuse(catalog) -> None:
        raise RuntimeError("refused")

    dest.unlink()
    with pytest.raises(RuntimeError, match="refused"):
        DuckDBWarehouse(warehouse).prefetch("nb.ipynb", [request], refuse)
    assert not dest.exists()
