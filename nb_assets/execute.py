"""One notebook run, top to bottom: gate → prefetch → sandbox → validate → load.

Used identically by Dagster assets and by `nb-assets run`. Nothing reaches
the warehouse unless every step before the load succeeded, and the executed
notebook is kept whatever happened.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nb_assets import notebook as runtime
from nb_assets import sandbox_runner
from nb_assets.errors import DeclarationError, NbAssetsError, NotebookRunError
from nb_assets.parameters import resolve_parameters
from nb_assets.sandbox import RUNNER_FILE, RunFolder, Sandbox, SandboxLimits, SandboxResult
from nb_assets.spec import NotebookSpec
from nb_assets.warehouse import PrefetchRequest, Warehouse, validate_outputs

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

    @property
    def executed_notebook(self) -> Path:
        return self.folder.executed_notebook


def run_notebook(
    spec: NotebookSpec,
    *,
    warehouse: Warehouse,
    sandbox: Sandbox,
    run_dir: Path,
    params: Mapping[str, Any] | None = None,
    limits: SandboxLimits | None = None,
    gate: Callable[[], None] | None = None,
) -> NotebookRun:
    """Execute `spec` once; returns a NotebookRun whose `error` says what failed.

    Declaration problems (error findings, bad parameters) and a refusing
    `gate` (the policy check) raise before any data is fetched.
    """
    started = time.monotonic()
    limits = limits or SandboxLimits()
    if spec.errors:
        raise DeclarationError("\n".join(f.describe(spec.path) for f in spec.errors))
    parameters = resolve_parameters(spec, params or {})
    if gate is not None:
        gate()
    folder = prepare_run_folder(spec, parameters, run_dir)
    base = dict(spec=spec, parameters=parameters, folder=folder, sandbox=sandbox.describe(limits))
    try:
        input_rows = prefetch_inputs(spec, parameters, folder, warehouse)
    except NbAssetsError as exc:
        return NotebookRun(**base, status="failed", error=exc, duration_s=time.monotonic() - started)
    result = sandbox.run(folder, limits)
    keep_only_runner_files(folder)
    base["sandbox"] = {**result.facts, "exit_code": result.exit_code, "duration_s": round(result.duration_s, 3)}
    error = verdict(spec, folder, result, limits)
    if error is not None:
        return NotebookRun(**base, status="failed", error=error, input_rows=input_rows, duration_s=time.monotonic() - started)
    try:
        files = validate_outputs(spec.path, folder.output_dir, spec.output_tables)
        loaded = warehouse.load(spec.path, files)
    except NbAssetsError as exc:
        return NotebookRun(**base, status="failed", error=exc, input_rows=input_rows, duration_s=time.monotonic() - started)
    return NotebookRun(
        **base, status="success", input_rows=input_rows, loaded_rows=loaded, output_files=files,
        duration_s=time.monotonic() - started,
    )


def prepare_run_folder(spec: NotebookSpec, parameters: Mapping[str, Any], run_dir: Path) -> RunFolder:
    """Plain files only, so the folder can be handed to any sandbox or machine."""
    folder = RunFolder(Path(run_dir).resolve()).create()
    package = folder.runtime_dir / "nb_assets"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text('"""nb_assets runtime, as seen inside a sandbox."""\n')
    shutil.copyfile(runtime.__file__, package / "notebook.py")
    shutil.copyfile(sandbox_runner.__file__, folder.runtime_dir / RUNNER_FILE)
    shutil.copyfile(spec.path, folder.parameterized_notebook)
    folder.parameters_file.write_text(json.dumps(dict(parameters), indent=2, default=str))
    return folder


def prefetch_inputs(spec: NotebookSpec, parameters: Mapping[str, Any], folder: RunFolder, warehouse: Warehouse) -> dict[str, int]:
    requests = [
        PrefetchRequest(
            name=i.name,
            query=i.query,
            params={p: parameters[p] for p in i.params},
            cell=i.cell,
            dest=folder.input_dir / f"{i.name}.parquet",
        )
        for i in spec.inputs
    ]
    rows = warehouse.prefetch(spec.path, requests)
    manifest = {
        r.name: {"file": r.dest.name, "fingerprint": runtime.query_fingerprint(r.query), "rows": rows[r.name]}
        for r in requests
    }
    (folder.input_dir / runtime.MANIFEST).write_text(json.dumps(manifest, indent=2))
    return rows


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
    report = _read_result(folder.result_file)
    if report is None:
        tail = result.logs.strip().splitlines()[-5:]
        return NotebookRunError(
            f"{spec.path}: the sandbox ended without a verdict (exit code {result.exit_code}){at}: " + " | ".join(tail),
            kind="sandbox-crash", cell=running,
        )
    if report["status"] == "success":
        return None
    err = report["error"]
    cell = err.get("cell")
    if err["kind"] == "dead-kernel":
        return NotebookRunError(
            f"{spec.path}: the kernel died{at}: {err['evalue']}", kind="dead-kernel", cell=running, ename=err["ename"], evalue=err["evalue"],
        )
    where = f"cell {cell}" if cell else "the notebook"
    return NotebookRunError(
        f"{spec.path}: {where} raised {err['ename']}: {err['evalue']}", kind=err["kind"], cell=cell, ename=err["ename"], evalue=err["evalue"],
    )


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("status") in ("success", "failed") else None


def running_cell(executed: Path) -> int | None:
    """The author's cell number papermill marked as running, if the run stopped mid-cell."""
    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return None
    number = 0
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue
        number += 1
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return number
    return None


def keep_only_runner_files(folder: RunFolder) -> None:
    """The record folder is writable from inside the sandbox: drop whatever the
    notebook put there (a planted symlink would make the host's later writes,
    chmods and reads land outside the run folder)."""
    expected = {folder.parameterized_notebook, folder.executed_notebook, folder.parameters_file, folder.result_file}
    for entry in folder.record_dir.iterdir():
        if entry.is_symlink() or not entry.is_file() or entry not in expected:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def discard_data(folder: RunFolder) -> None:
    """Drop the run's Parquet copies; the record (notebooks, verdict) stays."""
    for data_dir in (folder.input_dir, folder.output_dir, folder.work_dir):
        shutil.rmtree(data_dir, ignore_errors=True)
