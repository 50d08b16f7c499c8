"""Load a run's outputs into Postgres: every table in one transaction.

Each output is written in one transaction with every other: when the table
exists with exactly the columns the load would create, its rows are replaced
(`DELETE`, then a binary COPY through ADBC into the table itself); otherwise
the file is copied into a staging table beside it, and once every output is
written the old table is dropped and the staging table renamed into place.
The output checks run on the written tables, then the transaction commits;
a failure anywhere rolls everything back.

Why not always the swap: DDL is not MVCC-safe in Postgres. A prefetch reads
all of a notebook's inputs in one REPEATABLE READ snapshot; if a swap commits
after that snapshot and before the prefetch reads the table, the name resolves
to the new relation, whose rows the snapshot cannot see: an empty table, read
silently. A `DELETE` + insert is MVCC: that reader sees the old rows. It also
keeps the table's grants, indexes and dependent views, and never waits for,
or blocks, a reader. The swap stays for a new table or changed columns; a
prefetch that meets one says so and asks for a retry (postgres/warehouse.py).
benchmarks/postgres_swap.py measures both.

A partitioned run checks its outputs first (in-memory DuckDB, the same check
as the DuckDB warehouse), then deletes and inserts only its day's rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import adbc_driver_postgresql.dbapi as adbc
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from nb_assets.errors import OutputValidationError, WarehouseError
from nb_assets.warehouse.postgres.driver import read_parquet_batches, server_message, statement_timeout_ms
from nb_assets.warehouse.base import PartitionLoad, ident, quote_table, writer_comment
from nb_assets.warehouse.checks import CheckRun, audit
from nb_assets.warehouse.deadline import Deadline, Watch
from nb_assets.warehouse.files import check_partition_outputs

if TYPE_CHECKING:
    from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse

_STAGE_SUFFIX = "__nb_stage"
_MAX_IDENT = 63  # Postgres truncates longer names


def stage_name(table: str) -> str:
    name = table.split(".")[1]
    return name[: _MAX_IDENT - len(_STAGE_SUFFIX)] + _STAGE_SUFFIX


@contextmanager
def _transaction(warehouse: PostgresWarehouse, notebook: str, what: str, deadline: Deadline | None) -> Iterator[tuple[Any, Watch]]:
    """A write transaction under `deadline`: committed if the block ends normally (or rolled back on a trial),
    else rolled back. The deadline cancels the running statement through the driver (deadline.py)."""
    deadline = deadline or Deadline.unlimited("load")
    with warehouse.connect() as con, con.cursor() as cur, \
            deadline.watching(con.adbc_cancel, notebook, f"{what}starting the transaction") as watch:
        try:
            if math.isfinite(deadline.left()):  # a load without a deadline keeps the server's own setting
                cur.execute(f"SET LOCAL statement_timeout = {statement_timeout_ms(math.inf, deadline)}")
            yield cur, watch
            deadline.check(notebook, f"{what}before the commit")  # past it, the commit would outlive the deadline
            con.rollback() if warehouse.rollback_loads else con.commit()
        except OutputValidationError:
            con.rollback()
            raise
        except adbc.Error as exc:
            con.rollback()
            raise WarehouseError(f"{notebook}: {what}loading outputs failed, nothing loaded: {server_message(exc)}") from exc
        except (pa.ArrowException, OSError) as exc:  # an output file unreadable midway
            con.rollback()
            raise WarehouseError(f"{notebook}: {what}loading outputs failed, nothing loaded: {exc}") from exc
        except BaseException:
            con.rollback()
            raise


def _stage(cur: Any, table: str, batches: pa.RecordBatchReader) -> str:
    """A fresh staging table beside `table`, created by ADBC from `batches` (its types are ADBC's choice)."""
    schema = table.split(".")[0]
    stage = stage_name(table)
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    cur.execute(f"DROP TABLE IF EXISTS {ident(schema)}.{ident(stage)}")
    cur.adbc_ingest(stage, batches, mode="create", db_schema_name=schema)
    return f"{ident(schema)}.{ident(stage)}"


# A table's columns as a load creates them (ADBC's types, all nullable), in order; relkind first.
_COLUMNS = """
    SELECT c.relkind::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
    FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.oid = to_regclass($1) ORDER BY a.attnum
"""


def _columns(cur: Any, relation: str) -> list[tuple[Any, ...]]:
    cur.execute(_COLUMNS, (relation,))
    return cur.fetchall()


def _write(cur: Any, table: str, path: Path) -> bool:
    """Write `path` into `table` in the open transaction; True if the table's rows were replaced in place,
    False if the file went into the staging table instead (a new table, or other columns: `_swap` later)."""
    schema, name = table.split(".")
    # One load of a table at a time, until commit, as DROP made it: else two loads' DELETEs could each miss
    # the other's new rows and both sets stay. An advisory lock: readers, other writers and autovacuum go on.
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text", (f"nb_assets load {table}",))
    batches = read_parquet_batches(path)
    # The staging table with no rows yet: ADBC's own choice of column types, to compare with the table's.
    staged = _stage(cur, table, pa.RecordBatchReader.from_batches(batches.schema, []))
    existing = _columns(cur, quote_table(table))
    if existing and existing[0][0] == "r" and existing == _columns(cur, staged):
        cur.execute(f"DROP TABLE {staged}")
        cur.execute(f"DELETE FROM {quote_table(table)}")  # MVCC: an older snapshot still reads the old rows
        cur.adbc_ingest(name, batches, mode="append", db_schema_name=schema)
        return True
    cur.adbc_ingest(stage_name(table), batches, mode="append", db_schema_name=schema)
    return False


def _swap(cur: Any, table: str) -> None:
    """The staging table in the place of `table`: not MVCC-safe (see the module's docstring), so only for
    a new table or changed columns. A dependent view makes the server refuse the DROP: nothing loads."""
    schema, name = table.split(".")
    cur.execute(f"DROP TABLE IF EXISTS {quote_table(table)}")
    cur.execute(f"ALTER TABLE {ident(schema)}.{ident(stage_name(table))} RENAME TO {ident(name)}")


def _audit(
    cur: Any, notebook: str, checks: CheckRun | None, tables: list[str], deadline: Deadline, part: PartitionLoad | None = None,
) -> None:
    """The load's checks (warehouse/checks.py) in its transaction: after the write, before the commit,
    under their own deadline (checks_timeout) inside the load's."""
    if checks is None or not checks.for_tables(tables):
        return

    def fetch(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur.execute(query)
        return [d[0] for d in cur.description or ()], cur.fetchall()

    with deadline.sub("checks_timeout").watching(cur.adbc_cancel, notebook, f"the output checks of {', '.join(tables)}"):
        audit(fetch, notebook, checks, tables, partition_column=part.column if part else None, day=part.day if part else None)


def load_tables(
    warehouse: PostgresWarehouse, notebook: str, outputs: Mapping[str, Path], checks: CheckRun | None = None,
    deadline: Deadline | None = None,
) -> dict[str, int]:
    if not outputs:
        return {}
    rows: dict[str, int] = {}
    deadline = deadline or Deadline.unlimited("load")  # output checks here take deadline.sub("checks_timeout")
    with _transaction(warehouse, notebook, "", deadline) as (cur, watch):
        staged = []
        for table, path in outputs.items():
            watch.at(f"loading {table}")
            _missing_file(notebook, path)
            if not _write(cur, table, path):
                staged.append(table)
            rows[table] = pq.ParquetFile(path).metadata.num_rows
        watch.at("replacing the tables")
        for table in staged:  # the swaps: only once every output is written, so their exclusive locks are short
            _swap(cur, table)
        for table in outputs:
            cur.execute(f"COMMENT ON TABLE {quote_table(table)} IS {writer_comment(notebook)}")
        _audit(cur, notebook, checks, list(outputs), deadline)  # written, audited, then (leaving the block) published
    return rows


def load_partition(
    warehouse: PostgresWarehouse, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad, checks: CheckRun | None = None,
    deadline: Deadline | None = None,
) -> dict[str, int]:
    """Replace only `part.day`'s rows of each table, all or nothing."""
    if not outputs:
        return {}
    with duckdb.connect() as checker:  # in memory: reads only the run's own Parquet files
        check_partition_outputs(checker, notebook, outputs, part)
    rows: dict[str, int] = {}
    deadline = deadline or Deadline.unlimited("load")
    with _transaction(warehouse, notebook, f"partition {part.day}: ", deadline) as (cur, watch):
        for table, path in outputs.items():
            watch.at(f"partition {part.day}: loading {table}")
            _missing_file(notebook, path)
            schema, name = table.split(".")
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                (schema, name),
            )
            existing = [c for (c,) in cur.fetchall()]
            staged = _stage(cur, table, read_parquet_batches(path))
            if not existing:
                cur.execute(f"ALTER TABLE {staged} RENAME TO {ident(name)}")
            elif part.column not in existing:
                raise OutputValidationError(
                    f"{notebook}: partition {part.day}: {table} in the warehouse has no column {part.column!r}, "
                    "so its days cannot be told apart; nothing loaded"
                )
            else:
                columns = ", ".join(ident(c) for c in pq.read_schema(path).names)
                cur.execute(f"DELETE FROM {quote_table(table)} WHERE CAST({ident(part.column)} AS DATE) = CAST($1 AS DATE)", (part.day,))
                cur.execute(f"INSERT INTO {quote_table(table)} ({columns}) SELECT {columns} FROM {staged}")
                cur.execute(f"DROP TABLE {staged}")
            rows[table] = pq.ParquetFile(path).metadata.num_rows
        _audit(cur, notebook, checks, list(outputs), deadline, part)  # the day's rows only, before the commit
    return rows


def _missing_file(notebook: str, path: Path) -> None:
    if not Path(path).is_file():
        raise WarehouseError(f"{notebook}: loading outputs failed, nothing loaded: {path} is gone")
