"""The landing log and `land --from FILE` on a Postgres warehouse.

The same contract as landing.py and warehouse/duckdb/landing.py on DuckDB: one row of
`nb_assets.landings` per landing, in the same transaction as the data, ids
`max(id) + 1` under a primary key (a loader that loses the race retries).
The file is read and checked by an in-memory DuckDB exactly as on DuckDB (so
a bad value is located by line or row and column), then copied into Postgres
as Arrow and cast to the table's own types there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import adbc_driver_postgresql.dbapi as adbc
import duckdb
import pyarrow as pa

from nb_assets.errors import LandingError, WarehouseError
from nb_assets.warehouse.landing import LOG_DDL, LOG_SCHEMA, LOG_TABLE, Landing, LandResult, check_log_columns
from nb_assets.locations import redact
from nb_assets.warehouse.postgres.driver import connect, server_message
from nb_assets.warehouse.base import LoadMode, ident, quote_table
from nb_assets.warehouse.files import FileReader, check_columns

T = TypeVar("T")
_RETURNING = 'id, "table", partition, rows, extract(epoch FROM landed_at)::float8, source'
_APPEND = f"""
INSERT INTO {LOG_TABLE} (id, "table", partition, rows, source)
SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4 FROM {LOG_TABLE}
RETURNING {_RETURNING}
"""
_APPEND_TYPES = pa.schema([("table", pa.string()), ("partition", pa.string()), ("rows", pa.int64()), ("source", pa.string())])
# What DuckDB reads each Postgres type as, to check and locate bad values before Postgres sees them.
_DUCKDB_TYPES = {
    "bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "boolean": "BOOLEAN", "date": "DATE",
    "double precision": "DOUBLE", "real": "FLOAT", "text": "VARCHAR",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMPTZ",
}


def _bind(values: tuple[Any, ...], schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([v], f.type) for v, f in zip(values, schema)], schema=schema)


@contextmanager
def _reading(dsn: str) -> Iterator[Any]:
    with connect(dsn) as con, con.cursor() as cur:
        try:
            yield cur
        finally:
            con.rollback()


def read_landings(dsn: str, *, after_id: int, limit: int) -> list[Landing]:
    with _reading(dsn) as cur:
        _check_log(cur, dsn)
        try:
            cur.execute(f"SELECT {_RETURNING} FROM {LOG_TABLE} WHERE id > $1 ORDER BY id LIMIT $2", (after_id, limit))
            return [Landing(*row) for row in cur.fetchall()]
        except adbc.Error as exc:
            raise LandingError(f"the landing log {LOG_TABLE} in {redact(dsn)} cannot be read: {server_message(exc)}") from exc


def latest_landings(dsn: str, *, up_to_id: int) -> list[Landing]:
    with _reading(dsn) as cur:
        _check_log(cur, dsn)
        latest = f'SELECT max(id) FROM {LOG_TABLE} WHERE id <= $1 GROUP BY "table", partition'
        cur.execute(f"SELECT {_RETURNING} FROM {LOG_TABLE} WHERE id IN ({latest}) ORDER BY id", (up_to_id,))
        return [Landing(*row) for row in cur.fetchall()]


def last_landing_id(dsn: str) -> int:
    with _reading(dsn) as cur:
        cur.execute(f"SELECT coalesce(max(id), 0) FROM {LOG_TABLE}")
        return int(cur.fetchall()[0][0])


def _check_log(cur: Any, dsn: str) -> None:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'landings'",
        (LOG_SCHEMA,),
    )
    check_log_columns([c for (c,) in cur.fetchall()], redact(dsn))


def append_landing(cur: Any, table: str, *, rows: int | None, partition: str | None, source: str | None) -> Landing:
    """Inside the caller's transaction: it counts only if that transaction commits."""
    cur.execute(_APPEND, _bind((table, partition, rows, source), _APPEND_TYPES))
    return Landing(*cur.fetchall()[0])


def table_types(cur: Any, table: str) -> dict[str, str]:
    """Column name → its Postgres type as SQL (`numeric(10,2)`), in order; empty when there is no such table."""
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (quote_table(table),),
    )
    return dict(cur.fetchall())


def read_table_types(dsn: str, table: str) -> dict[str, str]:
    """table_types in a read-only look at the warehouse; a server that cannot be reached is a WarehouseError."""
    try:
        with _reading(dsn) as cur:
            return table_types(cur, table)
    except adbc.Error as exc:
        raise WarehouseError(f"cannot read {redact(dsn)}: {server_message(exc)}") from exc


def in_transaction(dsn: str, work: Callable[[Any], T]) -> T:
    """Run `work` and commit, retrying when another loader took the same landing id."""
    for attempt in range(3):
        with connect(dsn) as con, con.cursor() as cur:
            try:
                for statement in LOG_DDL:
                    cur.execute(statement)
                result = work(cur)
                con.commit()
                return result
            except adbc.Error as exc:
                con.rollback()
                if "duplicate key" in str(exc) and attempt < 2:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise WarehouseError(f"landing failed, nothing loaded: {server_message(exc)}") from exc
            except BaseException:
                con.rollback()
                raise
    raise AssertionError("unreachable")


def record_landing(dsn: str, table: str, *, rows: int | None, partition: str | None, source: str | None) -> Landing:
    def work(cur: Any) -> Landing:
        if not table_types(cur, table):
            raise LandingError(f"{table} is not in the warehouse {redact(dsn)}; load it first, or pass --from FILE")
        return append_landing(cur, table, rows=rows, partition=partition, source=source)

    return in_transaction(dsn, work)


def land_file(
    dsn: str, table: str, reader: FileReader, *, mode: LoadMode, partition: str | None, source: str, once_per_source: bool
) -> LandResult:
    """Load the file into `table` and append its landing row, in one transaction
    (warehouse.backends.land_file opens the file and chooses this backend)."""

    def work(cur: Any) -> LandResult:
        earlier = find_landing(cur, table, source) if once_per_source else None
        if earlier is not None:
            return LandResult(earlier, already_landed=True)
        rows = load_rows(cur, reader, table, mode)
        return LandResult(append_landing(cur, table, rows=rows, partition=partition, source=source))

    return in_transaction(dsn, work)


def find_landing(cur: Any, table: str, source: str) -> Landing | None:
    cur.execute(f'SELECT {_RETURNING} FROM {LOG_TABLE} WHERE "table" = $1 AND source = $2 ORDER BY id LIMIT 1', (table, source))
    found = cur.fetchall()
    return Landing(*found[0]) if found else None


def load_rows(cur: Any, reader: FileReader, table: str, mode: LoadMode) -> int:
    """Load the file into `table` in the caller's transaction; rows loaded."""
    schema, name = table.split(".")
    existing = table_types(cur, table)
    with duckdb.connect() as duck:  # in memory: it reads the one file and nothing else
        file_columns = reader.columns(duck)
        if not existing:
            data = _read(duck, reader, f"SELECT * FROM {reader.sniffing_sql()}", {})
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            cur.adbc_ingest(name, data, mode="create", db_schema_name=schema)
            return data.num_rows
        check_columns(reader.file, table, file_columns, existing)
        by_lower = {c.lower(): c for c in existing}
        duck_types = {by_lower[c.lower()]: _DUCKDB_TYPES.get(existing[by_lower[c.lower()]], "VARCHAR") for c in file_columns}
        casts = ", ".join(f"CAST({ident(c)} AS {duck_types[by_lower[c.lower()]]}) AS {ident(by_lower[c.lower()])}" for c in file_columns)
        data = _read(duck, reader, f"SELECT {casts} FROM {reader.typed_sql(file_columns, duck_types)}", duck_types)
    if mode == "replace":
        cur.execute(f"DELETE FROM {quote_table(table)}")
    cur.execute("DROP TABLE IF EXISTS nb_assets_landing_stage")
    cur.adbc_ingest("nb_assets_landing_stage", data, mode="create", temporary=True)
    columns = ", ".join(ident(c) for c in data.schema.names)
    typed = ", ".join(f"CAST({ident(c)} AS {existing[c]})" for c in data.schema.names)
    cur.execute(f"INSERT INTO {quote_table(table)} ({columns}) SELECT {typed} FROM nb_assets_landing_stage")
    cur.execute("DROP TABLE nb_assets_landing_stage")
    return data.num_rows


def _read(duck: duckdb.DuckDBPyConnection, reader: FileReader, sql: str, types: dict[str, str]) -> pa.Table:
    try:
        return duck.sql(sql, params=reader.params).to_arrow_table()
    except duckdb.Error as exc:
        raise LandingError(f"{reader.file}: {reader.locate(duck, exc, types)}; nothing loaded") from exc

