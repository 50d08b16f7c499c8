"""Declared sources on the Postgres warehouse, and the fetch under the run's prefetch deadline.

Real parts: the suite's Postgres cluster (a fresh database per test), real kernels through
papermill in LocalSandbox, the tests' own HTTP server on loopback, files in tmp folders. A
`source('x')` in a SQL input reads the host's fetched copy as a temporary table of the
prefetch's own transaction (warehouse/postgres/sources.py): the notebook's SQL still runs as
the read-only login, and nothing is left in the warehouse afterwards.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nb_assets import Source
from nb_assets.analysis.parser import parse_notebook
from nb_assets.errors import DeclarationError, SourceFetchError, WarehouseError
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.sandbox.base import SandboxLimits
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.warehouse.base import PrefetchRequest
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.source_servers import data_server
from support.warehouses import pg_snapshot, warehouse_snapshot

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server():
    with data_server() as running:
        yield running


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that takes connections and never answers: the kernel completes the handshake
    into the backlog, nothing ever reads the request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def _regions(tmp_path: Path) -> None:
    drop = tmp_path / "drops" / "2026-11-01"
    drop.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"order_id": [1, 2, 3], "region": ["north", "south", "east"]}), drop / "regions.parquet")


def _sources(server, rates_path: str = "/v1/rates?date=$ds") -> list[Source]:
    return [
        Source("partner_rates", url=server.url(rates_path), format="json", zones=["public"], allow_private=True),
        Source("regions", path="drops/$ds/", zones=["public"]),
    ]


def _fx_notebook(tmp_path: Path, regions: str = "regions") -> Path:
    """An HTTP source in a `%%source` cell and in SQL, and a folder source joined with a warehouse table in SQL."""
    return write_notebook(
        tmp_path / "fx_pg.ipynb",
        md("# Orders in dollars, on Postgres"),
        code(RUNTIME),
        params("ds = '2026-11-01'"),
        code("%%source rates partner_rates"),
        code(f"%%sql orders\nSELECT o.order_id, o.amount, r.region FROM raw.orders o "
             f"JOIN source('{regions}') r USING (order_id) ORDER BY o.order_id"),
        code("%%sql usd\nSELECT rate FROM source('partner_rates') WHERE currency = 'USD'"),
        code("assert float(usd.rate.iloc[0]) == float(rates.loc[rates.currency == 'USD', 'rate'].iloc[0])\n"
             "orders['amount_usd'] = orders.amount * float(usd.rate.iloc[0])\noutput('mart.orders_usd', orders)"),
    )


def _leftovers(dsn: str) -> list[str]:
    """Relations of the fetched copies anywhere in the database (a temporary one included)."""
    import psycopg

    with psycopg.connect(dsn) as con:
        rows = con.execute("SELECT relname FROM pg_class WHERE relname LIKE 'nb\\_assets\\_source\\_%'").fetchall()
    return [r[0] for r in rows]


def test_a_notebook_reads_a_file_and_an_http_source_on_postgres(server, pg_warehouse: str, tmp_path: Path) -> None:
    _regions(tmp_path)
    before = pg_snapshot(pg_warehouse)
    spec = parse_notebook(_fx_notebook(tmp_path), dialect="postgres")
    run = run_pipeline(spec, warehouse=PostgresWarehouse(pg_warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run",
                       sources=_sources(server), base_dir=tmp_path)
    assert run.status == "success", run.error
    after = pg_snapshot(pg_warehouse)
    rows = after.pop("mart.orders_usd")
    assert sorted((r[0], r[2], round(r[3], 2)) for r in rows) == [(1, "north", 1.62), (2, "south", 3.24), (3, "east", 4.86)]
    assert after == before  # only the output: the fetched copies were temporary tables of the prefetch
    assert _leftovers(pg_warehouse) == []
    assert run.sources["partner_rates"]["rows"] == 3 and run.sources["regions"]["rows"] == 3
    assert server.requests[-1]["path"] == "/v1/rates?date=2026-11-01"  # fetched once, for both cells


def test_the_copy_is_read_as_the_read_only_login_which_cannot_switch_back(pg_warehouse: str, tmp_path: Path) -> None:
    copy = tmp_path / "source__regions.parquet"
    pq.write_table(pa.table({"order_id": [1, 2, 3], "region": ["north", "south", "east"]}), copy)
    relation = "nb_assets_source_regions"
    warehouse = PostgresWarehouse(pg_warehouse)
    before = pg_snapshot(pg_warehouse)
    who = PrefetchRequest("who", f"SELECT current_user AS who, current_setting('transaction_read_only') AS ro, "
                                 f"count(*) AS n FROM {relation}", {}, 3, tmp_path / "who.parquet", {relation: copy})
    assert warehouse.prefetch("probe.ipynb", [who]) == {"who": 1}
    assert pq.read_table(who.dest).to_pylist() == [{"who": "nb_assets_reader", "ro": "on", "n": 3}]
    # Past the static check, a query could try to make the transaction writable again: Postgres refuses.
    undo = PrefetchRequest("undo", f"SELECT set_config('transaction_read_only', 'off', true) AS x FROM {relation}",
                           {}, 4, tmp_path / "undo.parquet", {relation: copy})
    with pytest.raises(WarehouseError, match=r"probe.ipynb: cell 4: SQL input 'undo' failed: .*read-write"):
        warehouse.prefetch("probe.ipynb", [undo])
    write = PrefetchRequest("w", f"SELECT 1 AS x FROM {relation}; INSERT INTO raw.orders (order_id) VALUES (99)",
                            {}, 5, tmp_path / "w.parquet", {relation: copy})
    with pytest.raises(WarehouseError, match=r"cell 5"):
        warehouse.prefetch("probe.ipynb", [write])
    assert pg_snapshot(pg_warehouse) == before and _leftovers(pg_warehouse) == []


def test_an_undeclared_source_is_refused_naming_the_notebook_the_cell_and_the_source(
    server, pg_warehouse: str, tmp_path: Path,
) -> None:
    _regions(tmp_path)
    before = pg_snapshot(pg_warehouse)
    spec = parse_notebook(_fx_notebook(tmp_path, regions="sales_regions"), dialect="postgres")
    with pytest.raises(DeclarationError) as refused:
        run_pipeline(spec, warehouse=PostgresWarehouse(pg_warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run",
                     sources=_sources(server), base_dir=tmp_path)
    message = str(refused.value)
    assert "fx_pg.ipynb: cell 5: reads source 'sales_regions', which the project does not declare" in message, message
    assert pg_snapshot(pg_warehouse) == before and _leftovers(pg_warehouse) == []


def test_a_declared_source_with_nothing_there_fails_naming_the_notebook_the_cell_and_the_source(
    server, pg_warehouse: str, tmp_path: Path,
) -> None:
    before = pg_snapshot(pg_warehouse)  # no drops/ folder: the declared location holds nothing
    spec = parse_notebook(_fx_notebook(tmp_path), dialect="postgres")
    run = run_pipeline(spec, warehouse=PostgresWarehouse(pg_warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run",
                       sources=_sources(server), base_dir=tmp_path)
    assert run.status == "failed" and isinstance(run.error, SourceFetchError)
    message = str(run.error)
    assert message.startswith(f"{spec.path}: stopped before the sandbox, nothing changed: source 'regions' at "
                              f"{tmp_path / 'drops' / '2026-11-01'}: nothing there"), message
    assert message.endswith("(cell 5 reads it)") and run.error.cell == 5
    assert pg_snapshot(pg_warehouse) == before and _leftovers(pg_warehouse) == []
    assert not run.executed_notebook.exists()  # the sandbox never started


@pytest.mark.parametrize("backend", ["duckdb-no-sql", "postgres-sql"])
def test_a_fetch_that_hangs_is_cut_at_the_prefetch_deadline(
    backend: str, silent_port: int, warehouse: Path, pg_warehouse: str, tmp_path: Path,
) -> None:
    """A source server that never answers: without SQL inputs (the fetch runs alone) on DuckDB, and inside
    the Postgres prefetch's transaction; either way the stage's deadline cuts it, not the fetch's own 120 s."""
    sql = [code("%%sql orders\nSELECT order_id FROM raw.orders")] if backend == "postgres-sql" else []
    path = write_notebook(tmp_path / "hangs.ipynb", code(RUNTIME), params("ds = '2026-11-01'"),
                          code("%%source rates partner_rates"), *sql, code("output('mart.rates', rates)"))
    source = Source("partner_rates", url=f"http://127.0.0.1:{silent_port}/v1/rates?date=$ds", format="json",
                    allow_private=True)
    if backend == "postgres-sql":
        store, snapshot = PostgresWarehouse(pg_warehouse), lambda: pg_snapshot(pg_warehouse)
    else:
        store, snapshot = DuckDBWarehouse(warehouse), lambda: warehouse_snapshot(warehouse)
    before = snapshot()
    run = run_pipeline(parse_notebook(path, dialect="postgres" if backend == "postgres-sql" else "duckdb"),
                       warehouse=store, sandbox=LocalSandbox(), run_dir=tmp_path / "run", sources=[source],
                       base_dir=tmp_path, limits=SandboxLimits(prefetch_timeout=2))
    assert run.status == "failed" and run.error is not None and run.error.kind == "stage-timeout", run.error
    message = str(run.error)
    assert message.startswith(f"{path}: fetching source 'partner_rates' at http://127.0.0.1:{silent_port}/v1/rates?date=2026-11-01: "
                              "the prefetch did not finish within the deadline"), message
    assert "(prefetch_timeout 2 s)" in message and message.endswith("nothing was fetched")
    assert run.error.cell == 3
    assert snapshot() == before
    assert not run.executed_notebook.exists()


def test_a_reader_granted_as_the_deployments_reads_a_source_and_without_temporary_is_told_the_grant(
    pg_warehouse: str, tmp_path: Path,
) -> None:
    """The deployment's reader (roles.grant_reader, on a database closed to PUBLIC) may make the temporary
    copy; a reader without TEMPORARY fails naming the cell and the GRANT to run."""
    import psycopg

    from nb_assets.locations import with_user
    from nb_assets.warehouse.postgres.roles import grant_reader

    reader = f"src_reader_{tmp_path.name[-12:].lower().replace('-', '_')}"
    with psycopg.connect(pg_warehouse, autocommit=True) as con:
        database, owner = con.execute("SELECT current_database(), current_user").fetchone()
        con.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
        con.execute(f'DROP ROLE IF EXISTS "{reader}"')
        con.execute(f'CREATE ROLE "{reader}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
        con.execute(f'ALTER ROLE "{reader}" SET default_transaction_read_only = on')
        con.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{reader}"')
        grant_reader(con.cursor(), owner, reader, ["raw"])
    copy = tmp_path / "source__regions.parquet"
    pq.write_table(pa.table({"order_id": [1, 2], "region": ["north", "south"]}), copy)
    relation = "nb_assets_source_regions"
    warehouse = PostgresWarehouse(pg_warehouse, read_dsn=with_user(pg_warehouse, reader))
    join = PrefetchRequest("j", f"SELECT current_user AS who, count(*) AS n FROM raw.orders o JOIN {relation} r USING (order_id)",
                           {}, 2, tmp_path / "j.parquet", {relation: copy})
    assert warehouse.prefetch("granted.ipynb", [join]) == {"j": 1}
    assert pq.read_table(join.dest).to_pylist() == [{"who": reader, "n": 2}]
    with psycopg.connect(pg_warehouse, autocommit=True) as con:
        con.execute(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM "{reader}"')
    with pytest.raises(WarehouseError) as refused:
        warehouse.prefetch("granted.ipynb", [join])
    message = str(refused.value)
    assert message.startswith("granted.ipynb: cell 2: SQL input 'j': source('regions'): cannot make the fetched copy"), message
    assert message.endswith(f'GRANT TEMPORARY ON DATABASE "{database}" TO "{reader}"'), message
