"""NotebookRun → MaterializeResults with metadata, or a Dagster Failure."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from nb_assets.defs.failure_sensor import notebook_page_url
from nb_assets.runs.pipeline import NotebookRun

PREVIEW_ROWS = 10
PREVIEW_CHARS = 200  # per cell of the preview


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
    common.update(record_metadata(record))
    if "" in keys:
        yield dg.MaterializeResult(asset_key=keys[""], metadata=common)
        return
    for table, key in keys.items():
        yield dg.MaterializeResult(asset_key=key, metadata={**common, **table_metadata(run, table)})


def record_metadata(record: Mapping[str, Path]) -> dict[str, Any]:
    """The kept record: a link that opens the executed notebook in the UI, its file and its HTML
    rendering (server paths), and what was neutralized to make them safe to open, if anything."""
    metadata: dict[str, Any] = {}
    if "executed" in record:
        url = notebook_view_url(record["executed"])
        if url is not None:
            metadata["notebook/view"] = dg.MetadataValue.url(url)
        metadata["notebook/executed"] = dg.MetadataValue.notebook(str(record["executed"]))
    if "html" in record:
        metadata["notebook/html"] = dg.MetadataValue.path(str(record["html"]))
    safety = _record_safety(record.get("run"))
    if safety.get("neutralized") or safety.get("sanitized") is False:
        metadata["notebook/neutralized"] = dg.MetadataValue.json(safety)
    return metadata


def notebook_view_url(executed: Path) -> str | None:
    """The webserver's own page for the executed notebook (`/notebook?path=...&repoLocName=...`,
    the page the failure notice links to). Relative to the UI's root, so it opens on whichever host
    and port serve the UI; a UI under a path prefix needs the notices' absolute link instead. None
    outside a run launched from a code location (an in-process `materialize` has no webserver)."""
    try:
        run = dg.AssetExecutionContext.get().run
    except dg.DagsterInvariantViolationError:  # not inside a Dagster step
        return None
    return notebook_page_url("", run, str(executed))


def _record_safety(run_json: Path | None) -> dict[str, Any]:
    try:
        return dict(json.loads(run_json.read_text(encoding="utf-8")).get("record_safety") or {}) if run_json else {}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


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
        try:
            metadata["preview"] = dg.MetadataValue.md(markdown_table(first.schema.names, [_as_text(c) for c in first.columns]))
        except Exception:  # noqa: BLE001 - a value that will not print costs the preview, not the loaded run
            pass
    return metadata


def _as_text(column: Any) -> list[str | None]:
    """Arrow's own cast to text where it has one (it needs no pandas, even for nanosecond
    timestamps), Python's str of each value where it has none (lists, structs)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.cast(column, pa.string()).to_pylist()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return [None if v is None else str(v) for v in column.to_pylist()]


def markdown_table(names: Sequence[str], columns: Sequence[Sequence[Any]]) -> str:
    """A Markdown table of the columns' values as text: pipes escaped, each cell one line of at most
    PREVIEW_CHARS. Written here rather than with pandas and tabulate, which a step would import for it."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"

    lines = ["| " + " | ".join(cell(n) for n in names) + " |", "|" + "|".join(" --- " for _ in names) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in zip(*columns)]
    return "\n".join(lines)


def failure(run: NotebookRun, record: Mapping[str, Path]) -> dg.Failure:
    """A Dagster Failure a reader understands at a glance: the notebook, the cell in
    the author's numbering, its source with the failing line marked, the traceback."""
    from nb_assets.runs.failure import failure_context

    error = run.error
    context = failure_context(
        run.spec.path,
        getattr(error, "cell", None),
        record.get("executed"),
        result_file=run.folder.result_file,
        ename=getattr(error, "ename", None),
        evalue=getattr(error, "evalue", None),
    )
    metadata: dict[str, Any] = {
        "notebook/path": run.spec.path,
        "notebook/error": dg.MetadataValue.json(
            {"kind": getattr(error, "kind", "error"), "type": context.ename, "message": context.evalue or str(error)}
        ),
        "notebook/parameters": dg.MetadataValue.json(run.parameters),
        "notebook/record": dg.MetadataValue.path(str(run.folder.record_dir)),
        "notebook/sandbox": dg.MetadataValue.json(run.sandbox),
    }
    metadata.update(record_metadata(record))
    if run.check_outcomes:  # which checks blocked, how many rows, up to 10 of them (the output's data: its zones)
        metadata["notebook/output_checks"] = dg.MetadataValue.json([o.as_json() for o in run.check_outcomes])
    if context.cell is not None:
        metadata["notebook/failed_cell"] = context.cell
    if context.cell_source is not None:
        metadata["notebook/cell_source"] = dg.MetadataValue.md(f"```\n{context.excerpt()}\n```")
    if context.traceback:
        metadata["notebook/traceback"] = dg.MetadataValue.md(f"```\n{context.traceback}\n```")
    details = context.describe()
    description = f"{error}\n\n{details}" if details else str(error)
    return dg.Failure(description=description, metadata=metadata, allow_retries=False)


def refusal(path: str, error: Exception, parameters: Mapping[str, Any]) -> dg.Failure:
    """A run refused before anything ran (policy, static checks, parameters): says why."""
    metadata = {
        "notebook/path": path,
        "notebook/parameters": dg.MetadataValue.json(dict(parameters)),
        "notebook/refused": getattr(error, "kind", "error"),
        "notebook/error": dg.MetadataValue.json({"kind": getattr(error, "kind", "error"), "type": None, "message": str(error)}),
    }
    return dg.Failure(description=str(error), metadata=metadata, allow_retries=False)
