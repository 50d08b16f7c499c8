"""notebook_definitions' executor: step processes from a forkserver, still concurrent; in_process still selectable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from nb_assets.executor import PRELOAD_MODULES, _forkserver_by_default, notebook_executor
from notebook_factory import RUNTIME, code, params, write_notebook

pytestmark = pytest.mark.slow


def test_multiprocess_defaults_to_a_preloaded_forkserver_and_run_config_still_wins() -> None:
    forkserver = {"forkserver": {"preload_modules": list(PRELOAD_MODULES)}}
    assert _forkserver_by_default({"multiprocess": {}}) == {"multiprocess": {"start_method": forkserver}}
    assert _forkserver_by_default({"multiprocess": {"max_concurrent": 1}}) == {
        "multiprocess": {"max_concurrent": 1, "start_method": forkserver}}
    spawn = {"multiprocess": {"start_method": {"spawn": {}}}}
    assert _forkserver_by_default(spawn) == spawn
    assert _forkserver_by_default({"in_process": {}}) == {"in_process": {}}
    assert notebook_executor().name == "nb_assets_executor"


def _project(tmp_path: Path, warehouse: Path) -> tuple[Path, Path]:
    for name in ("left", "right"):
        write_notebook(
            tmp_path / f"{name}.ipynb", code(RUNTIME), params("n = 3"),
            code("%%sql orders\nSELECT * FROM raw.orders WHERE order_id > $n"),
            code(f'output("mart.{name}", orders)'),
        )
    defs = tmp_path / "defs.py"
    defs.write_text(
        "from nb_assets import NotebookAsset, notebook_definitions\n"
        f"defs = notebook_definitions([NotebookAsset('left.ipynb'), NotebookAsset('right.ipynb')], "
        f"warehouse={str(warehouse)!r}, base_dir={str(tmp_path)!r}, sandbox='local')\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return defs, home


def _materialize(defs: Path, home: Path, *extra: str) -> list[dg.EventLogEntry]:
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(defs), "--select", "*", *extra],
        cwd=defs.parent, env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True, text=True, timeout=600,
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS, proc.stdout[-3000:] + proc.stderr[-3000:]
        return list(instance.all_logs(run.run_id))


def _steps(entries: list[dg.EventLogEntry], kind: dg.DagsterEventType) -> dict[str, dg.EventLogEntry]:
    return {e.step_key: e for e in entries if e.dagster_event and e.dagster_event.event_type == kind and e.step_key}


def test_independent_notebooks_run_in_their_own_processes_at_once(tmp_path: Path, warehouse: Path) -> None:
    defs, home = _project(tmp_path, warehouse)
    entries = _materialize(defs, home)
    started = _steps(entries, dg.DagsterEventType.STEP_START)
    done = _steps(entries, dg.DagsterEventType.STEP_SUCCESS)
    assert set(started) == set(done) == {"left", "right"}
    run_pid = next(e.dagster_event.pid for e in entries if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_START)
    pids = {started["left"].dagster_event.pid, started["right"].dagster_event.pid, run_pid}
    assert len(pids) == 3  # a process per step, not the run's
    # Concurrent: each step started before the other one finished.
    assert started["left"].timestamp < done["right"].timestamp and started["right"].timestamp < done["left"].timestamp


def test_in_process_is_still_selectable(tmp_path: Path, warehouse: Path) -> None:
    defs, home = _project(tmp_path, warehouse)
    entries = _materialize(defs, home, "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}}))
    pids = {e.dagster_event.pid for e in entries if e.dagster_event and e.dagster_event.pid is not None}
    assert len(pids) == 1  # the run and its steps: one process
    assert set(_steps(entries, dg.DagsterEventType.STEP_SUCCESS)) == {"left", "right"}
