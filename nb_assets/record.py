"""The record of a run: executed notebook, HTML rendering, verdict; kept read-only.

One folder per run (Dagster: under the instance's storage, by run id), so a
record is never overwritten. No Dagster import: `nb-assets run` uses it too.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nb_assets.errors import error_json
from nb_assets.host_pipeline import NotebookRun
from nb_assets.sandbox import RECORD_MB
from nb_assets.spec import NotebookSpec


def keep_record(run: NotebookRun, extra: Mapping[str, Any] | None = None, *, html: bool = True) -> dict[str, Path]:
    """Write run.json (and an HTML rendering), then make the record read-only."""
    record = run.folder.record_dir
    files = {"executed": run.executed_notebook, "html": record / "executed.html", "run": record / "run.json"}
    extra = dict(extra or {})
    if html and run.executed_notebook.exists() and not run.executed_notebook.is_symlink():
        try:
            if run.executed_notebook.stat().st_size > RECORD_MB << 20:  # sandboxes bound it; never load more
                raise ValueError(f"the executed notebook is over the record's limit of {RECORD_MB} MB")
            files["html"].write_text(render_html(run.executed_notebook), encoding="utf-8")
        except Exception as exc:  # the sandbox wrote this file: it may not be a notebook at all
            extra["html_error"] = f"{type(exc).__name__}: {exc}"[:500]
    files["run"].write_text(json.dumps(run_summary(run, extra), indent=2, default=str), encoding="utf-8")
    read_only = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    for path in record.iterdir():
        if not path.is_symlink():  # chmod would follow a link out of the record
            os.chmod(path, read_only)
    os.chmod(record, read_only | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)  # nothing can be added later
    return {k: v for k, v in files.items() if v.exists()}


_exporter: Any = None  # one HTMLExporter per process: its Jinja templates compile once
_exporter_lock = threading.Lock()
_warmed = False
# A notebook with a code cell and an output, rendered once to compile the templates and load the lexer.
_WARM_NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {"language_info": {"name": "python"}},
    "cells": [{"cell_type": "code", "id": "warm", "metadata": {}, "execution_count": 1, "source": "x = 1",
               "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}]}],
}


def prewarm_html() -> None:
    """While the sandbox runs, in a background thread: import nbconvert (~0.4 s) and
    render a one-cell notebook (templates, lexer: ~0.3 s); the run's own rendering is then quick."""
    if not _warmed:  # a step forked from a preloaded server is warm already
        threading.Thread(target=warm_html, daemon=True, name="nb-assets-prewarm").start()


def warm_html() -> None:
    """What prewarm_html does, in this thread (a forkserver's preload calls it before forking)."""
    global _warmed
    try:
        import nbformat

        exporter = _html_exporter()
        with _exporter_lock:
            exporter.from_notebook_node(nbformat.from_dict(_WARM_NOTEBOOK))
        _warmed = True
    except Exception:  # noqa: BLE001 - only a head start; render_html reports real failures
        pass


def _html_exporter() -> Any:
    global _exporter
    with _exporter_lock:  # the prewarm thread and render_html may ask at once: build it once
        if _exporter is None:
            import nbconvert  # imported late: it is slow to import and only needed here

            _exporter = nbconvert.HTMLExporter()
        return _exporter


def render_html(executed: Path) -> str:
    exporter = _html_exporter()
    with _exporter_lock:  # one rendering at a time per exporter (the prewarm may still be rendering)
        body, _ = exporter.from_filename(str(executed))
    return body


def seen_through_facts(spec: NotebookSpec) -> dict[str, Any]:
    """What the run read once views and macros were seen through (on the prefetch's connection)."""
    seen = spec.seen_through
    if seen is None:
        return {}
    return {
        "notebook/base_tables": list(seen.base_tables),
        "notebook/read_through": {name: list(reads) for name, reads in seen.through},
    }


def run_summary(run: NotebookRun, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The machine-readable verdict, shared by run.json and `nb-assets run --json`."""
    error = error_json(run.error) if run.error is not None else None
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
        "record": str(run.folder.record_dir),
        "executed_notebook": str(run.executed_notebook) if run.executed_notebook.exists() else None,  # none if the kernel never ran
        **dict(extra or {}),
    }
