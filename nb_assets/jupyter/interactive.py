"""A person's `%%sql` and `%%source` in Jupyter: the query reads the warehouse, read-only, and nothing is written.

The warehouse is `NB_ASSETS_WAREHOUSE` (a DuckDB file, or a postgresql:// URL
queried exactly as a scheduled prefetch would), else `warehouse.duckdb` in the
working folder or a parent; `$params` are bound from the notebook's variables.
Host only: notebook.py imports this inside its magic, so the sandbox, which has
the runtime alone, never does.

A mistake in the cell (a misspelled table, an undeclared source) is a CellInputError:
IPython shows what its `_render_traceback_` gives, one line, as the cell's error
output, so Jupyter shows the message alone, Run All stops there and papermill's
error carries it (IPython's UsageError would go to stderr instead, and leave a
scripted run's error empty). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.errors import NbAssetsError
from nb_assets.warehouse.backends import is_query_mistake, query_interactive

if TYPE_CHECKING:
    import pyarrow as pa

# A scheduled load holds the warehouse's write lock for a moment: wait for it (bounded), as the host does.
INTERACTIVE_LOCK_WAIT_S = 30.0


def interactive_input(query: str, namespace: Mapping[str, Any], name: str = "sql") -> pa.Table:
    """The rows of `%%sql name` as Arrow (notebook.py turns them into the same DataFrame a scheduled run gets)."""
    magic = "%sql" if name == "sql" else f"%%sql {name}"  # "sql": one of jupysql's forms, which has no name
    try:
        location = os.environ.get("NB_ASSETS_WAREHOUSE") or find_warehouse()
    except FileNotFoundError as exc:
        raise CellInputError(f"{magic}: {exc}") from None
    try:
        return query_interactive(location, name, query, namespace, lock_wait_s=INTERACTIVE_LOCK_WAIT_S)
    except Exception as exc:
        if not (isinstance(exc, NbAssetsError) or is_query_mistake(exc)):
            raise  # a bug: its traceback is what finds it
        raise CellInputError(f"{magic}: {_query_problem(query, location, exc)}") from None


def interactive_source_table(var: str, name: str, namespace: Mapping[str, Any]) -> pa.Table:
    """`%%source var name`: the declared source as Arrow, fetched as a scheduled run would."""
    from nb_assets.jupyter.sources import interactive_source

    try:
        return interactive_source(name, namespace)
    except NbAssetsError as exc:  # DeclarationError, SourceFetchError: their message says what to fix
        message = str(exc)
        raise CellInputError(message if message.startswith("%%source") else f"%%source {var} {name}: {message}") from None


def find_warehouse() -> str:
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "warehouse.duckdb").exists():
            return str(folder / "warehouse.duckdb")
    raise FileNotFoundError("no warehouse.duckdb here or above; set NB_ASSETS_WAREHOUSE")


def _query_problem(query: str, location: str, exc: BaseException) -> str:
    """`no such table raw.web_event (did you mean raw.web_events?)`, as check and %nb_context say it,
    when the warehouse lacks a table the query reads; else the engine's or the project's own message."""
    from nb_assets.locations import dialect_of, redact
    from nb_assets.sql.lineage import analyze_query
    from nb_assets.sql.see_through import Catalog
    from nb_assets.sql.table_names import missing, no_such_table
    from nb_assets.warehouse.backends import open_catalog

    catalog = open_catalog(location)
    tables = analyze_query(query, dialect=dialect_of(location)).tables
    absent = missing(tables, catalog.relations) if isinstance(catalog, Catalog) else []
    if not absent:
        return str(exc)
    said = "; ".join(no_such_table(t, catalog.relations) for t in absent)  # type: ignore[union-attr]
    return f"{said} in the warehouse {redact(location)}: correct the table name in the cell's query and run it again"


class CellInputError(Exception):
    """A mistake in the cell's input, said in one line without a traceback (IPython's `_render_traceback_`)."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]
