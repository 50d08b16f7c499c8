"""A process that aborts at exit after a finished run must not turn its success into failure.

Arrow's native thread pools can abort interpreter teardown ("terminate called
without an active exception", exit 134) in any process that used pyarrow. The
fault is injected for real: a `sitecustomize` module that Python loads at
start-up in the process under test, which makes it abort at exit (atexit), or
right when it leaves after writing its verdict (os._exit). Verdicts must rest
on what was written and checked; a failed run must still fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO
from support.warehouses import warehouse_snapshot
from nb_assets.runs.pipeline import NotebookRun, run_pipeline
from nb_assets.analysis.parser import parse_notebook
from nb_assets.sandbox.base import RunFolder, Sandbox, SandboxLimits, SandboxResult
from nb_assets.sandbox.local import network_namespaces_available
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.dagster_runs import explain_runs

# Python runs atexit handlers during teardown: this is what an Arrow pool does there.
ABORT_AT_TEARDOWN = "import atexit, os\natexit.register(os.abort)\n"
# A process that skips teardown with os._exit still dies by SIGABRT right after its verdict.
ABORT_ON_LEAVING = "import os\n_exit = os._exit\nos._exit = lambda code: os.abort()\n"
LIMITS = SandboxLimits(timeout_s=120, memory_mb=1024, pids=128, tmp_mb=64)


class AbortingSandbox:
    """A real sandbox whose in-box Python processes carry an abort at exit."""

    def __init__(self, inner: Sandbox, fault: str) -> None:
        self.inner, self.fault = inner, fault
        self.kind = inner.kind

    def describe(self, limits: SandboxLimits) -> dict:
        return self.inner.describe(limits)

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        # The runtime folder is on the in-box PYTHONPATH of both sandboxes.
        (folder.runtime_dir / "sitecustomize.py").write_text(self.fault)
        return self.inner.run(folder, limits)


@pytest.fixture
def sandbox(each_sandbox: Sandbox) -> Sandbox:
    return each_sandbox


def _notebook(tmp_path: Path, fail: bool = False) -> Path:
    return write_notebook(
        tmp_path / "doubled.ipynb",
        code(RUNTIME),
        params("factor = 2"),
        code("%%sql orders\nSELECT order_id, amount FROM raw.orders"),
        code("raise RuntimeError('genuinely broken')" if fail else "orders['amount'] = orders['amount'] * factor"),
        code("output('mart.doubled', orders)"),
    )


def _run(sandbox: Sandbox, fault: str, tmp_path: Path, warehouse: Path, fail: bool = False) -> NotebookRun:
    spec = parse_notebook(_notebook(tmp_path, fail))
    return run_pipeline(
        spec, warehouse=DuckDBWarehouse(warehouse), sandbox=AbortingSandbox(sandbox, fault),
        run_dir=tmp_path / "run", limits=LIMITS,
    )


def test_the_in_box_processes_leave_without_teardown(sandbox: Sandbox, tmp_path: Path, warehouse: Path) -> None:
    run = _run(sandbox, ABORT_AT_TEARDOWN, tmp_path, warehouse)
    assert run.status == "success", run.error
    assert run.sandbox["exit_code"] == 0  # the runner never reached the teardown that aborts
    assert run.loaded_rows == {"mart.doubled": 20}


def test_an_abort_after_the_verdict_is_still_a_success(sandbox: Sandbox, tmp_path: Path, warehouse: Path) -> None:
    run = _run(sandbox, ABORT_ON_LEAVING, tmp_path, warehouse)
    assert run.sandbox["exit_code"] not in (0, None)  # the fault fired: the runner died by SIGABRT
    assert run.status == "success", run.error
    assert run.loaded_rows == {"mart.doubled": 20}
    assert json.loads(run.folder.result_file.read_text())["status"] == "success"


def test_an_abort_after_a_failed_run_still_fails(sandbox: Sandbox, tmp_path: Path, warehouse: Path) -> None:
    before = warehouse_snapshot(warehouse)
    run = _run(sandbox, ABORT_ON_LEAVING, tmp_path, warehouse, fail=True)
    assert run.sandbox["exit_code"] not in (0, None)
    assert run.status == "failed"
    assert "doubled.ipynb: cell 4 raised RuntimeError: genuinely broken" in str(run.error)
    assert warehouse_snapshot(warehouse) == before


# The same fault for host processes, noting each process it aborts.
LOGGED_ABORT_AT_TEARDOWN = """import atexit, os
def _abort():
    log = os.environ.get("ABORT_LOG")
    if log:
        open(os.path.join(log, str(os.getpid())), "w").close()
    os.abort()
atexit.register(_abort)
"""


def _host_env_with_fault(tmp_path: Path) -> tuple[dict[str, str], Path]:
    faults, log = tmp_path / "faults", tmp_path / "aborted"
    faults.mkdir()
    log.mkdir()
    (faults / "sitecustomize.py").write_text(LOGGED_ABORT_AT_TEARDOWN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(faults), str(REPO)]), "ABORT_LOG": str(log)}
    probe = subprocess.run([sys.executable, "-c", "pass"], env=env)
    marks = list(log.iterdir())
    assert probe.returncode == -6 and len(marks) == 1  # the fault fires in a plain interpreter
    marks[0].unlink()
    return env, log


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_the_cli_exit_code_is_the_runs_verdict(fail: bool, tmp_path: Path, warehouse: Path) -> None:
    if not network_namespaces_available():
        pytest.skip("network namespaces (unshare --net) are unavailable here")
    env, aborted = _host_env_with_fault(tmp_path)

    proc = subprocess.run(
        [sys.executable, "-m", "nb_assets.cli", "run", str(_notebook(tmp_path, fail)), "--warehouse", str(warehouse),
         "--sandbox", "local", "--records", str(tmp_path / "records"), "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )

    assert proc.returncode == (1 if fail else 0), proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["status"] == ("failed" if fail else "success")
    assert list(aborted.iterdir()) == []  # the CLI left before teardown


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["own process", "step process"])
def test_dagster_processes_that_abort_at_exit_still_materialize(tmp_path: Path, warehouse: Path, executor: str) -> None:
    """Dagster judges a step by its events, sent before the process that ran it exits: the run's
    own process for a one-step run (nb_assets' executor), a spawned step process when run config asks."""
    env, aborted = _host_env_with_fault(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    defs = tmp_path / "defs.py"
    defs.write_text(
        "from nb_assets import NotebookAsset, notebook_definitions\n"
        f"defs = notebook_definitions([NotebookAsset({str(_notebook(tmp_path))!r})], "
        f"warehouse={str(warehouse)!r}, sandbox='local')\n"
    )
    spawn = {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}}
    extra = ["--config-json", json.dumps(spawn)] if executor == "step process" else []

    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(defs), "--select", "*", *extra],
        cwd=tmp_path, env={**env, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=600,
    )  # this process aborts at exit too: its exit code says nothing; the run's own record does

    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS], \
            explain_runs(instance, [r.run_id for r in runs]) + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
        steps = instance.get_records_for_run(runs[0].run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records
        assert len(steps) == 1
        step_pid = steps[0].event_log_entry.dagster_event.pid
        run_pids = {r.event_log_entry.dagster_event.pid
                    for r in instance.get_records_for_run(runs[0].run_id, of_type=dg.DagsterEventType.RUN_START).records}
    assert (step_pid in run_pids) == (executor == "own process")
    # The CLI's process aborted at exit, and with a step process that one too.
    assert len(list(aborted.iterdir())) >= (2 if executor == "step process" else 1)
    assert len(warehouse_snapshot(warehouse)["mart.doubled"]) == 20
