"""Run a notebook once and keep its record: the one path of Dagster's resource, `nb-assets run` (and
backfill's days) and the schedule trial.

The caller chooses the sandbox (each says or does something different about it) and opens the
warehouse; run_once runs the host pipeline with the policy gate, keeps the record (what the gate,
the caller and the views seen through said, next to `about`: the run id, source and start), and
drops the run's Parquet copies of the data when the caller is done reading its outputs. No Dagster.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.project.declaration import PARTITION_PARAM
from nb_assets.errors import NbAssetsError
from nb_assets.runs.pipeline import NotebookRun, discard_data, run_pipeline
from nb_assets.locations import redact
from nb_assets.runs.record import keep_record, seen_through_facts
from nb_assets.runs.history import keep_refusal_record
from nb_assets.sandbox.base import Sandbox, SandboxLimits
from nb_assets.spec import NotebookSpec
from nb_assets.warehouse.base import Warehouse
from nb_assets.warehouse.base import PartitionLoad
from nb_assets.warehouse.writer import notebook_location

if TYPE_CHECKING:
    from nb_assets.project.declare import Gate
    from nb_assets.runs.guard import Taken

__all__ = ["Refused", "RunOutcome", "about_run", "run_once"]


@dataclass(frozen=True)
class RunOutcome:
    """A run that ran (successfully or not), its record kept."""

    run: NotebookRun
    record: dict[str, Path]  # keep_record's files: executed, html, run
    facts: dict[str, Any]  # what the caller, the gate and the views seen through said (Dagster's metadata too)
    about: dict[str, Any]  # run id, source, start, ...: in the record after `facts`, and in `nb-assets run --json`


@dataclass(frozen=True)
class Refused:
    """Refused before anything ran (declaration, parameters, a view not seen through, the policy): no data was fetched."""

    error: NbAssetsError
    parameters: dict[str, Any]
    record_error: OSError | None = None  # keep_refusal: why its refusal record could not be kept


def about_run(run_id: str, source: str, *, warehouse: str | None = None, notebook: str | None = None,
              day: str | None = None) -> dict[str, Any]:
    """What `nb-assets runs`, `show` and `%nb_context` list of a run next to its verdict: its id, who
    ran it, when, and where given, the warehouse (no password), the notebook's file and the day."""
    about: dict[str, Any] = {"run_id": run_id, "source": source, "started_at": datetime.now(timezone.utc).isoformat()}
    if warehouse is not None:
        about["warehouse"] = redact(warehouse)
    if notebook is not None:
        about["notebook_file"] = notebook_location(notebook)
    if day is not None:
        about["partition"] = day
    return about


@contextmanager
def run_once(
    spec: NotebookSpec,
    *,
    warehouse: Warehouse,
    sandbox: Sandbox,
    run_dir: Path,
    about: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    limits: SandboxLimits | None = None,
    gate: Gate | None = None,
    load: Collection[str] | None = None,
    partition: PartitionLoad | None = None,
    facts: Mapping[str, Any] | None = None,
    forced: Sequence[Taken] | None = None,
    html: bool = True,
    keep_refusal: bool = False,
    sources: Sequence[Any] = (),
    base_dir: Path | None = None,
) -> Iterator[RunOutcome | Refused]:
    """Run `spec` once (run_pipeline), `partition`'s day as its PARTITION_PARAM, and keep its record.

    Yields the RunOutcome, whose output files are there until the with-block ends (then only the
    record stays), or Refused. `facts` go into the record before the gate's; `forced` (a --force
    run) are the tables not its own it may replace: the record says it was forced and which it did.
    With `keep_refusal`, a refusal leaves a run.json saying why (keep_refusal_record)."""
    parameters = dict(params or {})
    if partition is not None:
        parameters[PARTITION_PARAM] = partition.day
    collected: dict[str, Any] = dict(facts or {})

    def checked_gate(catalog: Any) -> None:
        if gate is not None:
            collected.update(gate(catalog))

    refused: Refused | None = None
    try:
        run = run_pipeline(spec, warehouse=warehouse, sandbox=sandbox, run_dir=run_dir, params=parameters,
                           limits=limits, gate=checked_gate, load=load, partition=partition, sources=sources, base_dir=base_dir)
    except NbAssetsError as exc:
        refused = Refused(exc, parameters, _keep_refusal(run_dir, spec, exc, parameters, about) if keep_refusal else None)
    if refused is not None:  # yielded outside `except`: what the with-block raises is not "during handling" of it
        yield refused
        return
    try:
        collected.update(seen_through_facts(run.spec))
        if run.sources:  # what each declared source's fetch read: location, bytes, rows, version, hash
            collected["notebook/sources"] = run.sources
        about_kept = dict(about)
        if forced is not None:  # all or nothing: a failed run replaced none of them
            about_kept["forced"] = True
            about_kept["replaced"] = [t.as_json() for t in forced if t.table in run.loaded_rows]
        # What the output checks found, failing rows' samples included: the record is the run's own data.
        checked = {"output_checks": [o.as_json() for o in run.check_outcomes]} if run.check_outcomes else {}
        record = keep_record(run, {**collected, **about_kept, **checked}, html=html)
        yield RunOutcome(run, record, collected, about_kept)
    finally:
        discard_data(run.folder)  # Parquet copies can be large; the record stays


def _keep_refusal(run_dir: Path, spec: NotebookSpec, exc: NbAssetsError, parameters: Mapping[str, Any],
                  about: Mapping[str, Any]) -> OSError | None:
    """Keep the refusal's record; the refusal, not the bookkeeping, is what the run must report."""
    error = {"cell": exc.cell, "type": exc.kind, "message": str(exc)}
    try:
        keep_refusal_record(run_dir, {"notebook": spec.path, "status": "refused", "error": error,
                                      "parameters": parameters, **about})
    except OSError as io_error:
        return io_error
    return None
