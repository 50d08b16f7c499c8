"""PostgresWarehouse against a real PostgreSQL server (the session's throwaway cluster)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from support.warehouses import parquet_file, pg_execute, pg_snapshot
from nb_assets.errors import OutputValidationError, WarehouseError
from nb_assets.locations import redact
from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse
from nb_assets.warehouse.writer import Writer
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from nb_assets.warehouse.backends import open_warehouse
from nb_assets.warehouse.base import PartitionLoad, PrefetchRequest


def test_open_warehouse_chooses_by_location(tmp_path: Path) -> None:
    assert isinstance(open_warehouse("postgresql://u:secret@example.invalid/db"), PostgresWarehouse)
    assert isinstance(open_warehouse("postgres://u@example.invalid/db"), PostgresWarehouse)
    assert isinstance(open_warehouse(tmp_path / "w.duckdb"), DuckDBWarehouse)
    assert redact("postgresql://u:secret@example.invalid/db") == "postgresql://u:***@example.invalid/db"


def test_prefetch_binds_typed_parameters_and_writes_parquet(pg_warehouse: str, tmp_path: Path) -> None:
    dest = tmp_path / "orders.parquet"
    # $ds is compared with a date column without a cast, and used twice: Postgres types it, the value follows.
    query = "SELECT * FROM raw.orders WHERE order_date = $ds AND order_date <= CAST($ds AS DATE) AND customer_id < $n"
    request = PrefetchRequest("orders", query, {"ds": "2026-11-02", "n": 5}, 3, dest)
    rows = PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request])
    df = pq.read_table(dest).to_pandas()
    assert rows == {"orders": 4} and len(df) == 4
    assert set(df.order_date.astype(str)) == {"2026-11-02"}


def test_a_parameter_value_is_data_not_sql(pg_warehouse: str, tmp_path: Path) -> None:
    query = "SELECT * FROM raw.orders WHERE CAST(order_id AS TEXT) = $id"
    request = PrefetchRequest("o", query, {"id": "1' OR '1'='1"}, 3, tmp_path / "o.parquet")
    assert PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request]) == {"o": 0}


def test_bad_query_names_notebook_and_cell(pg_warehouse: str, tmp_path: Path) -> None:
    request = PrefetchRequest("x", "SELECT * FROM raw.nope", {}, 7, tmp_path / "x.parquet")
    with pytest.raises(WarehouseError, match=r"nb.ipynb: cell 7: SQL input 'x' failed: .*raw.nope"):
        PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request])


def test_a_failing_query_keeps_the_servers_hint_on_one_line(pg_warehouse: str, tmp_path: Path) -> None:
    request = PrefetchRequest("x", "SELECT amont FROM raw.orders", {}, 7, tmp_path / "x.parquet")
    with pytest.raises(WarehouseError) as info:
        PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request])
    message = str(info.value)
    assert 'column "amont" does not exist HINT: Perhaps you meant to reference the column "orders.amount".' in message, message
    assert "\n" not in message and "LINE 1" not in message and "Query was" not in message


def test_each_load_records_its_notebook_in_the_tables_comment(pg_warehouse: str, tmp_path: Path) -> None:
    """The notebook's name and where it lives: relative to its project, else absolute (writer_identity)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "definitions.py").write_text("")
    wh = PostgresWarehouse(pg_warehouse)
    wh.load(str(project / "notebooks" / "Daily Sales.ipynb"), {"mart.a": parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [1]}))})
    assert wh.recorded_writers(["mart.a", "raw.orders", "mart.nope"]) == {
        "mart.a": Writer("daily_sales", "notebooks/Daily Sales.ipynb"), "raw.orders": None,
    }
    loose = tmp_path / "other.ipynb"
    wh.load(str(loose), {"mart.a": parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [2]}))})
    assert wh.recorded_writers(["mart.a"]) == {"mart.a": Writer("other", str(loose.resolve()))}


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("WITH d AS (DELETE FROM raw.orders RETURNING *) SELECT * FROM d", "read-only transaction"),
        ("SELECT * FROM raw.orders FOR UPDATE", "read-only transaction"),
        ("SELECT pg_read_file('/etc/hostname')", "permission denied for function pg_read_file"),
        ("SELECT * FROM pg_ls_dir('.')", "permission denied for function pg_ls_dir"),
        ("SELECT lo_import('/etc/hostname')", "read-only transaction|permission denied"),
        ("SELECT set_config('role', 'postgres', false)", "permission denied to set role"),
        ("SELECT set_config('transaction_read_only', 'off', true), (SELECT count(*) FROM raw.orders)",
         "read-write mode must be set before any query|read-only"),
    ],
)
def test_a_write_past_the_static_check_is_refused_by_the_role(
    pg_warehouse: str, tmp_path: Path, query: str, refusal: str
) -> None:
    """The second wall: what the static check would refuse, the reader's role and transaction refuse too."""
    before = pg_snapshot(pg_warehouse)
    request = PrefetchRequest("x", query, {}, 5, tmp_path / "x.parquet")
    with pytest.raises(WarehouseError, match=rf"nb.ipynb: cell 5: SQL input 'x' failed: .*({refusal})"):
        PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request])
    assert pg_snapshot(pg_warehouse) == before


def test_a_read_role_that_can_write_is_refused(pg_warehouse: str, tmp_path: Path) -> None:
    request = PrefetchRequest("o", "SELECT * FROM raw.orders", {}, 3, tmp_path / "o.parquet")
    with pytest.raises(WarehouseError, match="prefetch refused: the read role .* can do more than SELECT"):
        PostgresWarehouse(pg_warehouse, read_dsn=pg_warehouse).prefetch("nb.ipynb", [request])
    assert not (tmp_path / "o.parquet").exists()


def test_a_query_past_the_statement_timeout_is_cancelled(pg_warehouse: str, tmp_path: Path) -> None:
    request = PrefetchRequest("slow", "SELECT pg_sleep(30)", {}, 4, tmp_path / "s.parquet")
    with pytest.raises(WarehouseError, match="cell 4: SQL input 'slow' failed: .*statement timeout"):
        PostgresWarehouse(pg_warehouse, statement_timeout_s=0.3).prefetch("nb.ipynb", [request])


def test_prefetch_shows_the_catalog_to_check_before_any_query(pg_warehouse: str, tmp_path: Path) -> None:
    pg_execute(
        pg_warehouse,
        "CREATE VIEW raw.big AS SELECT * FROM raw.orders WHERE amount > 10",
        "CREATE MATERIALIZED VIEW raw.totals AS SELECT customer_id, sum(amount) AS s FROM raw.big GROUP BY 1",
        "CREATE FUNCTION raw.orders_of(c bigint) RETURNS SETOF raw.orders LANGUAGE sql STABLE "
        "AS 'SELECT * FROM raw.orders WHERE customer_id = c'",
        "CREATE FUNCTION raw.n_orders() RETURNS bigint LANGUAGE sql STABLE RETURN (SELECT count(*) FROM raw.orders)",
    )
    dest = tmp_path / "big.parquet"
    request = PrefetchRequest("big", "SELECT * FROM raw.big", {}, 3, dest)
    seen = []
    assert PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request], seen.append) == {"big": 13}
    (catalog,) = seen
    assert catalog.relations == {"raw.big", "raw.orders", "raw.totals"}
    assert set(catalog.views) == {"raw.big", "raw.totals"}
    assert "FROM raw.orders" in catalog.views["raw.big"] and "FROM raw.big" in catalog.views["raw.totals"]
    (set_returning,) = catalog.macros["raw.orders_of"]
    assert set_returning.table and "FROM raw.orders" in set_returning.body
    (scalar,) = catalog.macros["raw.n_orders"]
    assert not scalar.table and "FROM raw.orders" in scalar.body

    def refuse(catalog) -> None:
        raise RuntimeError("refused")

    dest.unlink()
    with pytest.raises(RuntimeError, match="refused"):
        PostgresWarehouse(pg_warehouse).prefetch("nb.ipynb", [request], refuse)
    assert not dest.exists()


def test_load_replaces_tables_in_one_transaction(pg_warehouse: str, tmp_path: Path) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    a = parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [1, 2, 3], "c": pd.Categorical(["p", "q", "p"])}))
    b = parquet_file(tmp_path, "mart.b", pd.DataFrame({"y": ["p"], "d": [pd.Timestamp("2026-11-02").date()]}))
    assert wh.load("nb", {"mart.a": a, "mart.b": b}) == {"mart.a": 3, "mart.b": 1}
    a2 = parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [9]}))
    wh.load("nb", {"mart.a": a2})
    snapshot = pg_snapshot(pg_warehouse)
    assert snapshot["mart.a"] == [(9,)] and len(snapshot["mart.b"]) == 1
    assert "mart.a__nb_stage" not in snapshot
    assert wh.describe("mart.a").columns == (("x", "BIGINT"),)
    assert wh.describe("mart.b").columns == (("y", "TEXT"), ("d", "DATE"))
    assert wh.describe("mart.nope") is None


def test_failed_load_leaves_every_table_unchanged(pg_warehouse: str, tmp_path: Path) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("nb", {"mart.a": parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [1]}))})
    before = pg_snapshot(pg_warehouse)
    good = parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [5, 6]}))
    vanished = tmp_path / "mart.b.parquet"  # validated earlier, then gone: the load itself fails midway
    with pytest.raises(WarehouseError, match="nothing loaded"):
        wh.load("nb", {"mart.a": good, "mart.b": vanished})
    assert pg_snapshot(pg_warehouse) == before


def test_a_swap_the_server_refuses_rolls_back_every_table(pg_warehouse: str, tmp_path: Path) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    wh.load("nb", {"mart.a": parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [1]})),
                   "mart.b": parquet_file(tmp_path, "mart.b", pd.DataFrame({"y": [1]}))})
    pg_execute(pg_warehouse, "CREATE VIEW mart.b_view AS SELECT * FROM mart.b")
    before = pg_snapshot(pg_warehouse)
    outputs = {"mart.a": parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [7, 8]})),
               "mart.b": parquet_file(tmp_path, "mart.b", pd.DataFrame({"y": ["two"]}))}  # a new type: swapped, not replaced in place
    with pytest.raises(WarehouseError, match=r"nb: loading outputs failed, nothing loaded: .*depend"):
        wh.load("nb", outputs)
    assert pg_snapshot(pg_warehouse) == before


def test_a_trial_warehouse_loads_in_full_and_keeps_nothing(pg_warehouse: str, tmp_path: Path) -> None:
    trial = PostgresWarehouse(pg_warehouse).scratch_copy(tmp_path / "unused")
    before = pg_snapshot(pg_warehouse)
    assert trial.load("nb", {"mart.a": parquet_file(tmp_path, "mart.a", pd.DataFrame({"x": [1, 2]}))}) == {"mart.a": 2}
    assert pg_snapshot(pg_warehouse) == before


def test_load_partition_replaces_only_its_day(pg_warehouse: str, tmp_path: Path) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    part = PartitionLoad("ds", "2026-11-02")
    day = lambda d, v: pd.DataFrame({"ds": [pd.Timestamp(d).date()] * len(v), "v": v})  # noqa: E731
    assert wh.load_partition("nb", {"mart.p": parquet_file(tmp_path, "mart.p", day("2026-11-02", [1, 2]))}, part) == {"mart.p": 2}
    wh.load_partition("nb", {"mart.p": parquet_file(tmp_path, "mart.p", day("2026-11-03", [3]))}, PartitionLoad("ds", "2026-11-03"))
    wh.load_partition("nb", {"mart.p": parquet_file(tmp_path, "mart.p", day("2026-11-02", [9]))}, part)
    assert sorted(v for _, v in pg_snapshot(pg_warehouse)["mart.p"]) == [3, 9]
    before = pg_snapshot(pg_warehouse)
    with pytest.raises(OutputValidationError, match=r"partition 2026-11-02: .* not 2026-11-02"):
        wh.load_partition("nb", {"mart.p": parquet_file(tmp_path, "mart.p", day("2026-11-04", [5]))}, part)
    assert pg_snapshot(pg_warehouse) == before


def test_the_reader_the_warehouse_creates_can_only_select(pg_warehouse: str) -> None:
    wh = PostgresWarehouse(pg_warehouse)
    wh.create_reader()
    wh.create_reader()  # idempotent
    with psycopg.connect(pg_warehouse) as con:
        row = con.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, pg_has_role(oid, 'pg_read_all_data', 'MEMBER'), "
            "pg_has_role(oid, 'pg_write_all_data', 'MEMBER'), rolconfig FROM pg_roles WHERE rolname = 'nb_assets_reader'"
        ).fetchone()
    assert row[:5] == (False, False, False, True, False)
    assert "default_transaction_read_only=on" in row[5]
    assert wh.read_dsn == pg_warehouse.replace("postgres@", "nb_assets_reader@")


def test_notebook_definitions_prefetch_as_the_read_login_they_are_given(pg_warehouse: str, tmp_path: Path) -> None:
    """read_dsn reaches prefetch: the owner (a superuser) is refused as a reader, a SELECT-only login works."""
    import dagster as dg

    from nb_assets import NotebookAsset, notebook_definitions
    from nb_assets.locations import with_user
    from support.notebook_factory import RUNTIME, code, write_notebook

    notebook = write_notebook(tmp_path / "copy.ipynb", code(RUNTIME),
                              code("%%sql orders\nSELECT order_id FROM raw.orders"), code('output("mart.copy", orders)'))
    analyst = f"analyst_{pg_warehouse.rsplit('/', 1)[-1]}"  # roles are the cluster's: one per test database
    with psycopg.connect(pg_warehouse, autocommit=True) as con:
        con.execute(f'CREATE ROLE "{analyst}" LOGIN IN ROLE pg_read_all_data')
        con.execute("CREATE SCHEMA mart")

    def run(read_dsn: str) -> dg.ExecuteInProcessResult:
        defs = notebook_definitions([NotebookAsset(str(notebook))], warehouse=pg_warehouse, read_dsn=read_dsn,
                                    sandbox="local", base_dir=tmp_path)
        with dg.DagsterInstance.ephemeral() as instance:
            return defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, raise_on_error=False)

    before = pg_snapshot(pg_warehouse)
    refused = run(pg_warehouse)
    [failure] = refused.get_step_failure_events()
    assert "can do more than SELECT" in str(failure.step_failure_data.error), failure.step_failure_data.error
    assert pg_snapshot(pg_warehouse) == before
    assert run(with_user(pg_warehouse, analyst)).success
    with psycopg.connect(pg_warehouse) as con:
        assert con.execute("SELECT count(*) FROM mart.copy").fetchone() == (20,)


def test_a_read_login_for_a_duckdb_warehouse_is_refused_at_load(tmp_path: Path) -> None:
    from nb_assets import notebook_definitions
    from nb_assets.errors import DeclarationError

    with pytest.raises(DeclarationError, match="read_dsn= names a Postgres login, but the warehouse .* is a DuckDB file"):
        notebook_definitions([], warehouse=str(tmp_path / "w.duckdb"), read_dsn="postgresql://analyst@db.example.invalid/w")
    with pytest.raises(DeclarationError, match="read_dsn= takes a postgresql:// URL") as refused:
        notebook_definitions([], warehouse="postgresql://owner@db.example.invalid/w", read_dsn="analyst:secret@host")
    assert "secret" not in str(refused.value)


def test_create_databases_creates_only_the_missing_ones(pg_cluster: Any) -> None:
    """What the deploy stack runs on its fresh cluster, and again on every later `up`."""
    from nb_assets.warehouse.backends import create_databases

    names = (f"dagster{os.getpid()}", f"warehouse{os.getpid()}")
    create_databases(pg_cluster.dsn(), names[:1])
    create_databases(pg_cluster.dsn(), names)  # the first exists: left as it is
    with psycopg.connect(pg_cluster.dsn()) as con:
        found = con.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s) ORDER BY 1", (list(names),)).fetchall()
    assert found == [(n,) for n in sorted(names)]
