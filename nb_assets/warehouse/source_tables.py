"""A table in another database, read for a declared `connection` source (nb_assets.sources.fetch).

The drivers live here because only the warehouse package imports them. Every
database is opened read-only where the engine allows it: Postgres in a
READ ONLY transaction (ADBC, the driver the warehouse already uses), a DuckDB
file with `read_only=True`, a SQLite file through `mode=ro`. The DSN comes from
the host's environment (NB_ASSETS_CONNECTION_<NAME>), never from a declaration.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nb_assets.errors import SourceFetchError, WarehouseError
from nb_assets.locations import redact
from nb_assets.warehouse.base import quote_table


def read_table(dsn: str, table: str, dest: Path) -> tuple[int, int]:
    """Write all of `table` at `dsn` to `dest` as Parquet; returns (rows, bytes written)."""
    where = f"table {table} at {redact(dsn)}"
    if "." not in table:
        table = f"{'public' if dsn.lower().startswith(('postgres://', 'postgresql://')) else 'main'}.{table}"
    try:
        arrow = _read(dsn, table)
    except SourceFetchError:
        raise
    except WarehouseError as exc:
        raise SourceFetchError(f"{where}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - each driver has its own error tree; the message says which
        raise SourceFetchError(f"{where}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow, dest)
    return arrow.num_rows, dest.stat().st_size


def _read(dsn: str, table: str) -> pa.Table:
    lowered = dsn.lower()
    if lowered.startswith(("postgres://", "postgresql://")):
        from nb_assets.warehouse.postgres.driver import connect

        with connect(dsn) as con, con.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(f"SELECT * FROM {quote_table(table)}")
            return cur.fetch_arrow_table()
    path = dsn.split("://", 1)[1] if "://" in dsn else dsn
    if lowered.startswith("sqlite:") or lowered.endswith((".sqlite", ".sqlite3", ".db")):
        import sqlite3

        if not Path(path).is_file():
            raise SourceFetchError(f"no such SQLite file {path}")
        with sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True) as con:
            cur = con.execute(f'SELECT * FROM "{table.split(".", 1)[1]}"' if table.startswith("main.") else f"SELECT * FROM {quote_table(table)}")
            names = [d[0] for d in cur.description]
            return pa.Table.from_pylist([dict(zip(names, row)) for row in cur.fetchall()])
    import duckdb

    if not Path(path).is_file():
        raise SourceFetchError(f"no such DuckDB file {path}")
    with duckdb.connect(path, read_only=True, config={"enable_external_access": False}) as con:
        return con.execute(f"SELECT * FROM {quote_table(table)}").fetch_arrow_table()
