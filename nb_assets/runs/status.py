"""The facts a notebook's status is judged on, read where they are kept, without Dagster.

- its runs: the run records on disk (runs/history.py), which Dagster runs and
  `nb-assets run` both write, failed and refused runs included;
- when each input last changed: a table another declared notebook writes
  changed when that notebook last succeeded; a source table when it last
  landed, as the landing log in the warehouse says (warehouse/landing.py).

The freshness sensor reads the same facts (with the instance's record folder),
so `nb-assets status`, `%nb_context` and the notices agree.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb_assets.errors import LandingError, NbAssetsError
from nb_assets.project.freshness import parse_freshness
from nb_assets.project.freshness_status import LastRun, NotebookFacts, NotebookStatus, Watched, notebook_status
from nb_assets.runs.history import RunRecord

ALL_LANDINGS = 2**62  # latest_landings' bound: every id
# Beside the run records the freshness sensor keeps when it started watching notebooks that
# never materialized, so that `nb-assets status` judges them from the same moment.
WATCH_FILE = "freshness_watch.json"


def watched(declared: Iterable[Any]) -> list[Watched]:
    """`Watched` for each of `declared` (project.declare.DeclaredNotebook)."""
    return [
        Watched(d.spec.name, d.spec.path, tuple(d.decl.owners), d.decl.trigger(), tuple(d.spec.input_tables),
                tuple(d.spec.output_tables), d.decl.freshness, d.decl.on_inputs_landed)
        for d in declared
    ]


@dataclass(frozen=True)
class ProjectStatus:
    notebooks: list[NotebookStatus]
    landings_problem: str | None  # why the landing log could not be read; then no source counts as landed


def project_status(
    notebooks: Sequence[Watched],
    record_roots: Sequence[Path],
    warehouse: str | None,
    *,
    now: float | None = None,
    watched_since: Mapping[str, float] | None = None,
) -> ProjectStatus:
    """Every notebook's status. `watched_since`: when the clock started for notebooks that
    never succeeded (the sensor keeps it in its cursor); default `now`, i.e. not yet due."""
    now = time.time() if now is None else now
    if watched_since is None:
        watched_since = read_watch(record_roots)
    latest, last_success = _runs_by_notebook(record_roots, {n.name for n in notebooks})
    writers = {t: n.name for n in notebooks for t in n.outputs}
    landed, problem = source_landings(warehouse, {t for n in notebooks for t in n.inputs if t not in writers})
    statuses = []
    for n in notebooks:
        updates: dict[str, float | None] = {}
        for table in n.inputs:
            if table in writers:
                success = last_success.get(writers[table])
                updates[table] = success.finished_at if success else None
            else:
                updates[table] = landed.get(table)
        facts = NotebookFacts(
            notebook=n, freshness=parse_freshness(n.freshness) if n.freshness else None,
            last_run=latest.get(n.name), last_success=last_success.get(n.name),
            input_updates=updates, watched_since=(watched_since or {}).get(n.name, now),
        )
        statuses.append(notebook_status(facts, now))
    return ProjectStatus(statuses, problem)


def last_run(record: RunRecord) -> LastRun:
    started = record.started_at.timestamp()
    error = record.error
    message = str(error.get("message") or error.get("type") or "") if error else None
    first = message.strip().splitlines()[0] if message and message.strip() else message
    return LastRun(record.run_id, record.status, started, started + (record.duration_s or 0.0), first)


def _runs_by_notebook(roots: Sequence[Path], names: set[str]) -> tuple[dict[str, LastRun | None], dict[str, LastRun | None]]:
    """Each notebook's latest run and latest successful run.

    Records pile up (one per run, kept), and the sensor asks every tick: so the
    run.json files are read newest first (by when they were written, at the
    run's end) and reading stops at the first success, instead of parsing
    every record as `nb-assets runs` does."""
    latest: dict[str, LastRun | None] = {}
    success: dict[str, LastRun | None] = {}
    for name in names:
        files = [found for root in roots for found in _summaries(Path(root) / name)]
        latest[name] = success[name] = None
        for _, path in sorted(files, reverse=True):
            record = read_record(path, name)
            if record is None:
                continue
            run = last_run(record)
            if latest[name] is None or run.started_at > latest[name].started_at:  # type: ignore[union-attr]
                latest[name] = run
            if run.status == "success":
                success[name] = run
                break
    return latest, success


def _summaries(folder: Path) -> list[tuple[float, Path]]:
    """(mtime, run.json) of every record in a notebook's folder: Dagster's `<run_id>/record/`
    and `nb-assets run`'s `<time>/<n>/record/` (a directory scan, not a recursive glob:
    a record folder holds the executed notebook and its inputs, which need not be walked)."""
    found: list[tuple[float, Path]] = []

    def take(run_dir: str) -> bool:
        path = os.path.join(run_dir, "record", "run.json")
        try:
            found.append((os.stat(path).st_mtime, Path(path)))
            return True
        except OSError:
            return False

    try:
        entries = [e.path for e in os.scandir(folder) if e.is_dir()]
    except OSError:
        return found
    for entry in entries:
        if take(entry):
            continue
        try:
            nested = [e.path for e in os.scandir(entry) if e.is_dir()]
        except OSError:
            continue
        for run_dir in nested:
            take(run_dir)
    return found


def source_landings(warehouse: str | None, tables: set[str]) -> tuple[dict[str, float], str | None]:
    """When each of `tables` last landed, per the landing log (any partition); and why not, if unreadable."""
    if not tables or not warehouse:
        return {}, None
    from nb_assets.warehouse.backends import latest_landings  # a driver loads only here

    try:
        landings = latest_landings(warehouse, up_to_id=ALL_LANDINGS)
    except LandingError:  # no landing log (yet): nothing has landed
        return {}, None
    except (NbAssetsError, OSError) as exc:  # busy (a run holds the DuckDB file), unreachable
        return {}, str(exc).splitlines()[0]
    except Exception as exc:  # a driver's own error: say it, judge without
        return {}, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    latest: dict[str, float] = {}
    for landing in landings:
        if landing.table in tables:
            latest[landing.table] = max(latest.get(landing.table, 0.0), landing.landed_at)
    return latest, None


def read_watch(roots: Sequence[Path]) -> dict[str, float]:
    """The freshness sensor's watch start per notebook, from every root that has one (earliest wins)."""
    since: dict[str, float] = {}
    for root in roots:
        try:
            data = json.loads((Path(root) / WATCH_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for name, value in (data if isinstance(data, dict) else {}).items():
            if isinstance(value, (int, float)):
                since[name] = min(since.get(name, float(value)), float(value))
    return since


def write_watch(root: Path, since: Mapping[str, float]) -> None:
    """Replace the watch file in `root` at once (a reader sees the old one or the new one)."""
    root.mkdir(parents=True, exist_ok=True)
    temp = root / f".{WATCH_FILE}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(dict(since), sort_keys=True), encoding="utf-8")
    os.replace(temp, root / WATCH_FILE)


def read_record(summary_file: Path, notebook: str) -> RunRecord | None:
    """One run.json as runs/history.py reads it (None if unreadable): the run id from the
    summary, else Dagster's record folder name, which is the run id."""
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    run_id = summary.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        run_id = summary_file.parent.parent.name
    return RunRecord(run_id, notebook, summary_file.parent, summary)
