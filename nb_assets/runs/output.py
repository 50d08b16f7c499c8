"""What a terminal is told about one run: the files it kept and, for a failure, where
the notebook failed and how to see more.

Shared by `nb-assets run`, `nb-assets backfill` and `nb-assets schedule`'s
trial runs, so each names only files that exist (never a Python `None`) and a
failure reads the same everywhere: the failing cell with the failing line
marked and the trimmed traceback (failure_context, as on the Dagster side),
then `details: nb-assets show <run id>`; and what a --force run replaced reads
the same in `nb-assets run` and `nb-assets show`. Pure: reads the record's files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nb_assets.runs.failure import failure_context
from nb_assets.runs.history import project_dir_of, record_roots


def record_lines(executed: str | Path | None, html: str | Path | None = None, record: str | Path | None = None) -> list[str]:
    """Only files that exist: a run stopped before its kernel started has no executed notebook."""
    if executed is None:
        where = f"; record: {record}" if record is not None else ""
        return [f"nothing was executed: the run stopped before the notebook started{where}"]
    lines = [f"executed notebook: {executed}"]
    if html is not None:
        lines.append(f"html: {html}")
    return lines


def replaced_lines(replaced: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a --force run replaced (run.json's `replaced`), one line per table:
    `replaced raw.customers (250 rows before) with --force: a source read by customer_revenue`."""
    lines = []
    for entry in replaced:
        rows = entry.get("rows_before")
        did = f"replaced {entry['table']} ({rows} rows before)" if rows is not None else f"wrote {entry['table']} (new)"
        lines.append(f"{did} with --force: {entry.get('owner')}")
    return lines


def failure_block(notebook: str, error: BaseException, executed: str | Path | None, result_file: Path | None = None) -> str:
    """The failing cell (source, failing line marked) and the trimmed traceback; '' when nothing is known."""
    context = failure_context(
        notebook,
        getattr(error, "cell", None),
        Path(executed) if executed is not None else None,
        result_file=result_file,
        ename=getattr(error, "ename", None),
        evalue=getattr(error, "evalue", None),
    )
    return context.describe()


def details_line(run_id: str, records: Path) -> str:
    """The `nb-assets show` command that finds this run from here (with `--records` when
    `nb-assets show` would not look there by itself)."""
    here = Path.cwd()
    defaults = {r.resolve() for r in record_roots(project_dir_of(here), near=[here])}
    extra = "" if records.resolve() in defaults else f" --records {records}"
    return f"details: nb-assets show {run_id}{extra}"
