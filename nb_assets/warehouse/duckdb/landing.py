"""The landing log on a DuckDB warehouse (the contract: warehouse/landing.py), and loading a
CSV or Parquet file into a source table with its landing row, in one transaction.

A landing is one row of `nb_assets.landings`, appended by whatever loaded the
data, in the same transaction as the data (docs/triggers-and-landing.md, "Landing data"). Ids are
`max(id) + 1` under a primary key, so two loaders racing for the same id make
one of them fail on commit and retry.

The functions that take a warehouse take a DuckDB file's path; callers go
through warehouse.backends, which serves a postgresql:// URL by pg_landing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb

from nb_assets.errors import LandingError, WarehouseError
from nb_assets.warehouse.base import LoadMode, ident, quote_table
from nb_assets.warehouse.files import FileReader, check_columns
from nb_assets.warehouse.landing import LOG_DDL, LOG_SCHEMA, LOG_TABLE, Landing, LandResult, check_log_columns
from nb_assets.warehouse.duckdb.warehouse import connect

# The loader's one extra INSERT, exactly as docs/triggers-and-landing.md shows it.
APPEND_SQL = f"""
INSERT INTO {LOG_TABLE} (id, "table", partition, rows, source)
SELECT coalesce(max(id), 0) + 1, $table, $partition, $rows, $source FROM {LOG_TABLE}
RETURNING id, "table", partition, rows, epoch(landed_at), source
"""
_SELECT = f'SELECT id, "table", partition, rows, epoch(landed_at), source FROM {LOG_TABLE}'
LATEST_IDS = f'SELECT max(id) FROM {LOG_TABLE} WHERE id <= $up_to GROUP BY "table", partition'
T = TypeVar("T")
READ_LOCK_WAIT_S = 5.0  # a sensor tick skips rather than waits long for a writer


def ensure_log(con: duckdb.DuckDBPyConnection) -> None:
    for statement in LOG_DDL:
        con.execute(statement)


def append_landing(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    rows: int | None = None,
    partition: str | None = None,
    source: str | None = None,
) -> Landing:
    """Record a landing inside the caller's transaction; it counts only if that transaction commits."""
    row = con.execute(APPEND_SQL, {"table": table, "partition": partition, "rows": rows, "source": source}).fetchone()
    assert row is not None
    return Landing(*row)


def find_landing(con: duckdb.DuckDBPyConnection, table: str, source: str) -> Landing | None:
    """The first landing of `table` recorded with exactly this source, if any."""
    row = con.execute(f'{_SELECT} WHERE "table" = $t AND source = $s ORDER BY id LIMIT 1', {"t": table, "s": source}).fetchone()
    return Landing(*row) if row else None


def is_conflict(exc: duckdb.Error) -> bool:
    """Two loaders took the same id; the loser retries its whole transaction."""
    return "duplicate key" in str(exc).lower() or "conflict" in str(exc).lower()


def read_landings(warehouse: str | Path, *, after_id: int, limit: int) -> list[Landing]:
    """Landings with id > after_id, oldest first, at most `limit`.

    A missing warehouse, a missing log or one without the expected columns is a
    LandingError saying how to fix it; a writer holding the file for longer
    than READ_LOCK_WAIT_S is a WarehouseBusyError (the caller tries again later).
    """
    if not Path(warehouse).is_file():
        raise LandingError(f"warehouse {warehouse} does not exist, so there is no landing log to read")
    with connect(warehouse, read_only=True, lock_wait_s=READ_LOCK_WAIT_S) as con:
        check_log(con, str(warehouse))
        try:
            rows = con.execute(f"{_SELECT} WHERE id > $after ORDER BY id LIMIT $limit", {"after": after_id, "limit": limit}).fetchall()
        except duckdb.Error as exc:
            raise LandingError(f"the landing log {LOG_TABLE} in {warehouse} cannot be read: {exc}") from exc
    return [Landing(*row) for row in rows]


def latest_landings(warehouse: str | Path, *, up_to_id: int) -> list[Landing]:
    """The newest landing of each (table, partition) with id <= up_to_id, oldest first."""
    with connect(warehouse, read_only=True, lock_wait_s=READ_LOCK_WAIT_S) as con:
        check_log(con, str(warehouse))
        rows = con.execute(f"{_SELECT} WHERE id IN ({LATEST_IDS}) ORDER BY id", {"up_to": up_to_id}).fetchall()
    return [Landing(*row) for row in rows]


def last_landing_id(warehouse: str | Path) -> int:
    """The newest id in the log, 0 when empty (to notice a log that was recreated)."""
    with connect(warehouse, read_only=True, lock_wait_s=READ_LOCK_WAIT_S) as con:
        return int(con.execute(f"SELECT coalesce(max(id), 0) FROM {LOG_TABLE}").fetchone()[0])


def check_log(con: duckdb.DuckDBPyConnection, warehouse: str) -> None:
    columns = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $s AND table_name = 'landings'",
            {"s": LOG_SCHEMA},
        ).fetchall()
    ]
    check_log_columns(columns, warehouse)


def record_landing(
    warehouse: str | Path,
    table: str,
    *,
    rows: int | None = None,
    partition: str | None = None,
    source: str | None = None,
) -> Landing:
    """Record that `table` landed (its data was loaded by another tool); the table must exist."""

    def work(con: duckdb.DuckDBPyConnection) -> Landing:
        if not table_columns(con, table):
            raise LandingError(f"{table} is not in the warehouse {warehouse}; load it first, or pass --from FILE")
        return append_landing(con, table, rows=rows, partition=partition, source=source)

    return in_transaction(warehouse, work)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name → type, in order; empty when the table does not exist."""
    schema, name = table.split(".")
    return dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $s AND table_name = $t ORDER BY ordinal_position",
            {"s": schema, "t": name},
        ).fetchall()
    )


def in_transaction(warehouse: str | Path, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run `work` and commit, retrying when another loader took the same landing id."""
    for attempt in range(3):
        with connect(warehouse, read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                ensure_log(con)
                result = work(con)
                con.execute("COMMIT")
                return result
            except duckdb.Error as exc:
                _rollback(con)
                if is_conflict(exc) and attempt < 2:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise WarehouseError(f"landing failed, nothing loaded: {exc}") from exc
            except BaseException:
                _rollback(con)
                raise
    raise AssertionError("unreachable")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the failed commit already ended the transaction


# --- loading a file: its rows and its landing row, in one transaction ---

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
    (warehouse.backends.land_file opens the file and chooses this backend)."""

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

