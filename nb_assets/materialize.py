"""NotebookRun → MaterializeResults with metadata, or a Dagster Failure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.host_pipeline import NotebookRun

PREVIEW_ROWS = 10


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
    import pyarrow.parquet as pq

    path = run.output_files.get(table)
    metadata: dict[str, Any] = {"dagster/row_count": run.loaded_rows.get(table, 0), "table": table}
    if path is None or not path.exists():
        return metadata
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    metadata["dagster/column_schema"] = dg.TableSchema(
        columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema]
    )
    first = next(parquet.iter_batches(batch_size=PREVIEW_ROWS), None)  # not a whole row group
    if first is not None and first.num_rows:
        metadata["preview"] = dg.MetadataValue.md(first.to_pandas().to_markdown(index=False))
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
