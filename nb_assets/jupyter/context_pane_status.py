"""The context pane's `status` row: the notebook's line of `nb-assets status`, said for its trigger.

The facts and the judgement are status's (runs/status.py, project/freshness_status.py),
which lists input waits only for a notebook that runs when its inputs land; what the
pane adds is when a cron runs it next.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nb_assets.jupyter.context_pane_project import ProjectView
    from nb_assets.project.declaration import NotebookAsset
    from nb_assets.project.declare import DeclaredNotebook


def status_line(project: ProjectView, item: DeclaredNotebook, warehouse: str | None, roots: list[Path]) -> str | None:
    """The notebook's line of `nb-assets status`, judged on the same facts (runs/status.py), and
    when a cron runs it next."""
    from nb_assets.runs.status import project_status, watched

    everyone = watched(project.declared)  # the other notebooks say when the tables it reads were written
    try:
        status = project_status(everyone, roots, warehouse)
    except (OSError, ValueError) as exc:  # an unreadable record folder: the rest of the pane still shows
        return f"status unknown: {exc}"
    found = next((n for n in status.notebooks if n.name == item.spec.name), None)
    line = None if found is None else found.line() + next_cron_run(item.decl)
    if line and status.landings_problem:
        line += f" (landing log unreadable: {status.landings_problem})"
    return line


def next_cron_run(decl: NotebookAsset, now: float | None = None) -> str:
    """`; next run on its cron: 2026-12-08 06:00:00 UTC` (with inputs too: the tick, then the wait); '' without a cron."""
    from nb_assets.project.freshness import iso
    from nb_assets.sandbox.ahead import next_run_at

    tick = next_run_at(decl.cron, decl.timezone, now)
    if tick is None:
        return ""
    if decl.on_inputs_landed:
        return f"; next cron tick: {iso(tick)}, then it runs once all its inputs have landed"
    return f"; next run on its cron: {iso(tick)}"


