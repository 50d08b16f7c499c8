"""A table's columns as the warehouse has them (name, type), for `nb-assets lineage TABLE`.

Read-only and short: a DuckDB file held by a writer is waited for a few seconds,
then reported busy rather than waited on like a run would.
"""

from __future__ import annotations

from pathlib import Path

from nb_assets.errors import WarehouseError
from nb_assets.locations import is_postgres_url

LOCK_WAIT_S = 5.0


def read_columns(warehouse: str | Path, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of `table` (a table or a view), in order; empty when there is
    no such relation. A warehouse that cannot be opened raises WarehouseError (busy: WarehouseBusyError)."""
    if is_postgres_url(warehouse):
        from nb_assets.pg_landing import read_table_types

        return list(read_table_types(str(warehouse), table).items())
    if not Path(warehouse).is_file():
        raise WarehouseError(f"warehouse {warehouse} does not exist")
    from nb_assets.landing import table_columns
    from nb_assets.warehouse import connect

    with connect(warehouse, read_only=True, lock_wait_s=LOCK_WAIT_S) as con:
        return list(table_columns(con, table).items())
