"""Read a Postgres warehouse's catalog: tables, views, materialized views and
SQL functions, as the same plain `Catalog` DuckDB's catalog.py fills.

The resolution itself stays pure (catalog_lineage). Runs on the prefetch's own
read-only connection and snapshot, before any query, with an empty
search_path, so `pg_get_viewdef` qualifies every name it prints.
"""

from __future__ import annotations

from typing import Any

from nb_assets.sql.see_through import Catalog, Macro

# User schemas only: the system's own objects are no notebook's lineage.
_USER_SCHEMA = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
_RELATIONS = f"""
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_SCHEMA}
"""
_FOREIGN = f"""
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'f' AND {_USER_SCHEMA}
"""
_VIEWS = f"""
    SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid) FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND {_USER_SCHEMA}
"""
# Every user function, whatever its language: a body that is not SQL cannot be
# seen through, so its calls are refused rather than trusted.
_FUNCTIONS = f"""
    SELECT n.nspname || '.' || p.proname, p.proretset, l.lanname,
           CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
    WHERE p.prokind = 'f' AND {_USER_SCHEMA}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1
"""


def read_pg_catalog(cursor: Any, warehouse: str) -> Catalog:
    """The catalog as `cursor`'s transaction sees it (a DB-API cursor on Postgres)."""
    cursor.execute(_RELATIONS)
    relations = frozenset(name.lower() for (name,) in cursor.fetchall())
    cursor.execute(_VIEWS)
    views = {name.lower(): f"CREATE VIEW {name} AS {body.strip()}" for name, body in cursor.fetchall()}
    cursor.execute(_FUNCTIONS)
    macros: dict[str, tuple[Macro, ...]] = {}
    for name, returns_set, language, body in cursor.fetchall():
        macros[name.lower()] = (*macros.get(name.lower(), ()), _macro(bool(returns_set), language, body or ""))
    cursor.execute(_FOREIGN)
    foreign = frozenset(name.lower() for (name,) in cursor.fetchall())
    return Catalog(warehouse, relations, views, macros, dialect="postgres", foreign=foreign)


def _macro(returns_set: bool, language: str, body: str) -> Macro:
    text = body.strip().rstrip(";").strip()
    if language != "sql":
        # Not SQL: what it reads cannot be known. A body that fails to parse makes
        # catalog_lineage refuse every query that calls it, naming the function.
        return Macro(True, f"<a {language} function: what it reads cannot be seen>")
    if text.upper().startswith("BEGIN ATOMIC"):
        text = text[len("BEGIN ATOMIC") :].strip().removesuffix("END").strip().rstrip(";")
    # A SQL function's body is a whole query, also when it returns a scalar.
    return Macro(returns_set, text if returns_set else f"({text})")
