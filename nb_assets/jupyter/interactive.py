"""A person's `%%sql` in Jupyter: the query reads the warehouse, read-only, and nothing is written.

The warehouse is `NB_ASSETS_WAREHOUSE` (a DuckDB file, or a postgresql:// URL
queried exactly as a scheduled prefetch would), else `warehouse.duckdb` in the
working folder or a parent; `$params` are bound from the notebook's variables.
Host only: notebook.py imports this inside its magic, so the sandbox, which has
the runtime alone, never does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.warehouse.backends import query_interactive

if TYPE_CHECKING:
    import pyarrow as pa

# A scheduled load holds the warehouse's write lock for a moment: wait for it (bounded), as the host does.
INTERACTIVE_LOCK_WAIT_S = 30.0


def interactive_input(query: str, namespace: Mapping[str, Any], name: str = "sql") -> pa.Table:
    """The rows of `%%sql name` as Arrow (notebook.py turns them into the same DataFrame a scheduled run gets)."""
    location = os.environ.get("NB_ASSETS_WAREHOUSE") or find_warehouse()
    return query_interactive(location, name, query, namespace, lock_wait_s=INTERACTIVE_LOCK_WAIT_S)


def find_warehouse() -> str:
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "warehouse.duckdb").exists():
            return str(folder / "warehouse.duckdb")
    raise FileNotFoundError("no warehouse.duckdb here or above; set NB_ASSETS_WAREHOUSE")
