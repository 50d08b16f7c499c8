"""The runtime a notebook imports: the `%%sql` and `%%source` cell magics and `output()`.

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
    from nb_assets.notebook import output, unique, not_null   # and the other checks
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The contract with the host (the sandbox gets a copy of it beside this file),
# re-exported: nb_assets.notebook.TABLE_NAME and the others keep working.
from nb_assets.inbox.contract import MANIFEST, TABLE_NAME, output_file_name, query_fingerprint  # noqa: F401
# Output checks (docs/checks.md): the host reads them from the source and runs them inside the load.
from nb_assets.inbox.checks import (  # noqa: F401
    OutputCheck, accepted_values, check_list, freshness_column, not_null, relationships, row_count, sql, unique,
)

if TYPE_CHECKING:  # imported lazily: the host imports this module for its constants
    import pandas as pd


def _mode() -> str:
    return os.environ.get("NB_ASSETS_MODE", "interactive")


def output(table: str, df: pd.DataFrame, checks: list[OutputCheck] | None = None) -> None:
    """Declare `df` as the contents of warehouse table `schema.table`.

    The name must be a string literal in the notebook source: outputs are
    read statically before the notebook runs. So are `checks` (literal
    arguments only): the host runs them inside the load, before it commits;
    here they are only validated.
    """
    import pandas as pd

    if not isinstance(table, str) or not TABLE_NAME.match(table):
        raise ValueError(f"output name {table!r} must be a lowercase 'schema.table' literal")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"output({table!r}, ...) takes a pandas DataFrame, got {type(df).__name__}")
    declared = check_list(table, checks)
    if _mode() == "run":
        _write_output(Path(os.environ["NB_ASSETS_OUTPUT_DIR"]) / output_file_name(table), table, df)
        return
    from IPython.display import display

    print(f"output {table}: {len(df)} rows (preview; nothing is written outside a scheduled run)")
    if declared:
        print(f"checks, run by the load before it commits: {', '.join(c.describe() for c in declared)}")
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
    return _read_prefetched(folder / entry["file"])


def _read_prefetched(path: Path) -> pd.DataFrame:
    """ParquetFile, not read_table: a query may name a column twice (`SELECT *` over a join), as jupysql shows it."""
    import pyarrow.parquet as pq

    return _to_pandas(pq.ParquetFile(path).read())


def _prefetched(query: str) -> pd.DataFrame:
    """A jupysql form's result: the prefetched file whose query is this one (the host names it by cell)."""
    folder = Path(os.environ["NB_ASSETS_INPUT_DIR"])
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    fingerprint = query_fingerprint(query)
    entry = next((e for e in manifest.values() if e["fingerprint"] == fingerprint), None)
    if entry is None:
        raise RuntimeError(f"this query was not prefetched (is it built at run time?): {query.strip()[:80]!r}")
    return _read_prefetched(folder / entry["file"])


def _accept_sqlmagic_config(ipython: Any) -> None:
    """`%config SqlMagic.x = y` (jupysql's display settings) must not fail where jupysql is absent.

    When jupysql is loaded it registers its own SqlMagic configurable and this one is never seen.
    """
    from IPython.core.magic import Magics, magics_class  # a traitlets Configurable that IPython itself provides

    if not any(type(c).__name__ == "SqlMagic" for c in getattr(ipython, "configurables", [])):
        settings = magics_class(type("SqlMagic", (Magics,), {"__doc__": "jupysql's settings; ignored by nb_assets"}))
        ipython.configurables.append(settings(shell=ipython))


def _run_mode_source(name: str) -> pd.DataFrame:
    """The copy of a declared source the host fetched before the run (never the source itself: no network here)."""
    folder = Path(os.environ["NB_ASSETS_INPUT_DIR"])
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    entry = manifest.get(f"source:{name}")
    if entry is None:
        raise RuntimeError(f"source {name!r} was not fetched for this run; read it in its own `%%source <var> {name}` cell")
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


def _source_cell_as_line_magic(lines: list[str]) -> list[str]:
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or not lines[first].lstrip().startswith("%%source") or any(line.strip() for line in lines[first + 1 :]):
        return lines
    return [f"get_ipython().run_line_magic('source', {lines[first].strip()[len('%%source'):].strip()!r})\n"]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext nb_assets.notebook` registers `%%sql <name>` and `%nb_context`."""

    from nb_assets.inbox.jupysql import Session

    session = Session()  # jupysql's forms: snippets saved by `--save` in this kernel

    def fetch(query: str, name: str | None = None) -> pd.DataFrame:
        if _mode() == "run":  # by name for `%%sql name`; jupysql's forms by the query they run
            return _run_mode_input(name, query) if name else _prefetched(query)
        # A host module, imported only interactively: the sandbox has only this runtime.
        from nb_assets.jupyter.interactive import interactive_input

        return _to_pandas(interactive_input(query, ipython.user_ns, name or "sql"))

    def sql(line: str, cell: str | None = None) -> pd.DataFrame | None:
        name = line.strip()
        if cell is not None and name.isidentifier():  # nb_assets' own `%%sql name`
            ipython.user_ns[name] = fetch(cell, name)
            return None
        return session.run(line, cell, ipython.user_ns, lambda target, query: fetch(query))

    # One magic for both kinds: `%%sql ...` cells and jupysql's `%sql ...` lines.
    ipython.register_magic_function(sql, magic_kind="line_cell", magic_name="sql")
    _accept_sqlmagic_config(ipython)

    def source(line: str, cell: str | None = None) -> None:
        """`%%source <var> <name>`: the declared source `name` as a DataFrame bound to `var`."""
        words = line.split()
        if len(words) != 2 or not words[0].isidentifier():
            raise ValueError(f"%%source takes a variable and a declared source, e.g. `%%source rates partner_rates`; got {line!r}")
        var, name = words
        if _mode() == "run":
            df = _run_mode_source(name)
        else:
            # A host module, imported only interactively: it fetches through the project's own code.
            from nb_assets.jupyter.interactive import interactive_source_table

            df = _to_pandas(interactive_source_table(var, name, ipython.user_ns))
        ipython.user_ns[var] = df

    ipython.register_magic_function(source, magic_kind="line_cell", magic_name="source")
    # IPython refuses a cell magic whose body is empty, and a `%%source` cell is one line:
    # run that cell as the line magic instead (before IPython's own magic transforms).
    ipython.input_transformers_cleanup.append(_source_cell_as_line_magic)

    def nb_context(line: str) -> None:
        """`%nb_context [NOTEBOOK]`: this notebook's declaration, lineage, zones and last runs (host only);
        a scheduled run skips it, as it does %nb_schedule."""
        if _mode() != "run":  # a host module, imported only when asked for: the sandbox has only this runtime
            from nb_assets.jupyter.context_pane import show_context

            show_context(line.strip().strip("'\"") or None, ipython.user_ns)  # a quoted path works too

    ipython.register_magic_function(nb_context, magic_kind="line", magic_name="nb_context")

    def nb_schedule(line: str) -> None:
        """`%nb_schedule [NOTEBOOK]`: the Schedule form (host only); a scheduled run skips it."""
        if _mode() != "run":
            from nb_assets.jupyter.schedule_form import show_schedule_form

            show_schedule_form(line.strip().strip("'\"") or None, ipython.user_ns)

    ipython.register_magic_function(nb_schedule, magic_kind="line", magic_name="nb_schedule")
