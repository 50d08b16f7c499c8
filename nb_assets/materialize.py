"""NotebookRun → MaterializeResults with metadata, or a Failure; and the run record.

The record of a run (executed notebook, its HTML rendering, parameters and
verdict) is kept read-only under the Dagster storage folder, one folder per
run, so it is never overwritten.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from nb_assets.execute import NotebookRun

PREVIEW_ROWS = 10


def keep_record(run: NotebookRun, extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Render HTML, write run.json and make the record read-only."""
    record = run.folder.record_dir
    files = {"executed": run.executed_notebook, "html": record / "executed.html", "run": record / "run.json"}
    if run.executed_notebook.exists():
        files["html"].write_text(render_html(run.executed_notebook), encoding="utf-8")
    files["run"].write_text(json.dumps(run_summary(run, extra), indent=2, default=str), encoding="utf-8")
    for path in record.iterdir():
        if not path.is_symlink():  # chmod would follow a link out of the record
            os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return {k: v for k, v in files.items() if v.exists()}


def render_html(executed: Path) -> str:
    import nbconvert  # imported late: it is slow to import and only needed here

    body, _ = nbconvert.HTMLExporter().from_filename(str(executed))
    return body


def run_summary(run: NotebookRun, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The machine-readable verdict, shared by run.json and `nb-assets run --json`."""
    error = None
    if run.error is not None:
        error = {
            "cell": getattr(run.error, "cell", None),
            "type": getattr(run.error, "kind", type(run.error).__name__),
            "message": str(run.error),
        }
    return {
        "notebook": run.spec.path,
        "status": run.status,
        "error": error,
        "parameters": run.parameters,
        "inputs": [
            {"name": i.name, "tables": list(i.tables), "rows": run.input_rows.get(i.name)} for i in run.spec.inputs
        ],
        "outputs": [{"table": t, "rows": rows} for t, rows in run.loaded_rows.items()],
        "sandbox": run.sandbox,
        "duration_s": round(run.duration_s, 3),
        "executed_notebook": str(run.executed_notebook),
        **dict(extra or {}),
    }


def materialize_results(
    run: NotebookRun,
    keys: Mapping[str, dg.AssetKey],
    record: Mapping[str, Path],
    extra: Mapping[str, Any] | None = None,
) -> Iterator[dg.MaterializeResult]:
    """One result per output table (`keys`: table → key), or one for a report (key under "")."""
    common: dict[str, Any] = {
        "notebook/parameters": dg.MetadataValue.json(run.parameters),
        "notebook/inputs": dg.MetadataValue.json(
            {i.name: {"tables": list(i.tables), "rows": run.input_rows.get(i.name)} for i in run.spec.inputs}
        ),
        "notebook/sandbox": dg.MetadataValue.json(run.sandbox),
        "notebook/duration_s": round(run.duration_s, 3),
        **{k: dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v for k, v in (extra or {}).items()},
    }
    if "executed" in record:
        common["notebook/executed"] = dg.MetadataValue.notebook(str(record["executed"]))
    if "html" in record:
        common["notebook/html"] = dg.MetadataValue.path(str(record["html"]))
    if "" in keys:
        yield dg.MaterializeResult(asset_key=keys[""], metadata=common)
        return
    for table, key in keys.items():
        yield dg.MaterializeResult(asset_key=key, metadata={**common, **table_metadata(run, table)})


def table_metadata(run: NotebookRun, table: str) -> dict[str, Any]:
    """Rows, schema and a preview, read from the output file just loaded."""
    path = run.output_files.get(table)
    metadata: dict[str, Any] = {"dagster/row_count": run.loaded_rows.get(table, 0), "table": table}
    if path is None or not path.exists():
        return metadata
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    metadata["dagster/column_schema"] = dg.TableSchema(
        columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema]
    )
    if parquet.metadata.num_rows:
        head = parquet.read_row_group(0).slice(0, PREVIEW_ROWS).to_pandas()
        metadata["preview"] = dg.MetadataValue.md(head.to_markdown(index=False))
    return metadata


def failure(run: NotebookRun, record: Mapping[str, Path]) -> dg.Failure:
    """A Dagster Failure naming the notebook, the cell and the exception."""
    metadata: dict[str, Any] = {"notebook/sandbox": dg.MetadataValue.json(run.sandbox)}
    if "executed" in record:
        metadata["notebook/executed"] = dg.MetadataValue.notebook(str(record["executed"]))
    if "html" in record:
        metadata["notebook/html"] = dg.MetadataValue.path(str(record["html"]))
    cell = getattr(run.error, "cell", None)
    if cell is not None:
        metadata["notebook/failed_cell"] = cell
    return dg.Failure(description=str(run.error), metadata=metadata, allow_retries=False)
