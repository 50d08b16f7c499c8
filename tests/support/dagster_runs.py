"""Why a Dagster run did not succeed, in words a failing test can print.

A test that waits for a run used to print, when the run failed, only its status or the daemon's log lines: the
reason (a step failure with its error and the notebook's failing cell) stayed in the instance's event log. Every
e2e test that waits for a run puts `explain_run(instance, run_id)` (or `explain_runs`) in its assertion message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg

# nb_assets' failure metadata (defs/materialize.py) worth a line each, when present.
NOTEBOOK_KEYS = ("notebook/path", "notebook/failed_cell", "notebook/error", "notebook/refused", "notebook/cell_source",
                 "notebook/traceback")
LONG_KEYS = ("    notebook/cell_source", "    notebook/traceback")  # left out when the error message has them
MAX_CHARS = 6000


def _error_text(error: Any) -> list[str]:
    """A SerializableErrorInfo and its causes: class and message, and the last lines of each stack."""
    lines: list[str] = []
    depth = 0
    while error is not None and depth < 5:
        prefix = "caused by " if depth else ""
        lines.append(f"    {prefix}{getattr(error, 'cls_name', None) or 'error'}: {(error.message or '').strip()}")
        stack = [s.rstrip() for s in (getattr(error, "stack", None) or [])][-6:]
        lines.extend(f"      {line}" for s in stack for line in s.splitlines())
        error = getattr(error, "cause", None) or getattr(error, "context", None)
        depth += 1
    return lines


def _metadata_text(metadata: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    for key in NOTEBOOK_KEYS:
        if metadata and key in metadata:
            value = metadata[key]
            shown = getattr(value, "value", getattr(value, "data", getattr(value, "text", value)))
            lines.append(f"    {key}: {str(shown).strip()[:1500]}")
    return lines


def _event_lines(event: dg.DagsterEvent, engine: list[str]) -> list[str]:
    lines: list[str] = []
    kind = event.event_type
    if kind == dg.DagsterEventType.STEP_FAILURE:
        data = event.step_failure_data
        lines.append(f"  step {event.step_key} failed:")
        lines.extend(_error_text(data.error))
        user = data.user_failure_data
        if user is not None:
            said = "\n".join(lines)
            if user.description and user.description.strip() not in said:
                lines.append(f"    description: {user.description.strip()[:2000]}")
            said = "\n".join(lines)  # the cell's source and traceback are usually in the message already
            lines.extend(line for line in _metadata_text(dict(user.metadata or {}))
                         if not line.startswith(LONG_KEYS) or line.partition(": ")[2].strip("` \n") not in said)
    elif kind in (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED):
        lines.append(f"  {kind.value}: {(event.message or '').strip()}")
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            lines.extend(_error_text(error))
    elif kind == dg.DagsterEventType.ENGINE_EVENT and getattr(event.event_specific_data, "error", None) is not None:
        engine.append(f"  engine event: {(event.message or '').strip()}")
        engine.extend(_error_text(event.event_specific_data.error))
    return lines


def _finish(head: str, lines: list[str], engine: list[str]) -> str:
    if not lines:
        lines = engine or ["  (no failure event recorded: the run may not have started; see the daemon's log)"]
    text = "\n".join([head, *lines])
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "\n  ... (cut)"


def explain_run(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run's status, then each step failure (error, causes, the notebook's failing cell and its source) and
    the run failure or cancellation message; engine errors only when nothing else says why."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id}: not in this instance"
    head = f"run {run_id} ({run.job_name}, tags {dict(run.tags)}): {run.status.value}"
    lines: list[str] = []
    engine: list[str] = []
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is not None:
            lines.extend(_event_lines(entry.dagster_event, engine))
        elif entry.level >= 40:  # errors the run's own logger wrote (ERROR, CRITICAL)
            lines.append(f"  log {entry.step_key or ''}: {entry.user_message.strip()[:1500]}")
    return _finish(head, lines, engine)


def explain_runs(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> str:
    """explain_run for each run that did not succeed ("" when all did)."""
    parts = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status != dg.DagsterRunStatus.SUCCESS:
            parts.append(explain_run(instance, run_id))
    return "\n".join(parts)


def explain_result(result: dg.ExecuteInProcessResult) -> str:
    """The same for an in-process `dg.materialize(...)`: its step failures with their errors and cells."""
    lines: list[str] = []
    engine: list[str] = []
    for event in result.all_events:
        lines.extend(_event_lines(event, engine))
    return _finish(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}", lines, engine)


def materialize_ok(assets: Any, **options: Any) -> dg.ExecuteInProcessResult:
    """`dg.materialize(...)` that must succeed; when it does not, the assertion prints the step failures
    (errors, the notebook's failing cell and its source), not just `False`."""
    result = dg.materialize(assets, raise_on_error=False, **options)
    assert result.success, explain_result(result)
    return result
