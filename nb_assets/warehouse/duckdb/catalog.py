"""Read a DuckDB warehouse's catalog: its tables, views and macros, as plain data.

The only DuckDB-specific half of seeing through views and macros; the
resolution itself is pure (catalog_lineage). warehouse/postgres/catalog.py fills the same
`Catalog` from a Postgres warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nb_assets.sql.see_through import Catalog, Macro
from nb_assets.warehouse.base import first_line

if TYPE_CHECKING:
    import duckdb

# User objects of the open database only: built-ins are `internal`, and
# another attached database would be none of the warehouse's business.
_RELATIONS = """
    SELECT schema_name || '.' || table_name FROM duckdb_tables()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
    UNION ALL
    SELECT schema_name || '.' || view_name FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
"""
_VIEWS = """
    SELECT schema_name || '.' || view_name, sql FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
"""
_MACROS = """
    SELECT schema_name || '.' || function_name, function_type = 'table_macro', macro_definition
    FROM duckdb_functions()
    WHERE database_name = current_database() AND NOT internal
      AND function_type IN ('macro', 'table_macro')
    ORDER BY ALL
"""


def read_catalog(con: duckdb.DuckDBPyConnection, warehouse: str) -> Catalog:
    """The catalog as `con` sees it (its transaction's snapshot)."""
    relations = frozenset(name.lower() for (name,) in con.execute(_RELATIONS).fetchall())
    views = {name.lower(): sql for name, sql in con.execute(_VIEWS).fetchall()}
    macros: dict[str, tuple[Macro, ...]] = {}
    for name, table, body in con.execute(_MACROS).fetchall():
        macros[name.lower()] = (*macros.get(name.lower(), ()), Macro(bool(table), body or ""))
    return Catalog(warehouse, relations, views, macros)


def open_duckdb_catalog(path: str | Path) -> Catalog | str:
    """The catalog of the DuckDB file at `path`, or in one line why it cannot be read now (no waiting on a lock)."""
    if not Path(path).exists():
        return f"warehouse {path} does not exist"
    import duckdb  # only once there is a file to open: loading definitions without one skips its import

    try:
        config = {"enable_external_access": False}
        with duckdb.connect(str(path), read_only=True, config=config) as con:
            return read_catalog(con, str(path))
    except duckdb.Error as exc:
        return f"warehouse {path} cannot be opened ({first_line(exc)})"
