"""The landing log and loading files into source tables, against a real DuckDB file."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from support.paths import REPO
from support.warehouses import warehouse_snapshot
from nb_assets.errors import LandingError
from nb_assets.warehouse.duckdb.landing import APPEND_SQL, append_landing, ensure_log, is_conflict, read_landings, record_landing
from nb_assets.warehouse.landing import LOG_DDL
from nb_assets.warehouse.backends import land_file

HEADER = "order_id,customer_id,amount,order_date\n"


def _csv(path: Path, body: str, header: str = HEADER) -> Path:
    path.write_text(header + body)
    return path


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_csv_lands_with_its_landing_row_in_one_transaction(warehouse: Path, tmp_path: Path) -> None:
    # Columns in another order than the table's: matched by name.
    file = _csv(tmp_path / "new.csv", "2026-11-06,100,1,9.5\n2026-11-06,101,2,3.25\n", "order_date,order_id,customer_id,amount\n")
    result = land_file(warehouse, "raw.orders", file, partition="2026-11-06")
    assert not result.already_landed
    landing = result.landing
    assert (landing.id, landing.table, landing.rows, landing.partition) == (1, "raw.orders", 2, "2026-11-06")
    assert landing.source == f"file {file.resolve()}"
    assert _rows(warehouse, "SELECT count(*), sum(amount) FROM raw.orders WHERE order_id >= 100") == [(2, 12.75)]
    assert _rows(warehouse, 'SELECT id, "table", rows FROM nb_assets.landings') == [(1, "raw.orders", 2)]


def test_replace_mode_replaces_the_rows_and_keeps_the_table(warehouse: Path, tmp_path: Path) -> None:
    file = _csv(tmp_path / "all.csv", "1,1,5,2026-11-01\n")
    land_file(warehouse, "raw.orders", file, mode="replace")
    assert _rows(warehouse, "SELECT order_id, amount FROM raw.orders") == [(1, 5.0)]
    types = _rows(warehouse, "SELECT data_type FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position")
    assert types == [("BIGINT",), ("BIGINT",), ("DOUBLE",), ("DATE",)]  # the table's types, not the file's guesses


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("100,1,2.5,2026-11-06\n101,1,abc,2026-11-06\n", "line 3, column amount: 'abc' is not a DOUBLE"),
        ("100,1,2.5,2026-11-06\n101,1,2.5,2026-11-06,extra\n", "line 3: 5 fields where the header has 4"),
        ("100,1,2.5,2026-11-31\n", "line 2, column order_date: '2026-11-31' is not a DATE"),
    ],
)
def test_a_bad_csv_names_line_and_column_and_changes_nothing(warehouse: Path, tmp_path: Path, body: str, where: str) -> None:
    land_file(warehouse, "raw.orders", _csv(tmp_path / "ok.csv", "50,1,1,2026-11-02\n"))  # the log exists, one landing
    before = warehouse_snapshot(warehouse)
    with pytest.raises(LandingError) as err:
        land_file(warehouse, "raw.orders", _csv(tmp_path / "bad.csv", body))
    assert str(err.value) == f"{tmp_path / 'bad.csv'}: {where}; nothing loaded"
    assert warehouse_snapshot(warehouse) == before


def test_a_file_with_the_wrong_columns_is_refused_naming_them(warehouse: Path, tmp_path: Path) -> None:
    before = warehouse_snapshot(warehouse)
    file = _csv(tmp_path / "wrong.csv", "1,1,2026-11-02,x\n", "order_id,customer_id,order_date,note\n")
    with pytest.raises(LandingError, match=r"do not match raw.orders \(missing amount; unexpected note\); raw.orders has order_id, customer_id, amount, order_date"):
        land_file(warehouse, "raw.orders", file)
    assert warehouse_snapshot(warehouse) == before


def test_a_bad_parquet_value_names_its_row_and_column(warehouse: Path, tmp_path: Path) -> None:
    file = tmp_path / "bad.parquet"
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * FROM (VALUES (1, 1, '2.5', DATE '2026-11-02'), (2, 1, 'n/a', DATE '2026-11-02')) "
            f"AS t(order_id, customer_id, amount, order_date)) TO '{file}' (FORMAT PARQUET)"
        )
    before = warehouse_snapshot(warehouse)
    with pytest.raises(LandingError, match=r"bad.parquet: row 2, column amount: 'n/a' is not a DOUBLE; nothing loaded"):
        land_file(warehouse, "raw.orders", file)
    assert warehouse_snapshot(warehouse) == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("orders.json", "{}", "not a CSV (.csv, .csv.gz) or Parquet (.parquet, .pq) file"),
        ("orders.parquet", "not parquet", "not a readable Parquet file"),
        ("orders.csv", ",amount\n1,2\n", "line 1: the first line must name every column"),
    ],
)
def test_unreadable_files_are_refused(warehouse: Path, tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(LandingError, match=re.escape(message)):
        land_file(warehouse, "raw.orders", tmp_path / name)


def test_a_new_table_is_created_from_its_first_file(warehouse: Path, tmp_path: Path) -> None:
    file = _csv(tmp_path / "c.csv", "1,Ada\n2,Ben\n", "customer_id,name\n")
    assert land_file(warehouse, "raw.customers", file).landing.rows == 2
    assert _rows(warehouse, "SELECT customer_id, name FROM raw.customers ORDER BY 1") == [(1, "Ada"), (2, "Ben")]


def test_once_per_source_loads_a_source_once(warehouse: Path, tmp_path: Path) -> None:
    file = _csv(tmp_path / "new.csv", "100,1,2.5,2026-11-06\n")
    first = land_file(warehouse, "raw.orders", file, source="drop new.csv sha256:1", once_per_source=True)
    again = land_file(warehouse, "raw.orders", file, source="drop new.csv sha256:1", once_per_source=True)
    assert (first.already_landed, again.already_landed, again.landing) == (False, True, first.landing)
    assert _rows(warehouse, "SELECT count(*) FROM raw.orders WHERE order_id = 100") == [(1,)]


def test_recording_without_a_file_needs_the_table_to_exist(warehouse: Path) -> None:
    landing = record_landing(warehouse, "raw.orders", source="an external loader")
    assert (landing.id, landing.rows, landing.source) == (1, None, "an external loader")
    with pytest.raises(LandingError, match="raw.nope is not in the warehouse"):
        record_landing(warehouse, "raw.nope")
    assert [landing.id for landing in read_landings(warehouse, after_id=0, limit=10)] == [1]


def test_ids_follow_commit_order_without_gaps(warehouse: Path, tmp_path: Path) -> None:
    """Two loaders racing for an id: one commit fails (and is retried), none leaves a gap."""
    with duckdb.connect(str(warehouse)) as con:
        ensure_log(con)
        first, second = con.cursor(), con.cursor()
        first.execute("BEGIN")
        append_landing(first, "raw.orders", source="first")
        second.execute("BEGIN")
        append_landing(second, "raw.orders", source="second")
        second.execute("COMMIT")
        with pytest.raises(duckdb.Error) as err:
            first.execute("COMMIT")
        assert is_conflict(err.value)
    with pytest.raises(LandingError):  # a failed load consumes no id
        land_file(warehouse, "raw.orders", _csv(tmp_path / "bad.csv", "1,1,x,2026-11-01\n"))
    record_landing(warehouse, "raw.orders", source="third")
    assert [(landing.id, landing.source) for landing in read_landings(warehouse, after_id=0, limit=10)] == [(1, "second"), (2, "third")]


def test_the_readme_contract_sql_is_the_one_the_code_runs(warehouse: Path) -> None:
    readme = (REPO / "docs" / "triggers-and-landing.md").read_text()
    for statement in LOG_DDL:
        assert " ".join(statement.split()) in " ".join(readme.split())
    insert = " ".join(APPEND_SQL.split()).split(" SELECT")[0]  # INSERT INTO nb_assets.landings (id, "table", ...)
    assert insert in readme and "SELECT coalesce(max(id), 0) + 1" in readme


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (None, "does not exist, so there is no landing log to read"),
        ("CREATE SCHEMA x", "has no landing log (nb_assets.landings); it is created by the first `nb-assets land`"),
        ("CREATE SCHEMA nb_assets; CREATE TABLE nb_assets.landings (id BIGINT, tbl VARCHAR)",
         "lacks column(s) table, partition, rows, landed_at, source"),
    ],
)
def test_a_missing_or_corrupt_log_is_a_clear_error(tmp_path: Path, setup: str | None, message: str) -> None:
    path = tmp_path / "w.duckdb"
    if setup:
        with duckdb.connect(str(path)) as con:
            con.execute(setup)
    with pytest.raises(LandingError, match=re.escape(message)):
        read_landings(path, after_id=0, limit=10)


def test_a_file_that_is_not_a_warehouse_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    path.write_text("not a database")
    with pytest.raises(Exception, match="cannot open warehouse"):
        read_landings(path, after_id=0, limit=10)
