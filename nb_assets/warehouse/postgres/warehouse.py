"""A PostgreSQL warehouse behind the same seam as DuckDBWarehouse.

Two walls stand between a notebook's SQL and the data. The static check
(sql_lineage, static_rules) refuses anything but one read-only query; behind
it, prefetch runs each query as a role that can only SELECT (`read_dsn`, by
default the `nb_assets_reader` login this class creates as a member of
`pg_read_all_data`), in a READ ONLY, REPEATABLE READ transaction with a
statement timeout. A separate login rather than `SET ROLE`: a query could
undo `SET ROLE` with `set_config('role', ...)`, it cannot log in again.

Results and outputs move as Arrow through ADBC's Postgres driver (warehouse/postgres/driver.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from nb_assets.warehouse.postgres import driver as pg_driver
from nb_assets.sql.see_through import Catalog
from nb_assets.errors import WarehouseError
from nb_assets.locations import redact, with_user
from nb_assets.warehouse.postgres.catalog import read_pg_catalog
from nb_assets.warehouse.postgres.driver import server_message, statement_timeout_ms
from nb_assets.warehouse.postgres.sources import BEGIN_WRITABLE, READ_ONLY_AGAIN, fetched_sources, stage_sources
from nb_assets.sql.params import ParamTranslationError, to_positional
from nb_assets.warehouse.base import PartitionLoad, PrefetchRequest, TableDescription, quote_table
from nb_assets.warehouse.deadline import Deadline
from nb_assets.warehouse.writer import Writer, writer_of
from nb_assets.warehouse.files import write_parquet
from nb_assets.warehouse.checks import CheckRun

READER_ROLE = "nb_assets_reader"
DIALECT = "postgres"
_STATEMENT_TIMEOUT_S = 600
# Unqualified names bind in `main`, as in DuckDB, so a notebook means the same table on both.
DEFAULT_SCHEMA = "main"
# Membership in any of these lets a session write, or read or run things on the server's host.
_POWERFUL_ROLES = ("pg_write_all_data", "pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")
_CAN_WRITE = f"""
    SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb
           OR {" OR ".join(f"pg_has_role(current_user, '{role}', 'MEMBER')" for role in _POWERFUL_ROLES)}
           OR EXISTS (
             SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%'
               AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
    FROM pg_roles r WHERE r.rolname = current_user
"""
_COMMENTS = """
    SELECT lower(n.nspname || '.' || c.relname), obj_description(c.oid, 'pg_class')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""


class PostgresWarehouse:
    """A Postgres database. `dsn` owns the tables and loads them; `read_dsn` (a role
    that can only SELECT) prefetches. Loads of one run commit together or not at all."""

    dialect = DIALECT

    def __init__(
        self,
        dsn: str,
        read_dsn: str | None = None,
        *,
        statement_timeout_s: float = _STATEMENT_TIMEOUT_S,
        rollback_loads: bool = False,
    ) -> None:
        self.dsn = dsn
        self._explicit_reader = read_dsn is not None
        self.read_dsn = read_dsn or with_user(dsn, READER_ROLE)
        self.statement_timeout_s = statement_timeout_s
        # A trial run (schedule_workflow): every load runs in full, then is rolled back.
        self.rollback_loads = rollback_loads
        self.path = redact(dsn)  # where messages and records say the warehouse is

    def __repr__(self) -> str:
        return f"PostgresWarehouse({self.path!r})"

    # --- connections -----------------------------------------------------------

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[Any]:
        """An ADBC connection in a transaction (autocommit off): the owner's, or the reader's."""
        dsn = self.read_dsn if read_only else self.dsn
        try:
            con = pg_driver.connect(dsn)
        except WarehouseError as exc:
            if not (read_only and not self._explicit_reader and f'role "{READER_ROLE}" does not exist' in str(exc.__cause__)):
                raise
            self.create_reader()
            con = pg_driver.connect(dsn)
        try:
            yield con
        finally:
            con.close()

    def create_reader(self) -> None:
        """Create the `nb_assets_reader` login (if missing) as a member of `pg_read_all_data`:
        SELECT on every table and view, nothing else. Needs an owner with CREATEROLE."""
        with self.connect() as con, con.cursor() as cur:
            try:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = $1", (READER_ROLE,))
                if not cur.fetchall():
                    cur.execute(f'CREATE ROLE "{READER_ROLE}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE pg_read_all_data')
                    cur.execute(f'ALTER ROLE "{READER_ROLE}" SET default_transaction_read_only = on')
                con.commit()
            except adbc.Error as exc:
                if "already exists" in str(exc):  # another process created it meanwhile
                    return
                raise WarehouseError(f"cannot create the read-only role {READER_ROLE} in {self.path}: {server_message(exc)}") from exc

    # --- the seam --------------------------------------------------------------

    def prefetch(
        self, notebook: str, requests: Sequence[PrefetchRequest], check: Callable[[Catalog], None] | None = None,
        *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        if not requests:
            return {}
        deadline = deadline or Deadline.unlimited("prefetch")
        rows: dict[str, int] = {}
        staged = fetched_sources(requests)  # source('x') reads: temporary tables of this transaction (postgres/sources.py)
        with self.connect(read_only=True) as con, con.cursor() as cur, \
                deadline.watching(con.adbc_cancel, notebook, "reading the catalog") as watch:
            try:
                catalog = self._begin_read(notebook, cur, with_catalog=check is not None, deadline=deadline,
                                           writable_temp=bool(staged))
            except adbc.Error as exc:
                raise WarehouseError(f"{notebook}: cannot read the catalog of {self.path}: {server_message(exc)}") from exc
            if check is not None and catalog is not None:
                check(catalog)  # the gate, then the host's fetch of the declared sources
            if staged:
                watch.at("reading the fetched sources into the prefetch's session")
                stage_sources(cur, notebook, requests, staged, self.read_dsn)
                cur.execute(READ_ONLY_AGAIN)  # before the notebook's first query; it cannot switch back
            for request in requests:
                watch.at(f"cell {request.cell}: SQL input {request.name!r}", request.cell)
                try:
                    reader = _execute(cur, request)
                    rows[request.name] = write_parquet(reader, request.dest)
                    _refuse_a_table_newer_than_the_snapshot(cur, notebook, request)
                except (adbc.Error, ParamTranslationError, pa.ArrowException, OSError) as exc:  # the stream raises OSError
                    raise WarehouseError(
                        f"{notebook}: cell {request.cell}: SQL input {request.name!r} failed: {server_message(exc)}",
                        cell=request.cell,
                    ) from exc
            con.rollback()
        return rows

    def _begin_read(self, notebook: str, cur: Any, *, with_catalog: bool, deadline: Deadline | None = None,
                    writable_temp: bool = False) -> Catalog | None:
        """Start the reader's transaction: one snapshot for the catalog and every query; nothing it runs can write.
        `writable_temp`: READ WRITE until the fetched sources are staged (only our own statements run until then)."""
        cur.execute(BEGIN_WRITABLE if writable_temp else "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute(f"SET LOCAL statement_timeout = {statement_timeout_ms(self.statement_timeout_s, deadline)}")
        cur.execute("SET LOCAL search_path = ''")  # the catalog's view definitions come out qualified
        self._refuse_a_writer(notebook, cur)
        catalog = read_pg_catalog(cur, self.path) if with_catalog else None
        cur.execute(f"SET LOCAL search_path = {DEFAULT_SCHEMA}")
        return catalog

    def read_catalog(self) -> Catalog:
        """The catalog as the read role sees it now (warehouse.backends.open_catalog, `nb-assets lineage`)."""
        with self.connect(read_only=True) as con, con.cursor() as cur:
            try:
                catalog = self._begin_read(self.path, cur, with_catalog=True)
            except adbc.Error as exc:
                raise WarehouseError(f"cannot read the catalog of {self.path}: {server_message(exc)}") from exc
            con.rollback()
        assert catalog is not None
        return catalog

    def _refuse_a_writer(self, notebook: str, cur: Any) -> None:
        cur.execute(_CAN_WRITE)
        found = cur.fetchall()
        if not found or found[0][0]:
            raise WarehouseError(
                f"{notebook}: prefetch refused: the read role of {redact(self.read_dsn)} can do more than SELECT "
                f"(a superuser, a member of {', '.join(_POWERFUL_ROLES)}, or holding write privileges); "
                f"give read_dsn a role that can only SELECT, e.g. a member of pg_read_all_data"
            )

    def load(
        self, notebook: str, outputs: Mapping[str, Path], checks: CheckRun | None = None, *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        from nb_assets.warehouse.postgres.load import load_tables

        return load_tables(self, notebook, outputs, checks, deadline)

    def load_partition(
        self, notebook: str, outputs: Mapping[str, Path], part: PartitionLoad, checks: CheckRun | None = None,
        *, deadline: Deadline | None = None,
    ) -> dict[str, int]:
        from nb_assets.warehouse.postgres.load import load_partition

        return load_partition(self, notebook, outputs, part, checks, deadline)

    def scratch_copy(self, dest: Path) -> PostgresWarehouse:
        """For a trial run: the same database, whose loads run in full and are then
        rolled back. Reads see the real tables (read-only); nothing is ever written."""
        return PostgresWarehouse(self.dsn, self.read_dsn, statement_timeout_s=self.statement_timeout_s, rollback_loads=True)

    def recorded_writers(self, tables: Sequence[str]) -> dict[str, Writer | None]:
        """Of `tables`, those that exist → the notebook their load recorded as writer (None: none recorded)."""
        if not tables:
            return {}
        with self.connect() as con, con.cursor() as cur:
            try:
                cur.execute(_COMMENTS)
                found = cur.fetchall()
            except adbc.Error as exc:
                raise WarehouseError(f"cannot read the tables of {self.path}: {server_message(exc)}") from exc
        wanted = {t.lower() for t in tables}
        return {name: writer_of(comment) for name, comment in found if name in wanted}

    def describe(self, table: str) -> TableDescription | None:
        schema, name = table.split(".")
        with self.connect() as con, con.cursor() as cur:
            try:
                cur.execute(
                    "SELECT column_name, upper(data_type) FROM information_schema.columns "
                    "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    (schema, name),
                )
                columns = cur.fetchall()
                if not columns:
                    return None
                cur.execute(f"SELECT count(*) FROM {quote_table(table)}")
                count = cur.fetchall()[0][0]
            except adbc.Error as exc:
                raise WarehouseError(f"cannot describe {table} in {self.path}: {server_message(exc)}") from exc
        return TableDescription(table, int(count), tuple((c, t) for c, t in columns))


def read_query(dsn: str, name: str, query: str, namespace: Mapping[str, Any]) -> pa.Table:
    """A person's `%%sql` query (warehouse.backends.query_interactive), through the prefetch itself:
    the read-only role, a READ ONLY transaction, the `$names` it uses bound from `namespace`."""
    import tempfile

    import pyarrow.parquet as pq

    _, names = to_positional(query, read=DIALECT)
    params = {n: namespace[n] for n in names if n in namespace}
    with tempfile.TemporaryDirectory(prefix="nb-assets-sql-") as folder:
        dest = Path(folder) / "input.parquet"
        PostgresWarehouse(dsn).prefetch("%%sql", [PrefetchRequest(name, query, params, 0, dest)])
        return pq.read_table(dest)


# The tables and materialized views this transaction has read so far (it holds a lock on each until it
# ends) whose catalog row its snapshot cannot see, or whose file changed since: created, swapped in, truncated
# or rewritten after the snapshot was taken. A query resolves names in the current catalog but reads rows
# as of its snapshot, so such a table reads as empty: DDL is not MVCC-safe. pg_identify_object and
# pg_relation_filenode look in the current catalog; `pg_class` in a query is read as of the snapshot.
_NEWER_THAN_THE_SNAPSHOT = """
    SELECT o.identity FROM pg_locks l, LATERAL pg_identify_object('pg_class'::regclass, l.relation, 0) o
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND o.type IN ('table', 'materialized view')
      AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = l.relation
                      AND (c.relfilenode = 0 OR c.relfilenode = pg_relation_filenode(l.relation)))
    ORDER BY 1
"""


def _refuse_a_table_newer_than_the_snapshot(cur: Any, notebook: str, request: PrefetchRequest) -> None:
    """After each input: an empty read of a table a load replaced meanwhile is an error, never a result.
    Loads replace the rows of a table whose columns stay (MVCC-safe: this snapshot reads the old rows);
    only a new table or new columns swap the relation (postgres/load.py), and land here."""
    cur.execute(_NEWER_THAN_THE_SNAPSHOT)
    replaced = [name for (name,) in cur.fetchall()]
    if replaced:
        request.dest.unlink(missing_ok=True)
        raise WarehouseError(
            f"{notebook}: cell {request.cell}: SQL input {request.name!r} read {', '.join(replaced)}, which was "
            "replaced, created or truncated after this prefetch's snapshot was taken (DDL, which Postgres does not "
            "version), so none of its rows were visible and nothing was read; retry: its table was replaced while it was read",
            cell=request.cell,
        )


def _execute(cur: Any, request: PrefetchRequest) -> pa.RecordBatchReader:
    """Run one query with its `$names` bound as typed parameters; a stream of batches.

    Postgres infers each parameter's type from where it is used (a date, an
    integer); the value is converted to that type here, as DuckDB would."""
    sql, names = to_positional(request.query, read=DIALECT)
    if not names:
        cur.execute(sql)
        return cur.fetch_record_batch()
    cur.adbc_prepare(sql)
    schema = pa.Schema._import_from_c_capsule(cur.adbc_statement.get_parameter_schema().__arrow_c_schema__())
    arrays = []
    for name, field in zip(names, schema):
        if name not in request.params:
            raise ParamTranslationError(f"${name} has no value")
        value = pa.array([request.params[name]])
        arrays.append(value if value.type == field.type else value.cast(field.type))
    cur.execute(sql, pa.RecordBatch.from_arrays(arrays, schema=schema))
    return cur.fetch_record_batch()

