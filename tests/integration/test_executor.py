"""notebook_definitions' executor: a run whose steps can only go one after another runs in its own
process; any other keeps a process per step, forked from a preloaded server, and concurrent; run
config that names in_process or a start method is taken as given."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from nb_assets.defs.executor import (
    PRELOAD_MODULES,
    STEP_MODULES,
    _forkserver_by_default,
    _in_process_config,
    notebook_executor,
    one_at_a_time,
)
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.dagster_runs import explain_runs

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


def test_one_at_a_time_means_one_step_per_level() -> None:
    assert one_at_a_time([["a"]]) and one_at_a_time([["a"], ["b"], ["c"]]) and one_at_a_time([])
    assert not one_at_a_time([["a", "b"]]) and not one_at_a_time([["a"], ["b", "c"], ["d"]])
    assert not one_at_a_time(None)  # a plan it cannot read keeps its step processes


def test_the_step_servers_warm_up_starts_no_thread_and_leaves_a_warm_exporter() -> None:
    """Forking copies only the forking thread: the warm-up must add no thread to the server.

    The modules preloaded before it already hold native pools (pyarrow's jemalloc
    background thread, numpy's OpenBLAS workers); those libraries register fork
    handlers of their own. The count is of OS threads, which sees those too."""
    probe = (
        "import os, threading, importlib\n"
        "tasks = lambda: len(os.listdir('/proc/self/task'))\n"
        f"for m in {list(STEP_MODULES)!r}: importlib.import_module(m)\n"
        "before = tasks()\n"
        "import nb_assets.defs.step_preload\n"
        "from nb_assets.runs import record\n"
        "print(before, tasks(), threading.active_count(), record._warmed, record._exporter is not None, flush=True)\n"
    )
    assert PRELOAD_MODULES[0] == "nb_assets.defs.step_preload"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    before, after, python_threads, warmed, exporter = out.stdout.split()
    assert after == before and python_threads == "1", out.stdout
    assert (warmed, exporter) == ("True", "True"), out.stderr[-2000:]


def test_in_process_keeps_the_runs_retries_and_step_dependencies() -> None:
    retries = {"disabled": {}}
    config = {"multiprocess": {"retries": retries, "max_concurrent": 3, "step_dependency_config": None}}
    assert _in_process_config(config) == {"in_process": {"retries": retries, "step_dependency_config": None}}


def _project(tmp_path: Path, warehouse: Path, chain: bool = False) -> tuple[Path, Path]:
    for name in ("left", "right"):
        source = "mart.left" if chain and name == "right" else "raw.orders"
        write_notebook(
            tmp_path / f"{name}.ipynb", code(RUNTIME), params("n = 3"),
            code(f"%%sql orders\nSELECT * FROM {source} WHERE order_id > $n"),
            code(f'output("mart.{name}", orders)'),
        )
    return _defs_and_home(tmp_path, warehouse, ["left.ipynb", "right.ipynb"])


def _defs_and_home(tmp_path: Path, warehouse: Path, notebooks: list[str]) -> tuple[Path, Path]:
    defs = tmp_path / "defs.py"
    defs.write_text(
        "from nb_assets import NotebookAsset, notebook_definitions\n"
        f"defs = notebook_definitions([{', '.join(f'NotebookAsset({n!r})' for n in notebooks)}], "
        f"warehouse={str(warehouse)!r}, base_dir={str(tmp_path)!r}, sandbox='local')\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return defs, home


def _materialize(defs: Path, home: Path, *extra: str, select: str = "*") -> list[dg.EventLogEntry]:
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(defs), "--select", select, *extra],
        cwd=defs.parent, env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True, text=True, timeout=600,
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS, explain_runs(instance, [run.run_id]) + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
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


def _pids(entries: list[dg.EventLogEntry]) -> set[int]:
    return {e.dagster_event.pid for e in entries if e.dagster_event and e.dagster_event.pid is not None}


def test_a_chain_runs_in_the_runs_own_process(tmp_path: Path, warehouse: Path) -> None:
    defs, home = _project(tmp_path, warehouse, chain=True)
    entries = _materialize(defs, home)
    assert len(_pids(entries)) == 1  # the run and both steps: one process
    assert any("in process" in (e.user_message or "") for e in entries)  # Dagster's own word for it
    started, done = _steps(entries, dg.DagsterEventType.STEP_START), _steps(entries, dg.DagsterEventType.STEP_SUCCESS)
    assert done["left"].timestamp <= started["right"].timestamp  # the order the lineage asks for


def test_a_start_method_in_run_config_keeps_step_processes_for_one_step(tmp_path: Path, warehouse: Path) -> None:
    defs, home = _project(tmp_path, warehouse)
    forkserver = {"multiprocess": {"start_method": {"forkserver": {}}}}
    entries = _materialize(defs, home, "--config-json", json.dumps({"execution": {"config": forkserver}}),
                           select="mart/left")
    assert set(_steps(entries, dg.DagsterEventType.STEP_SUCCESS)) == {"left"}
    assert len(_pids(entries)) == 2  # the run's and the step's


def test_in_process_is_still_selectable(tmp_path: Path, warehouse: Path) -> None:
    defs, home = _project(tmp_path, warehouse)
    entries = _materialize(defs, home, "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}}))
    assert len(_pids(entries)) == 1  # the run and its steps: one process
    assert set(_steps(entries, dg.DagsterEventType.STEP_SUCCESS)) == {"left", "right"}


def test_interrupting_a_run_in_its_own_process_ends_its_notebook(tmp_path: Path, warehouse: Path) -> None:
    """Dagster stops a run by interrupting its process (SIGINT); with the step in that process,
    the interrupt lands in the sandbox's wait, which must take the notebook down with it."""
    write_notebook(tmp_path / "slow.ipynb", code(RUNTIME), code("import time\ntime.sleep(600)"),
                   code('output("mart.slow", __import__("pandas").DataFrame({"x": [1]}))'))
    defs, home = _defs_and_home(tmp_path, warehouse, ["slow.ipynb"])
    run = subprocess.Popen([sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(defs), "--select", "*"],
                           cwd=tmp_path, env={**os.environ, "DAGSTER_HOME": str(home)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def notebook_processes() -> list[int]:
        """The runner by its command line, the kernel (its own session) by its working folder."""
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if str(home) in (proc / "cmdline").read_bytes().decode(errors="replace") or \
                        os.readlink(proc / "cwd").startswith(str(home)):
                    found.append(int(proc.name))
            except (OSError, ValueError):  # gone meanwhile, or not a process
                continue
        return found

    try:
        _eventually(lambda: len(notebook_processes()) >= 2, 300, "the notebook's runner and kernel to start")
        time.sleep(2)  # into the sleeping cell
        run.send_signal(signal.SIGINT)
        run.wait(timeout=120)
        _eventually(lambda: not notebook_processes(), 30, "the runner and the kernel to be gone")
    finally:
        if run.poll() is None:
            run.kill()
        for pid in notebook_processes():  # none, unless the test failed
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_runs()
        assert record.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)


def _eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)
