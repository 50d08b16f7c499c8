"""The runtime a notebook imports: the `%%sql` cell magic and `output()`.

Depends on pandas, pyarrow and IPython only, because it runs inside the
sandbox image. Two modes, chosen by the environment the host sets:

- run (`NB_ASSETS_MODE=run`, inside a sandbox): `%%sql name` loads the Parquet
  file the host prefetched for that cell, after checking the query text is the
  one that was prefetched; `output()` writes Parquet into the outputs folder.
- interactive (a person in Jupyter): `%%sql name` queries the warehouse
  read-only (`NB_ASSETS_WAREHOUSE`: a DuckDB file, default `warehouse.duckdb`
  in the working folder or a parent, or a postgresql:// URL, queried exactly
  as a scheduled prefetch would), binding `$params` from the notebook's
  variables; `output()` shows a preview and writes nothing; `%nb_context`
  shows the notebook's declaration and last runs (host only: nb_assets.jupyter.context_pane).

    %load_ext nb_assets.notebook
    from nb_assets.notebook import output
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The contract with the host (the sandbox gets a copy of it beside this file),
# re-exported: nb_assets.notebook.TABLE_NAME and the others keep working.
from nb_assets.inbox.contract import MANIFEST, TABLE_NAME, output_file_name, query_fingerprint  # noqa: F401

if TYPE_CHECKING:  # imported lazily: the host imports this module for its constants
    import pandas as pd


def _mode() -> str:
    return os.environ.get("NB_ASSETS_MODE", "interactive")


def output(table: str, df: pd.DataFrame) -> None:
    """Declare `df` as the contents of warehouse table `schema.table`.

    The name must be a string literal in the notebook source: outputs are
    read statically before the notebook runs.
    """
    import pandas as pd

    if not isinstance(table, str) or not TABLE_NAME.match(table):
        raise ValueError(f"output name {table!r} must be a lowercase 'schema.table' literal")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"output({table!r}, ...) takes a pandas DataFrame, got {type(df).__name__}")
    if _mode() == "run":
        _write_output(Path(os.environ["NB_ASSETS_OUTPUT_DIR"]) / output_file_name(table), table, df)
        return
    from IPython.display import display

    print(f"output {table}: {len(df)} rows (preview; nothing is written outside a scheduled run)")
    display(df.head(10))


def _write_output(path: Path, table: str, df: pd.DataFrame) -> None:
    """Never write through a link planted in the outputs folder: it could point anywhere."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise PermissionError(f"output {table}: {path.name} is not a regular file; refusing to write through it")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        df.to_parquet(f, index=False)


def _run_mode_input(name: str, query: str) -> pd.DataFrame:
    folder = Path(os.environ["NB_ASSETS_INPUT_DIR"])
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    entry = manifest.get(name)
    if entry is None:
        raise RuntimeError(f"SQL input {name!r} was not prefetched; declare it in its own %%sql cell")
    if entry["fingerprint"] != query_fingerprint(query):
        raise RuntimeError(f"SQL input {name!r} differs from the query that was prefetched")
    import pyarrow.parquet as pq

    return _to_pandas(pq.read_table(folder / entry["file"]))


def _to_pandas(table: Any) -> pd.DataFrame:
    """One Arrow → pandas conversion for scheduled and interactive runs alike.

    Decimals become floats (pandas has no decimal dtype); DATE columns stay
    `datetime.date` objects so an output written back keeps the DATE type.
    """
    import pyarrow as pa

    schema = pa.schema([f.with_type(pa.float64()) if pa.types.is_decimal(f.type) else f for f in table.schema])
    return table.cast(schema).to_pandas()


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext nb_assets.notebook` registers `%%sql <name>` and `%nb_context`."""

    def sql(line: str, cell: str) -> None:
        name = line.strip()
        if not name.isidentifier():
            raise ValueError(f"%%sql needs a variable name, e.g. `%%sql orders`; got {line!r}")
        if _mode() == "run":
            df = _run_mode_input(name, cell)
        else:
            # A host module, imported only interactively: the sandbox has only this runtime.
            from nb_assets.jupyter.interactive import interactive_input

            df = _to_pandas(interactive_input(cell, ipython.user_ns, name))
        ipython.user_ns[name] = df

    ipython.register_magic_function(sql, magic_kind="cell", magic_name="sql")

    def nb_context(line: str) -> None:
        """`%nb_context [NOTEBOOK]`: this notebook's declaration, lineage, zones and last runs."""
        # A host module, imported only when asked for: the sandbox has only this runtime.
        from nb_assets.jupyter.context_pane import show_context

        show_context(line.strip().strip("'\"") or None, ipython.user_ns)  # a quoted path works too

    ipython.register_magic_function(nb_context, magic_kind="line", magic_name="nb_context")

    def nb_schedule(line: str) -> None:
        """`%nb_schedule [NOTEBOOK]`: the Schedule form (host only); a scheduled run skips it."""
        if _mode() != "run":
            from nb_assets.jupyter.schedule_form import show_schedule_form

            show_schedule_form(line.strip().strip("'\"") or None, ipython.user_ns)

    ipython.register_magic_function(nb_schedule, magic_kind="line", magic_name="nb_schedule")
