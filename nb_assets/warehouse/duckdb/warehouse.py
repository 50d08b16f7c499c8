"""The DuckDB warehouse: prefetch SQL inputs to Parquet, load outputs atomically.

`Warehouse` (warehouse/base.py) is the interface; `DuckDBWarehouse` is the embedded
default, `PostgresWarehouse` (warehouse/postgres/warehouse.py) the server one, and
warehouse.backends.open_warehouse chooses between them by the configured location.
Output files are validated before anything touches the warehouse (warehouse/files.py),
and all outputs of a run load in one transaction, so a failed or partial run changes nothing.

Prefetch hands the warehouse's catalog (views, macros) to a check before any
query runs, on the same connection and snapshot, so the views and macros a
notebook is judged by are the ones its queries read through (on Postgres:
views, materialized views and SQL functions, warehouse/postgres/catalog.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from nb_assets.warehouse.duckdb.catalog import open_duckdb_catalog, read_catalog
from nb_assets.sql.see_through import Catalog
from nb_assets.errors import OutputValidationError, WarehouseBusyError, WarehouseError
from nb_assets.warehouse.base import (
    PartitionLoad, PrefetchRequest, TableDescription, engine_message, first_line, ident, quote_table, writer_comment,
)
from nb_assets.warehouse.checks import CheckRun
from nb_assets.warehouse.deadline import Deadline, StageTimeoutError
from nb_assets.warehouse.duckdb.audit import audit_in_transaction
from nb_assets.warehouse.files import write_parquet
from nb_assets.warehouse.writer import Writer, writer_of

if TYPE_CHECKING:
    import pyarrow as pa

_LOCK_WAIT_S = 120.0
_BATCH_ROWS = 1 << 20  # one row group per batch: larger groups write faster
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool,
    config: Mapping[str, Any] | None = None,
    lock_wait_s: float = _LOCK_WAIT_S,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; waits up to `lock_wait_s` while another process holds the file."""
    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=dict(config or {}))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise WarehouseError(f"cannot open warehouse {path}: {first_line(exc)}") from exc
            if time.monotonic() > deadline:
                raise WarehouseBusyError(f"cannot open warehouse {path}: {first_line(exc)}") from exc
            time.sleep(0.2)
    try:
        yield con
    finally:
        con.close()


def read_query(path: str | Path, query: str, namespace: Mapping[str, Any], *, lock_wait_s: float) -> pa.Table:
    """A person's `%%sql` query on the file, read-only, each `$name` it uses bound from `namespace`
    (warehouse.backends.query_interactive); waits up to `lock_wait_s` while a load holds the file."""
    params = {n: namespace[n] for n in dict.fromkeys(_PARAM.findall(query)) if n in namespace}
    with connect(path, read_only=True, lock_wait_s=lock_wait_s) as con:
        return con.sql(query, params=params).to_arrow_table()


def _lock_wait(deadline: Deadline) -> float:
    """How long to wait for the file lock: the usual wait, never past the stage's deadline."""
    return max(0.0, min(_LOCK_WAIT_S, deadline.left()))


@contextmanager
def _connect_by(deadline: Deadline, notebook: str, path: str, *, read_only: bool,
                config: Mapping[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect`, its wait for another process's lock ending at the stage's deadline, and said so."""
    try:
        with connect(path, read_only=read_only, config=config, lock_wait_s=_lock_wait(deadline)) as con:
            yield con
    except WarehouseBusyError as exc:  # only opening raises it
        if deadline.left() > 0:
            raise
        raise StageTimeoutError(deadline.message(notebook, f"waiting for the lock on {path} (another process writes it)",
                                                 cancelled=False)) from exc


class DuckDBWarehouse:
    """An embedded DuckDB file. Connections are short-lived so that several
    runs (Dagster's multiprocess executor) take turns on the file lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    @contextmanager
    def _connect(self, *, read_only: bool, config: Mapping[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.path, read_only=read_only, config=config) as con:
            yield con

    def prefetch(
        self, notebook: str, requests: Sequence[PrefetchRequest], check: Callable[[Catalog], None] | None = None,
        *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        if not requests:
            return {}
        if not Path(self.path).exists():
            raise WarehouseError(f"{notebook}: warehouse {self.path} does not exist")
        deadline = deadline or Deadline.unlimited("prefetch")
        rows: dict[str, int] = {}
        # No file or network access: a query can read warehouse tables and nothing else.
        config = {"enable_external_access": False, "lock_configuration": True}
        with _connect_by(deadline, notebook, self.path, read_only=True, config=config) as con, \
                deadline.watching(con.interrupt, notebook, "reading the catalog") as watch:
            con.execute("BEGIN TRANSACTION")  # one snapshot: the catalog checked is the one the queries bind to
            if check is not None:
                try:
                    catalog = read_catalog(con, self.path)
                except duckdb.Error as exc:
                    raise WarehouseError(f"{notebook}: cannot read the catalog of {self.path}: {first_line(exc)}") from exc
                check(catalog)
            for request in requests:
                watch.at(f"cell {request.cell}: SQL input {request.name!r}", request.cell)
                try:
                    for relation, path in request.sources.items():  # a Python object, not a file read: access stays off
                        import pyarrow.parquet as pq

                        con.register(relation, pq.read_table(path))
                    reader = con.sql(request.query, params=dict(request.params)).to_arrow_reader(_BATCH_ROWS)
                    rows[request.name] = write_parquet(reader, request.dest)
                except duckdb.Error as exc:
                    raise WarehouseError(
                        f"{notebook}: cell {request.cell}: SQL input {request.name!r} failed: {engine_message(exc)}",
                        cell=request.cell,
                    ) from exc
        return rows

    def load(
        self, notebook: str, outputs: Mapping[str, Path], checks: CheckRun | None = None, *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        if not outputs:
            return {}
        deadline = deadline or Deadline.unlimited("load")
        rows: dict[str, int] = {}
        with _connect_by(deadline, notebook, self.path, read_only=False) as con, \
                deadline.watching(con.interrupt, notebook, "starting the transaction") as watch:
            con.execute("BEGIN TRANSACTION")
            try:
                for table, path in outputs.items():
                    watch.at(f"loading {table}")
                    schema = table.split(".")[0]
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
                    con.execute(f"CREATE OR REPLACE TABLE {quote_table(table)} AS SELECT * FROM read_parquet($path)", {"path": str(path)})
                    con.execute(f"COMMENT ON TABLE {quote_table(table)} IS {writer_comment(notebook)}")
                    rows[table] = con.execute(f"SELECT count(*) FROM {quote_table(table)}").fetchone()[0]
                audit_in_transaction(con, notebook, checks, list(outputs), deadline=deadline)  # written, audited, then published
                watch.at("committing")
                deadline.check(notebook, "before the commit")  # past it, the commit would outlive the deadline
                con.execute("COMMIT")
            except OutputValidationError:
                con.execute("ROLLBACK")
                raise
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise WarehouseError(f"{notebook}: loading outputs failed, nothing loaded: {engine_message(exc)}") from exc
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return rows

    def recorded_writers(self, tables: Sequence[str]) -> dict[str, Writer | None]:
        if not tables or not Path(self.path).exists():
            return {}
        with self._connect(read_only=True) as con:
            found = con.execute(_COMMENTS, {"names": [t.lower() for t in tables]}).fetchall()
        return {name: writer_of(comment) for name, comment in found}

    def load_partition(
        self, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad, checks: CheckRun | None = None,
        *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        """Replace only `part.day`'s rows of each table, all or nothing (warehouse_partitions)."""
        from nb_assets.warehouse.duckdb.partitions import load_partition

        deadline = deadline or Deadline.unlimited("load")
        return load_partition(partial(_connect_by, deadline, notebook, self.path), notebook, outputs, part, checks, deadline)

    def scratch_copy(self, dest: Path) -> DuckDBWarehouse:
        """A consistent copy (tables, views, macros) to try a notebook against;
        the real file is only read, through DuckDB, so no half-written state is copied."""
        if not Path(self.path).exists():
            raise WarehouseError(f"warehouse {self.path} does not exist")
        dest = Path(dest)
        with duckdb.connect(str(dest)) as con:
            con.execute("ATTACH $path AS nb_assets_source (READ_ONLY)", {"path": str(Path(self.path).resolve())})
            con.execute(f'COPY FROM DATABASE nb_assets_source TO "{con.execute("SELECT current_database()").fetchone()[0]}"')
            con.execute("DETACH nb_assets_source")
        return DuckDBWarehouse(dest)

    def read_catalog(self) -> Catalog:
        """The catalog now, as catalog.open_duckdb_catalog reads it (one attempt, no waiting on a lock)."""
        found = open_duckdb_catalog(self.path)
        if isinstance(found, str):
            raise WarehouseError(found)
        return found

    def describe(self, table: str) -> TableDescription | None:
        if not Path(self.path).exists():
            return None
        schema, name = table.split(".")
        with self._connect(read_only=True) as con:
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = $s AND table_name = $t ORDER BY ordinal_position",
                {"s": schema, "t": name},
            ).fetchall()
            if not columns:
                return None
            count = con.execute(f"SELECT count(*) FROM {quote_table(table)}").fetchone()[0]
        return TableDescription(table, count, tuple((c, t) for c, t in columns))


_COMMENTS = """
    SELECT name, comment FROM (
        SELECT lower(schema_name || '.' || table_name) AS name, comment FROM duckdb_tables()
        WHERE database_name = current_database() AND NOT internal AND NOT temporary
        UNION ALL
        SELECT lower(schema_name || '.' || view_name), comment FROM duckdb_views()
        WHERE database_name = current_database() AND NOT internal AND NOT temporary
    ) WHERE list_contains($names, name)
"""

