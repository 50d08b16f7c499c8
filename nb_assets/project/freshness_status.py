"""Where a notebook stands: its last run, its freshness, and what it is waiting for.

Pure: given the facts (the notebook's runs, when each of its inputs last
changed, the clock), one `NotebookStatus`. The freshness sensor, `nb-assets
status` and `%nb_context` gather the facts (runs/status.py) and all judge them
here, so the three say the same thing about the same notebook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from nb_assets.project.freshness import Freshness, iso

State = Literal["fresh", "stale", "not yet due", "no rule"]


@dataclass(frozen=True)
class LastRun:
    """One run as the status needs it."""

    run_id: str
    status: str  # "success", "failed", "refused"
    started_at: float
    finished_at: float
    error: str | None = None  # one line, for a run that did not succeed


@dataclass(frozen=True)
class Watched:
    """One declared notebook as the status needs it (from a DeclaredNotebook, or the sensor's copy)."""

    name: str
    path: str
    owners: tuple[str, ...]
    trigger: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    freshness: str | None  # the rule as declared
    waits_for_inputs: bool  # declared on_inputs_landed: its inputs landing is what starts it


@dataclass(frozen=True)
class NotebookFacts:
    """What is known of one notebook now."""

    notebook: Watched
    freshness: Freshness | None  # notebook.freshness, parsed once by whoever gathers the facts
    last_run: LastRun | None
    last_success: LastRun | None
    input_updates: Mapping[str, float | None]  # input table → when it last landed or was written; None: never
    watched_since: float  # when the freshness clock started for a notebook that never materialized


@dataclass(frozen=True)
class NotebookStatus:
    name: str
    path: str
    owners: tuple[str, ...]
    trigger: str
    freshness: str | None  # the rule as declared
    state: State
    last_run: LastRun | None
    last_success_at: float | None
    stale_from: float | None  # when it goes (or went) stale; None without a rule
    waiting_for: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return self.state == "stale"

    def line(self) -> str:
        """The one line `nb-assets status` prints and the context pane shows."""
        run = self.last_run
        last = f"last run {run.status} {iso(run.finished_at)} ({run.run_id[:8]})" if run else "never ran"
        if self.state == "no rule":
            fresh = "no freshness rule"
        elif self.state == "stale":
            fresh = f"STALE since {iso(self.stale_from)} ({self.freshness})"
        else:
            fresh = f"{self.state} until {iso(self.stale_from)} ({self.freshness})"
        waiting = f"; waiting for: {'; '.join(self.waiting_for)}" if self.waiting_for else ""
        return f"{self.name}: {last}; {fresh}{waiting}"

    def as_json(self) -> dict[str, Any]:
        run = self.last_run
        return {
            "notebook": self.name,
            "path": self.path,
            "owners": list(self.owners),
            "trigger": self.trigger,
            "freshness": self.freshness,
            "state": self.state,
            "last_run": None if run is None else {
                "run_id": run.run_id, "status": run.status, "started_at": iso(run.started_at),
                "finished_at": iso(run.finished_at), "error": run.error,
            },
            "last_success_at": iso(self.last_success_at),
            "stale_from": iso(self.stale_from),
            "waiting_for": list(self.waiting_for),
        }


def notebook_status(facts: NotebookFacts, now: float) -> NotebookStatus:
    """Judge `facts` at `now`."""
    success = facts.last_success.finished_at if facts.last_success else None
    stale_from = facts.freshness.stale_from(success, facts.watched_since) if facts.freshness else None
    if stale_from is None:
        state: State = "no rule"
    elif now >= stale_from:
        state = "stale"
    else:
        state = "fresh" if success is not None else "not yet due"
    notebook = facts.notebook
    return NotebookStatus(
        name=notebook.name, path=notebook.path, owners=notebook.owners, trigger=notebook.trigger,
        freshness=facts.freshness.text if facts.freshness else None, state=state,
        last_run=facts.last_run, last_success_at=success, stale_from=stale_from,
        waiting_for=waiting_for(facts),
    )


def waiting_for(facts: NotebookFacts) -> list[str]:
    """What stands between the notebook and its next good run: a failed last run, and, for one
    that runs when its inputs land, each input that has not landed since the last successful run
    started (it would read the same data). A cron or on-demand notebook runs whatever has landed."""
    waiting = []
    run, success = facts.last_run, facts.last_success
    if run is not None and run.status != "success":
        waiting.append(f"its last run {run.run_id[:8]} {run.status} at {iso(run.finished_at)}: {run.error or 'no reason recorded'}")
    if not facts.notebook.waits_for_inputs:
        return waiting
    since = success.started_at if success else None
    for table in facts.notebook.inputs:
        landed = facts.input_updates.get(table)
        if since is None:
            if landed is None:
                waiting.append(f"input {table}: never landed")
        elif landed is None:
            waiting.append(f"input {table}: not landed since the last run started at {iso(since)} (never landed)")
        elif landed < since:
            waiting.append(f"input {table}: not landed since the last run started at {iso(since)} (last landed {iso(landed)})")
    return waiting
