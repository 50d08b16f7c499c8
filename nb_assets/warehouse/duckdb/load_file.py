"""Load one CSV or Parquet file into a source table of a DuckDB warehouse and record the landing, in one transaction.

The file must have the table's columns (by name, any order); values are cast
to the table's types as they are read, so a bad value fails the whole load
naming its line (CSV) or row (Parquet) and column, and the warehouse is
exactly as before. A table that does not exist yet is created from the file.
pg_landing.land_file does the same on Postgres.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from nb_assets.errors import LandingError
from nb_assets.warehouse.duckdb.landing import append_landing, find_landing, in_transaction, table_columns
from nb_assets.warehouse.landing import LandResult
from nb_assets.warehouse.base import LoadMode, ident, quote_table
from nb_assets.warehouse.files import FileReader, check_columns


def land_file(
    warehouse: str | Path,
    table: str,
    reader: FileReader,
    *,
    mode: LoadMode,
    partition: str | None,
    source: str,
    once_per_source: bool,
) -> LandResult:
    """Load the file into `table` of the DuckDB file `warehouse` and append its landing row
    (warehouse_backends.land_file opens the file and chooses this backend)."""

    def work(con: duckdb.DuckDBPyConnection) -> LandResult:
        earlier = find_landing(con, table, source) if once_per_source else None
        if earlier is not None:
            return LandResult(earlier, already_landed=True)
        rows = _load(con, reader, table, mode)
        return LandResult(append_landing(con, table, rows=rows, partition=partition, source=source))

    return in_transaction(warehouse, work)


def _load(con: duckdb.DuckDBPyConnection, reader: FileReader, table: str, mode: LoadMode) -> int:
    existing = table_columns(con, table)
    file_columns = reader.columns(con)
    if not existing:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(table.split('.')[0])}")
        con.execute(f"CREATE TABLE {quote_table(table)} AS SELECT * FROM {reader.sniffing_sql()} LIMIT 0", reader.params)
        existing = table_columns(con, table)
    check_columns(reader.file, table, file_columns, existing)
    if mode == "replace":
        con.execute(f"DELETE FROM {quote_table(table)}")
    try:
        result = con.execute(f"INSERT INTO {quote_table(table)} BY NAME SELECT * FROM {reader.typed_sql(file_columns, existing)}", reader.params)
    except duckdb.Error as exc:
        raise LandingError(f"{reader.file}: {reader.locate(con, exc, existing)}; nothing loaded") from exc
    return int(result.fetchone()[0])

