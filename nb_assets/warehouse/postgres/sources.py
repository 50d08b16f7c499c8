"""Declared sources read in a SQL input on Postgres: the fetched copies as temporary tables of the prefetch.

The host fetched each source into the run folder as Parquet (nb_assets.sources).
A query reading `source('x')` is compiled to the relation `nb_assets_source_x`
(sql/source_calls.py); on DuckDB that relation is a registered Arrow table, here
it is a temporary table of the reader's own session, made inside the prefetch's
transaction:

    BEGIN ISOLATION LEVEL REPEATABLE READ, READ WRITE   (the reader login; only our statements)
      catalog read, policy gate, fetch          ← the check, as on DuckDB
      CREATE TEMPORARY TABLE ... ; COPY          ← stage_sources (ADBC ingest)
    SET TRANSACTION READ ONLY                    ← before the notebook's first query
      the notebook's queries                     ← cannot write, cannot undo READ ONLY
    ROLLBACK                                     ← the temporary tables go with it

So nothing is left in the warehouse (a temporary table lives in the session's
own schema and this transaction only; a dropped connection drops it too),
and the notebook's SQL still runs as the reader, in a READ ONLY transaction.
Postgres accepts READ ONLY at any point of a transaction, but READ WRITE only
before its first query, so a query cannot switch back (`set_config` included).
The reader needs TEMPORARY on the database (PUBLIC has it by default; the
deployment grants it, warehouse/postgres/roles.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import adbc_driver_postgresql.dbapi as adbc

from nb_assets.errors import WarehouseError
from nb_assets.warehouse.base import PrefetchRequest, ident
from nb_assets.warehouse.postgres.driver import read_parquet_batches, server_message

BEGIN_WRITABLE = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE"
READ_ONLY_AGAIN = "SET TRANSACTION READ ONLY"


def fetched_sources(requests: Sequence[PrefetchRequest]) -> dict[str, Path]:
    """Relation → fetched Parquet, over every request (a source two inputs read is staged once)."""
    found: dict[str, Path] = {}
    for request in requests:
        found.update(request.sources)
    return found


def cell_of(requests: Sequence[PrefetchRequest], relation: str) -> PrefetchRequest:
    return next(r for r in requests if relation in r.sources)


def stage_sources(
    cur: Any, notebook: str, requests: Sequence[PrefetchRequest], staged: Mapping[str, Path], read_dsn: str,
) -> None:
    """Each fetched copy as a temporary table named by its relation, in the open transaction of `read_dsn`'s login."""
    for relation, path in staged.items():
        request = cell_of(requests, relation)
        name = relation.removeprefix("nb_assets_source_")
        where = f"{notebook}: cell {request.cell}: SQL input {request.name!r}: source({name!r})"
        if not Path(path).is_file():  # fetched before the queries, unless the run did not declare it
            raise WarehouseError(f"{where}: the host has no fetched copy of it ({path})", cell=request.cell)
        try:
            cur.adbc_ingest(relation, read_parquet_batches(Path(path)), mode="create", temporary=True)
        except adbc.Error as exc:
            hint = ""
            if "permission denied" in str(exc).lower():
                parts = urlsplit(read_dsn)
                database, login = ident(unquote(parts.path.lstrip("/")) or "postgres"), ident(unquote(parts.username or ""))
                hint = f"; the read login may not create temporary tables here: GRANT TEMPORARY ON DATABASE {database} TO {login}"
            raise WarehouseError(
                f"{where}: cannot make the fetched copy readable in the prefetch's session: {server_message(exc)}{hint}",
                cell=request.cell,
            ) from exc
