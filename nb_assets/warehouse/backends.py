"""The one chooser: the only place a configured warehouse location becomes a backend.

A `postgresql://` or `postgres://` URL is served by the Postgres backend
(warehouse/postgres/), anything else is the path of a DuckDB file
(warehouse/duckdb/). Everything else in
nb_assets that takes a location calls these functions, so no other module reads
a URL's scheme, and the two sides never import each other.

Each backend is imported inside the function that uses it: importing this
module loads no driver, and a DuckDB project never loads the Postgres one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.errors import WarehouseError
from nb_assets.locations import check_read_dsn, is_postgres_url

if TYPE_CHECKING:
    import pyarrow as pa

    from nb_assets.sql.see_through import Catalog
    from nb_assets.warehouse.landing import Landing, LandResult
    from nb_assets.warehouse.base import LoadMode, Warehouse

# read_columns (`nb-assets lineage TABLE`): a DuckDB file held by a writer is waited
# for a few seconds, then reported busy rather than waited on like a run would.
LOCK_WAIT_S = 5.0


# A Postgres warehouse's prefetch login when none is declared: where a deployment (nb-assets deploy up)
# puts its reader's URL, password included, in the environment of the processes that prefetch.
READ_DSN_ENV = "NB_ASSETS_READ_DSN"


def open_warehouse(location: str | Path, read_dsn: str | None = None) -> Warehouse:
    """The warehouse a configured location names: a `postgresql://` or `postgres://`
    URL is a PostgresWarehouse (prefetching as `read_dsn`'s login when given, else as
    $NB_ASSETS_READ_DSN's when set), anything else the path of a DuckDB file."""
    check_read_dsn(location, read_dsn)
    if is_postgres_url(location):
        from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse

        read_dsn = read_dsn or os.environ.get(READ_DSN_ENV) or None

        return PostgresWarehouse(str(location), read_dsn)
    from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse

    return DuckDBWarehouse(location)


def open_catalog(location: str | Path) -> Catalog | str:
    """The catalog of the warehouse at `location`, or in one line why it cannot be read now.

    One attempt, no waiting on a lock: loading definitions must not stall.
    A postgresql:// URL is read through PostgresWarehouse, as its read role; a
    DuckDB file loads DuckDB only once there is a file to open."""
    if is_postgres_url(location):
        try:
            return open_warehouse(location).read_catalog()
        except WarehouseError as exc:
            return str(exc)
    from nb_assets.warehouse.duckdb.catalog import open_duckdb_catalog

    return open_duckdb_catalog(location)


def read_landings(warehouse: str | Path, *, after_id: int, limit: int) -> list[Landing]:
    """Landings with id > after_id, oldest first, at most `limit`.

    A missing warehouse, a missing log or one without the expected columns is a
    LandingError saying how to fix it; a DuckDB file held by a writer for longer
    than landing.READ_LOCK_WAIT_S is a WarehouseBusyError (the caller tries again later)."""
    if is_postgres_url(warehouse):
        from nb_assets.warehouse.postgres import landing as pg_landing

        return pg_landing.read_landings(str(warehouse), after_id=after_id, limit=limit)
    from nb_assets.warehouse.duckdb import landing

    return landing.read_landings(warehouse, after_id=after_id, limit=limit)


def latest_landings(warehouse: str | Path, *, up_to_id: int) -> list[Landing]:
    """The newest landing of each (table, partition) with id <= up_to_id, oldest first."""
    if is_postgres_url(warehouse):
        from nb_assets.warehouse.postgres import landing as pg_landing

        return pg_landing.latest_landings(str(warehouse), up_to_id=up_to_id)
    from nb_assets.warehouse.duckdb import landing

    return landing.latest_landings(warehouse, up_to_id=up_to_id)


def last_landing_id(warehouse: str | Path) -> int:
    """The newest id in the log, 0 when empty (to notice a log that was recreated)."""
    if is_postgres_url(warehouse):
        from nb_assets.warehouse.postgres import landing as pg_landing

        return pg_landing.last_landing_id(str(warehouse))
    from nb_assets.warehouse.duckdb import landing

    return landing.last_landing_id(warehouse)


def record_landing(
    warehouse: str | Path,
    table: str,
    *,
    rows: int | None = None,
    partition: str | None = None,
    source: str | None = None,
) -> Landing:
    """Record that `table` landed (its data was loaded by another tool); the table must exist."""
    if is_postgres_url(warehouse):
        from nb_assets.warehouse.postgres import landing as pg_landing

        return pg_landing.record_landing(str(warehouse), table, rows=rows, partition=partition, source=source)
    from nb_assets.warehouse.duckdb import landing

    return landing.record_landing(warehouse, table, rows=rows, partition=partition, source=source)


def land_file(
    warehouse: str | Path,
    table: str,
    file: Path,
    *,
    mode: LoadMode = "append",
    partition: str | None = None,
    source: str | None = None,
    once_per_source: bool = False,
) -> LandResult:
    """Load `file` into `table` (append, or replace all rows) and append its landing row, in one transaction.

    once_per_source: if a landing of `table` with exactly this `source` exists,
    load nothing and return it (how a file drop loads each file once). The file is
    opened (or refused) the same way whichever backend loads it."""
    from nb_assets.warehouse.files import FileReader

    reader = FileReader.open(file)
    source = source or f"file {file.resolve()}"
    if is_postgres_url(warehouse):
        from nb_assets.warehouse.postgres import landing as pg_landing

        return pg_landing.land_file(str(warehouse), table, reader, mode=mode, partition=partition, source=source,
                                    once_per_source=once_per_source)
    from nb_assets.warehouse.duckdb import landing as duckdb_landing

    return duckdb_landing.land_file(warehouse, table, reader, mode=mode, partition=partition, source=source,
                                    once_per_source=once_per_source)


def read_columns(warehouse: str | Path, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of `table` (a table or a view), in order; empty when there is
    no such relation. A warehouse that cannot be opened raises WarehouseError (busy: WarehouseBusyError)."""
    if is_postgres_url(warehouse):
        from nb_assets.warehouse.postgres.landing import read_table_types

        return list(read_table_types(str(warehouse), table).items())
    if not Path(warehouse).is_file():
        raise WarehouseError(f"warehouse {warehouse} does not exist")
    from nb_assets.warehouse.duckdb.landing import table_columns
    from nb_assets.warehouse.duckdb.warehouse import connect

    with connect(warehouse, read_only=True, lock_wait_s=LOCK_WAIT_S) as con:
        return list(table_columns(con, table).items())


def query_interactive(location: str | Path, name: str, query: str, namespace: Mapping[str, Any], *,
                      lock_wait_s: float) -> pa.Table:
    """A person's `%%sql` query, read-only, its `$names` bound from `namespace`; its rows as Arrow.
    On Postgres it runs exactly as a scheduled prefetch would (the read role, a READ ONLY
    transaction); a DuckDB file held by a writer is waited for up to `lock_wait_s`."""
    if is_postgres_url(location):
        from nb_assets.warehouse.postgres.warehouse import read_query as read_postgres

        return read_postgres(str(location), name, query, namespace)
    from nb_assets.warehouse.duckdb.warehouse import read_query as read_duckdb

    return read_duckdb(location, query, namespace, lock_wait_s=lock_wait_s)


def is_query_mistake(exc: BaseException) -> bool:
    """The engine's verdict on a query itself (an unknown table or column, bad syntax): the cell's
    mistake, said in one line, not a bug's traceback. DuckDB's only; Postgres's reach the reader as
    the project's WarehouseError already."""
    import duckdb

    return isinstance(exc, (duckdb.CatalogException, duckdb.BinderException, duckdb.ParserException))


def create_databases(url: str, names: Iterable[str]) -> None:
    """Create each database of `names` that the Postgres server at `url` lacks (the deploy stack's)."""
    from nb_assets.warehouse.postgres.driver import create_databases as create

    create(url, names)


def scram_verifier(password: str) -> str:
    """The scram-sha-256 verifier Postgres stores for `password` (the deploy stack's own cluster)."""
    from nb_assets.warehouse.postgres.roles import scram_verifier as verifier

    return verifier(password)


def provision_deployment(admin_dsn: str, *, storage: tuple[str, str, str], warehouse: tuple[str, str, str],
                         reader: tuple[str, str], reader_schemas: Iterable[str]) -> None:
    """The deploy stack's logins on its own cluster: (database, login, password) for Dagster's storage
    and the warehouse, (login, password) for the warehouse's reader (warehouse/postgres/roles.py)."""
    from nb_assets.warehouse.postgres.roles import Login, provision_deployment as provision

    provision(admin_dsn, storage=(storage[0], Login(storage[1], storage[2])),
              warehouse=(warehouse[0], Login(warehouse[1], warehouse[2])), reader=Login(*reader),
              reader_schemas=reader_schemas)


def set_login_password(admin_dsn: str, login: str, password: str) -> None:
    """A new password for `login` on the server at `admin_dsn` (deploy rotate), sent as its verifier."""
    from nb_assets.warehouse.postgres.roles import Login, set_password

    set_password(admin_dsn, Login(login, password))


def warehouse_reader_login(database: str) -> str:
    """The deploy stack's reader login for warehouse database `database` on an existing server (one per database)."""
    from nb_assets.warehouse.postgres.roles import reader_login

    return reader_login(database)


def provision_warehouse_reader(owner_dsn: str, reader: tuple[str, str], reader_schemas: Iterable[str]) -> None:
    """The deploy stack's (login, password) reader of an existing warehouse's database only, made as the
    warehouse's own login (warehouse/postgres/roles.py)."""
    from nb_assets.warehouse.postgres.roles import Login, provision_reader

    provision_reader(owner_dsn, Login(*reader), reader_schemas)
