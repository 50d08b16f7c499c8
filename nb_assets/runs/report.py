"""One run explained from its record: the failing cell, the traceback, the inputs'
row counts and how the notebook that ran differs from the one authored now.

Pure: reads the record's files; no Dagster, DuckDB or Docker. `nb-assets show`
prints it; `%nb_context` shows the same failure context.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from nb_assets.runs.failure import FailureContext, cell_source, failure_context, notebook_cells
from nb_assets.inbox.runner import authored_cells
from nb_assets.runs.output import replaced_lines
from nb_assets.runs.history import RunRecord

DIFF_CONTEXT = 2


def run_failure(record: RunRecord) -> FailureContext | None:
    """The failing cell and traceback of a run that did not succeed."""
    if record.status == "success":
        return None
    error = record.error or {}
    return failure_context(
        record.path,
        error.get("cell"),
        record.executed,
        result_file=record.record_dir / "result.json",
    )


def run_details(record: RunRecord) -> dict[str, Any]:
    """Everything `nb-assets show` prints, as one JSON-ready document."""
    context = run_failure(record)
    return {
        **record.as_json(),
        "failure": None if context is None else {
            "cell": context.cell,
            "line": context.failing_line,
            "type": context.ename,
            "message": context.evalue,
            "source": context.cell_source,
            "traceback": context.traceback,
        },
        "inputs": list(record.summary.get("inputs") or []),
        "outputs": list(record.summary.get("outputs") or []),
        "diff": notebook_diff(Path(record.path), record.executed) if record.executed else None,
    }


def notebook_diff(authored: Path, ran: Path) -> str:
    """A unified diff of cell sources (outputs left out): the injected parameters and
    every edit made to the notebook since the run."""
    before = _cell_text(authored)
    after = _cell_text(ran)
    if before is None:
        return f"(the authored notebook {authored} can no longer be read)"
    if after is None:
        return f"(the executed notebook {ran} is not a readable notebook)"
    lines = difflib.unified_diff(before, after, f"{authored} (authored, now)", f"{ran} (ran)", n=DIFF_CONTEXT, lineterm="")
    return "\n".join(lines) or "(no difference: the notebook ran as authored)"


def _cell_text(path: Path) -> list[str] | None:
    cells = notebook_cells(path)
    if cells is None:
        return None
    injected = {id(c) for c in cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])}
    numbers = {id(c): n for n, c in authored_cells(cells)}
    lines: list[str] = []
    for cell in cells:
        if id(cell) in injected:
            header = "# ---- injected parameters (papermill)"
        elif id(cell) in numbers:
            header = f"# ---- cell {numbers[id(cell)]} ({cell.get('cell_type', '?')})"
        else:
            continue  # papermill's error markers
        lines.append(header)
        lines.extend(cell_source(cell).splitlines())
    return lines


def format_details(details: dict[str, Any]) -> str:
    """The text `nb-assets show` prints."""
    out = [f"run {details['run_id']}: {details['notebook']} {details['status']} ({details['source']} run)"]
    duration = f", took {details['duration_s']:.1f} s" if details["duration_s"] is not None else ""
    params = ", ".join(f"{k}={v!r}" for k, v in details["parameters"].items()) or "(defaults)"
    out += [
        f"notebook:   {details['path']}",
        f"started:    {details['started_at']}{duration}",
        f"parameters: {params}",
        f"partition:  {details['partition'] or '-'}",
        f"warehouse:  {details['warehouse'] or '(not recorded)'}",
    ]
    if details["error"]:
        out.append(f"error:      {details['error'].get('message')}")
    failure = details["failure"]
    if failure is not None:
        context = FailureContext(
            details["path"], failure["cell"], failure["source"], failure["line"], failure["type"], failure["message"],
            failure["traceback"],
        )
        if context.describe():
            out += ["", context.describe()]
    out += ["", "inputs:"]
    out += [f"  {i['name']:<20} {', '.join(i.get('tables', []))}: {i.get('rows')} rows" for i in details["inputs"]] or ["  (none)"]
    out += ["outputs:"]
    out += [f"  {o['table']}: {o['rows']} rows" for o in details["outputs"]] or ["  (none loaded)"]
    if details["forced"]:
        out += [f"  {line}" for line in replaced_lines(details["replaced"])] or ["  --force: nothing was replaced"]
    if details["diff"] is not None:
        out += ["", "authored notebook vs. the notebook that ran:", details["diff"]]
    out += ["", f"record:     {details['record']}"]
    if details["executed_notebook"]:
        out.append(f"executed:   {details['executed_notebook']}")
    if details["html"]:
        out.append(f"html:       {details['html']}")
    return "\n".join(out)
