"""One notebook run, top to bottom: gate → prefetch → sandbox → validate → load.

Used identically by Dagster assets and by `nb-assets run`. The gate runs on
the prefetch's own connection, once the warehouse's views and macros are seen
through, and before any query. Nothing reaches the warehouse unless every
step before the load succeeded, and the executed notebook is kept whatever
happened.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nb_assets.inbox import runner as inbox_papermill
from nb_assets.sql.see_through import Catalog, see_through
from nb_assets.errors import (
    DeclarationError, NbAssetsError, NotebookRunError, OutputValidationError, PolicyError, SandboxError, SourceFetchError,
    UnlabelledSourceError, WarehouseError,
)
from nb_assets.inbox import contract as runtime
from nb_assets.analysis.parameters import resolve_parameters
from nb_assets.sandbox.base import RECORD_MB, RESULT_MAX_BYTES, RunFolder, Sandbox, SandboxLimits, SandboxResult
from nb_assets.sources.fetch import FetchCutError, FetchLimits, fetch_sources, source_file
from nb_assets.sources.model import Source, is_relation, name_of
from nb_assets.spec import NotebookSpec, SqlInput
from nb_assets.sql.source_calls import fetched_relation, replace_source_calls
from nb_assets.sql.table_names import missing, no_such_table
from nb_assets.warehouse.base import PartitionLoad, PrefetchRequest, Warehouse
from nb_assets.warehouse.checks import CheckOutcome, CheckRun
from nb_assets.warehouse.deadline import Deadline, RunBudget, StageTimeoutError
from nb_assets.warehouse.files import validate_outputs

Status = Literal["success", "failed"]


@dataclass(frozen=True)
class NotebookRun:
    spec: NotebookSpec
    parameters: dict[str, Any]
    folder: RunFolder
    status: Status
    error: NbAssetsError | None = None
    input_rows: dict[str, int] = field(default_factory=dict)  # SQL input name → rows
    loaded_rows: dict[str, int] = field(default_factory=dict)  # output table → rows
    output_files: dict[str, Path] = field(default_factory=dict)
    sandbox: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    check_outcomes: tuple[CheckOutcome, ...] = ()  # what the output checks found inside the load (warehouse/checks.py)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # declared source → what its fetch read

    @property
    def executed_notebook(self) -> Path:
        return self.folder.executed_notebook


def run_pipeline(
    spec: NotebookSpec,
    *,
    warehouse: Warehouse,
    sandbox: Sandbox,
    run_dir: Path,
    params: Mapping[str, Any] | None = None,
    limits: SandboxLimits | None = None,
    gate: Callable[[Catalog | None], None] | None = None,
    load: Collection[str] | None = None,
    partition: PartitionLoad | None = None,
    sources: Sequence[Source] = (),
    base_dir: Path | None = None,
) -> NotebookRun:
    """Execute `spec` once; returns a NotebookRun whose `error` says what failed.

    Declaration problems (error findings, bad parameters), a view or macro
    that cannot be seen through, and a refusing `gate` (the policy check,
    given the catalog the queries will read, or None for a notebook without
    SQL inputs) raise before any data is fetched or any folder made. The
    run's spec is `spec` as seen through the catalog at that moment. `load`
    names the output tables to load (default: all); every declared output is
    still produced and validated, since the notebook runs whole. With a
    `partition`, each output replaces only that day's rows of its table.
    The declared `sources` the notebook reads are fetched once the gate passed,
    before any query and before the sandbox (relative paths under `base_dir`).
    """
    started = time.monotonic()
    limits = limits or SandboxLimits()
    budget = RunBudget(limits.timeout_s, started)  # the host's stages count against the run's timeout (warehouse/deadline.py)
    parameters = runnable_parameters(spec, params or {})
    folder = RunFolder(Path(run_dir).resolve())
    seen = [spec]

    def check(catalog: Catalog | None) -> None:
        if catalog is not None:
            seen[0] = seen_through_or_refused(spec, catalog)
        if gate is not None:
            try:
                gate(catalog)
            except UnlabelledSourceError:  # "add it under 'tables:'" is no advice for a misspelled name
                if catalog is not None:
                    refuse_missing_tables(spec, catalog)
                raise
        if catalog is not None:
            refuse_missing_tables(spec, catalog)

    input_rows: dict[str, int] = {}
    fetched: dict[str, dict[str, Any]] = {}
    facts = sandbox.describe(limits)

    def finished(error: NbAssetsError | None, **outcome: Any) -> NotebookRun:
        # Reads input_rows and facts as they stand when the run ends.
        return NotebookRun(
            seen[0], parameters, folder, "failed" if error else "success", error,
            input_rows=input_rows, sandbox=facts, duration_s=time.monotonic() - started, sources=fetched, **outcome,
        )

    try:
        fetch = SourceFetch(sources, base_dir or Path(spec.path).parent, fetched)
        input_rows = prefetch_inputs(spec, parameters, folder, warehouse, check, fetch,
                                     deadline=budget.stage("prefetch", "prefetch_timeout", limits.prefetch_timeout))
    except (DeclarationError, PolicyError):
        raise  # refused: nothing fetched, no folder
    except NbAssetsError as exc:
        prepare_run_folder(spec, parameters, run_dir)
        return finished(exc)
    prepare_run_folder(spec, parameters, run_dir)
    try:
        result = sandbox.run(folder, limits)
    except SandboxError as exc:  # the box itself failed (engine gone, container not created)
        return finished(type(exc)(f"{spec.path}: {exc}"))
    restore_record(folder, spec, parameters)
    facts = {**result.facts, "exit_code": result.exit_code, "duration_s": round(result.duration_s, 3)}
    error = verdict(spec, folder, result, limits)
    if error is not None:
        return finished(error)
    if result.refused:
        return finished(OutputValidationError(f"{spec.path}: outputs refused, nothing loaded: " + "; ".join(result.refused)))
    # Checks run inside the load, after the write and before the commit (docs/checks.md).
    checks = CheckRun(spec.output_checks) if spec.output_checks else None
    audited: dict[str, Any] = {"checks": checks} if checks else {}  # a backend without checks keeps its old signature
    try:
        files = validate_outputs(spec.path, folder.output_dir, spec.output_names)
        chosen = files if load is None else {t: files[t] for t in load}
        deadline = budget.stage("load", "load_timeout", limits.load_timeout, subs={"checks_timeout": limits.checks_timeout})
        loaded = (warehouse.load_partition(spec.path, chosen, partition, deadline=deadline, **audited) if partition
                  else warehouse.load(spec.path, chosen, deadline=deadline, **audited))
    except NbAssetsError as exc:
        return finished(exc, check_outcomes=tuple(checks.outcomes) if checks else ())
    return finished(None, loaded_rows=loaded, output_files=files, check_outcomes=tuple(checks.outcomes) if checks else ())


def refuse_missing_tables(spec: NotebookSpec, catalog: Catalog) -> None:
    """A table a SQL input names that the warehouse lacks: say so, with the closest name it has."""
    for sql_input in spec.inputs:
        absent = missing(sql_input.tables, catalog.relations)
        if absent:
            raise WarehouseError(
                f"{spec.path}: cell {sql_input.cell}: SQL input {sql_input.name!r}: "
                + "; ".join(no_such_table(t, catalog.relations) for t in absent) + f" (warehouse: {catalog.warehouse})",
                cell=sql_input.cell,
            )


def runnable_parameters(spec: NotebookSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameters; raises for error findings or parameters the notebook refuses."""
    if spec.errors:
        raise DeclarationError("\n".join(f.describe(spec.path) for f in spec.errors))
    return resolve_parameters(spec, params)


def seen_through_or_refused(spec: NotebookSpec, catalog: Catalog) -> NotebookSpec:
    """`spec` with the catalog's views and macros seen through; raises if that finds errors."""
    seen = see_through(spec, catalog)
    if seen.errors:
        raise DeclarationError(
            f"{spec.path}: refused before any data was fetched:\n" + "\n".join(f.describe(spec.path) for f in seen.errors)
        )
    return seen


def prepare_run_folder(spec: NotebookSpec, parameters: Mapping[str, Any], run_dir: Path) -> RunFolder:
    """Plain files only, so the folder can be handed to any sandbox or machine."""
    folder = RunFolder(Path(run_dir).resolve()).create()
    folder.install_inbox_files()
    _write_job(folder, spec, parameters)
    return folder


def _write_job(folder: RunFolder, spec: NotebookSpec, parameters: Mapping[str, Any]) -> None:
    shutil.copyfile(spec.path, folder.parameterized_notebook)
    folder.parameters_file.write_text(json.dumps(dict(parameters), indent=2, default=str))


def prefetch_inputs(
    spec: NotebookSpec,
    parameters: Mapping[str, Any],
    folder: RunFolder,
    warehouse: Warehouse,
    check: Callable[[Catalog | None], None] | None = None,
    fetch: SourceFetch | None = None,
    deadline: Deadline | None = None,
) -> dict[str, int]:
    """Fetch every SQL input into the run's input folder, made only once `check` passed, by `deadline`;
    the declared sources first (`fetch`), so a query reading `source('x')` finds its copy."""

    def checked(catalog: Catalog | None) -> None:
        if check is not None:
            check(catalog)
        folder.input_dir.mkdir(parents=True, exist_ok=True)
        if fetch is not None:
            fetch.run(spec, parameters, folder.input_dir, deadline)

    requests = [
        PrefetchRequest(
            name=i.name,
            query=replace_source_calls(i.query, fetched_relation) if _reads_sources(i) else i.query,
            params={p: parameters[p] for p in i.params},
            cell=i.cell,
            dest=folder.input_dir / f"{i.name}.parquet",
            sources={fetched_relation(name_of(t)): folder.input_dir / source_file(name_of(t)) for t in i.tables if is_relation(t)},
        )
        for i in spec.inputs
    ]
    if requests:
        rows = warehouse.prefetch(spec.path, requests, checked, deadline=deadline)
    else:
        checked(None)  # nothing to read: no catalog to see through
        rows = {}
    manifest: dict[str, Any] = {
        i.name: {"file": r.dest.name, "fingerprint": runtime.query_fingerprint(i.query), "rows": rows[r.name]}
        for i, r in zip(spec.inputs, requests)
    }
    for name, facts in (fetch.fetched if fetch is not None else {}).items():  # what `%%source` cells open
        manifest[f"source:{name}"] = {"file": source_file(name), "rows": facts["rows"]}
    (folder.input_dir / runtime.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return rows


def _reads_sources(sql_input: SqlInput) -> bool:
    return any(is_relation(t) for t in sql_input.tables)


@dataclass
class SourceFetch:
    """The declared sources of a project, fetched for one run once its gate passed; `fetched` collects
    what each read (location, bytes, rows, version, content hash) for the run's metadata."""

    sources: Sequence[Source]
    base_dir: Path
    fetched: dict[str, dict[str, Any]]

    def run(self, spec: NotebookSpec, parameters: Mapping[str, Any], input_dir: Path, deadline: Deadline | None = None) -> None:
        """Fetch what `spec` reads; each fetch gets at most what is left of the prefetch's `deadline`."""
        if not spec.sources:
            return
        from nb_assets.project.sources import notebook_source_problems, source_cells
        from nb_assets.warehouse.source_tables import read_table  # the drivers live with the warehouse

        problems = notebook_source_problems(spec, self.sources, spec.path)  # a source nobody declared, by its cell
        if problems:
            raise DeclarationError("\n".join(problems))
        limits = FetchLimits(ends=deadline.ends) if deadline is not None else None
        cells = source_cells(spec)
        try:
            done = fetch_sources(self.sources, spec.sources, parameters, input_dir, base_dir=self.base_dir,
                                 read_table=read_table, limits=limits)
        except DeclarationError as exc:
            raise DeclarationError(f"{spec.path}: {exc}") from exc
        except SourceFetchError as exc:
            cell = cells.get(exc.source or "")
            if isinstance(exc, FetchCutError) and deadline is not None:  # the run's deadline, not the source's limit
                raise StageTimeoutError(deadline.message(spec.path, f"fetching {exc.where}", cancelled=False), cell=cell) from exc
            raise SourceFetchError(f"{spec.path}: stopped before the sandbox, nothing changed: {exc}"
                                   + (f" (cell {cell} reads it)" if cell else ""), source=exc.source, cell=cell) from exc
        self.fetched.update({name: f.facts() for name, f in done.items()})


def verdict(spec: NotebookSpec, folder: RunFolder, result: SandboxResult, limits: SandboxLimits) -> NotebookRunError | None:
    """Turn what the sandbox reported into one distinct, clear error (or None)."""
    running = running_cell(folder.executed_notebook)
    at = f" in cell {running}" if running else ""
    if result.timed_out:
        return NotebookRunError(f"{spec.path}: timed out after {limits.timeout_s:g} s{at}; the run was killed", kind="timeout", cell=running)
    if result.oom_killed:
        return NotebookRunError(
            f"{spec.path}: out of memory{at} (limit {limits.memory_mb} MB); the run was killed", kind="out-of-memory", cell=running,
        )
    if result.lost_record:
        return NotebookRunError(f"{spec.path}: {result.lost_record}{at}; nothing loaded", kind="sandbox-crash", cell=running)
    if result.output_full:
        return NotebookRunError(
            f"{spec.path}: the outputs folder reached its limit of {limits.output_mb} MB{at}; nothing loaded "
            "(SandboxLimits(output_mb=...) raises it)", kind="output-limit", cell=running,
        )
    if result.record_full:
        return NotebookRunError(
            f"{spec.path}: the record folder reached its limit of {RECORD_MB} MB{at}; nothing loaded "
            "(only the runner writes there: the notebook filled it)", kind="record-limit", cell=running,
        )
    report = _read_result(folder.result_file)
    if report is None:
        tail = result.logs.strip().splitlines()[-5:]
        return NotebookRunError(
            f"{spec.path}: the sandbox ended without a verdict (exit code {result.exit_code}){at}: " + " | ".join(tail),
            kind="sandbox-crash", cell=running,
        )
    if report["status"] == "success":
        if running is not None:
            # The runner writes its verdict after papermill has run every cell, and papermill marks each cell
            # completed as it ends; a cell still marked running means the runner never got there, so this
            # success was written by the notebook (the record folder is writable from inside). Not the exit
            # code: a runner may abort in teardown after a true verdict (docs/sandbox.md).
            return NotebookRunError(
                f"{spec.path}: the verdict says success, but cell {running} was still running when the runner stopped; "
                "the verdict is not the runner's (written by the notebook?): nothing loaded",
                kind="sandbox-crash", cell=running,
            )
        return None
    err = report["error"]
    cell = err.get("cell")
    if err["kind"] == "dead-kernel":
        return NotebookRunError(
            f"{spec.path}: the kernel died{at}: {err['evalue']}", kind="dead-kernel", cell=running, ename=err["ename"], evalue=err["evalue"],
        )
    if err["kind"] in (inbox_papermill.RUNNER_ERROR, "kernel-error"):  # raised by papermill, not by a cell
        return NotebookRunError(
            f"{spec.path}: the runner failed outside the notebook's cells (papermill raised {err['ename']}: {err['evalue']}); "
            "this is a problem of the run's setup, not an error in the notebook",
            kind=inbox_papermill.RUNNER_ERROR, ename=err["ename"], evalue=err["evalue"],
        )
    where = f"cell {cell}" if cell else "the notebook"
    return NotebookRunError(
        f"{spec.path}: {where} raised {err['ename']}: {err['evalue']}", kind=err["kind"], cell=cell, ename=err["ename"], evalue=err["evalue"],
    )


def _read_result(path: Path) -> dict[str, Any] | None:
    """The runner's verdict, or None for anything else: the notebook could have written this file."""
    if path.is_symlink():
        return None
    try:
        with path.open("rb") as f:
            report = json.loads(f.read(RESULT_MAX_BYTES + 1))  # a longer file is cut, so it does not parse
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    if report.get("status") == "success" and report.get("error") is None:
        return report
    err = report.get("error")
    if report.get("status") != "failed" or not isinstance(err, dict):
        return None
    strings = all(isinstance(err.get(k), str) for k in ("kind", "ename", "evalue"))
    cell_ok = err.get("cell") is None or (isinstance(err.get("cell"), int) and not isinstance(err.get("cell"), bool))
    return report if strings and cell_ok else None


def running_cell(executed: Path) -> int | None:
    """The author's cell number papermill marked as running, if the run stopped mid-cell."""
    try:
        if executed.is_symlink() or executed.stat().st_size > RECORD_MB << 20:
            return None  # sandboxes bound the record; this is not the runner's file
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
        for number, cell in inbox_papermill.authored_cells(cells):
            if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
                return number
    except (OSError, ValueError, LookupError, TypeError, AttributeError):  # not papermill's file
        return None
    return None


def restore_record(folder: RunFolder, spec: NotebookSpec, parameters: Mapping[str, Any]) -> None:
    """The record folder is writable from inside the sandbox. Drop whatever the
    notebook put there (a planted symlink would make the host's later writes,
    chmods and reads land outside the run folder) and rewrite the job files it
    could have altered, so the record says what really ran."""
    produced = {folder.executed_notebook, folder.result_file}
    for entry in folder.record_dir.iterdir():
        if entry.is_symlink() or not entry.is_file() or entry not in produced:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    _write_job(folder, spec, parameters)


def discard_data(folder: RunFolder) -> None:
    """Drop the run's Parquet copies; the record (notebooks, verdict) stays."""
    for data_dir in (folder.input_dir, folder.output_dir, folder.work_dir):
        shutil.rmtree(data_dir, ignore_errors=True)
