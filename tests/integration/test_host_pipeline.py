"""Real runs through papermill and a Jupyter kernel in LocalSandbox (and, where a promise holds for both, in Docker)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from support.warehouses import warehouse_snapshot
from nb_assets.errors import DeclarationError, NotebookRunError, OutputValidationError
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.analysis.parser import parse_notebook
from nb_assets.sandbox.base import Sandbox, SandboxLimits
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.notebook_factory import RUNTIME, code, md, params, write_notebook

SQL = "%%sql orders\nSELECT * FROM raw.orders WHERE amount >= $min_amount ORDER BY order_id"


def _run(path: Path, warehouse: Path, tmp_path: Path, *, evade_static_checks: bool = False, sandbox: Sandbox | None = None,
         **kwargs):
    spec = parse_notebook(path)
    if evade_static_checks:  # the sandbox must hold even for code the rules would refuse
        spec = dataclasses.replace(spec, findings=())
    return run_pipeline(
        spec,
        warehouse=DuckDBWarehouse(warehouse),
        sandbox=sandbox or LocalSandbox(),
        run_dir=tmp_path / "run",
        **kwargs,
    )


def test_successful_run_loads_outputs_with_injected_parameters(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "big_orders.ipynb",
        md("# Big orders"),
        code(RUNTIME),
        params("min_amount = 0.0"),
        code(SQL),
        code("by_customer = orders.groupby('customer_id', as_index=False).amount.sum()\noutput('mart.big_orders', by_customer)"),
    )
    run = _run(path, warehouse, tmp_path, params={"min_amount": 15})
    assert run.status == "success", run.error
    assert run.input_rows == {"orders": 10}  # amounts 15.0 .. 28.5
    assert run.loaded_rows == {"mart.big_orders": 3}
    total = sum(r[1] for r in warehouse_snapshot(warehouse)["mart.big_orders"])
    assert total == sum(i * 1.5 for i in range(10, 20))
    executed = json.loads(run.executed_notebook.read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "min_amount = 15" in "".join(injected[0]["source"])


def test_cell_error_names_the_cell_and_changes_nothing(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "crash.ipynb",
        code(RUNTIME),
        params("min_amount = 0"),
        code(SQL),
        code("output('mart.half', orders)"),
        code("raise ValueError('bad data in orders')"),
    )
    before = warehouse_snapshot(warehouse)
    run = _run(path, warehouse, tmp_path)
    assert run.status == "failed"
    assert isinstance(run.error, NotebookRunError)
    assert run.error.cell == 5 and run.error.kind == "cell-error"
    assert "crash.ipynb: cell 5 raised ValueError: bad data in orders" in str(run.error)
    assert warehouse_snapshot(warehouse) == before
    assert run.executed_notebook.exists()


def test_timeout_kills_the_run_and_names_the_cell(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "spin.ipynb", code(RUNTIME), code("x = 1"), code("while True:\n    pass"))
    run = _run(path, warehouse, tmp_path, limits=SandboxLimits(timeout_s=8))
    assert run.status == "failed" and run.error.kind == "timeout"
    assert "spin.ipynb: timed out after 8 s in cell 3" in str(run.error)


def test_kernel_exit_is_a_dead_kernel(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "die.ipynb", code(RUNTIME), code("import os\nos._exit(1)"))
    run = _run(path, warehouse, tmp_path)
    assert run.status == "failed" and run.error.kind == "dead-kernel", run.error
    assert "die.ipynb: the kernel died" in str(run.error)


def test_unknown_parameter_is_refused_before_anything_runs(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "p.ipynb", code(RUNTIME), params("min_amount = 0"), code(SQL))
    with pytest.raises(DeclarationError, match="unknown parameter 'min_amont'"):
        _run(path, warehouse, tmp_path, params={"min_amont": 3})
    assert not (tmp_path / "run").exists()


def test_wrong_parameter_type_is_refused(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "p.ipynb", code(RUNTIME), params("min_amount = 0"), code(SQL))
    with pytest.raises(DeclarationError, match="expects int, got str"):
        _run(path, warehouse, tmp_path, params={"min_amount": "3"})


def test_declared_output_not_written_fails_and_loads_nothing(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "skip.ipynb", code(RUNTIME), params("write = False"),
        code("import pandas as pd\nif write:\n    output('mart.maybe', pd.DataFrame({'a': [1]}))"),
    )
    before = warehouse_snapshot(warehouse)
    run = _run(path, warehouse, tmp_path)
    assert isinstance(run.error, OutputValidationError)
    assert "declared output mart.maybe was not written" in str(run.error)
    assert warehouse_snapshot(warehouse) == before


def test_sql_cell_edited_after_prefetch_is_refused(warehouse: Path, tmp_path: Path) -> None:
    """The kernel checks each %%sql cell against the manifest of what was prefetched."""
    path = write_notebook(tmp_path / "edit.ipynb", code(RUNTIME), params("min_amount = 0"), code(SQL))
    spec = parse_notebook(path)
    write_notebook(path, code(RUNTIME), params("min_amount = 0"), code(SQL + " LIMIT 1"))
    run = run_pipeline(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run")
    assert run.status == "failed" and run.error.cell == 3
    assert "differs from the query that was prefetched" in str(run.error)


def test_timeout_kills_a_kernel_stuck_in_c_code(warehouse: Path, tmp_path: Path, each_sandbox: Sandbox) -> None:
    """sum(range(...)) holds the GIL, so ipykernel's own parent-poller never runs. It would take hours: a run that
    ends at all was killed at its deadline (pytest-timeout fails the test otherwise)."""
    path = write_notebook(tmp_path / "c_loop.ipynb", code(RUNTIME), code("sum(range(10**13))"))
    run = _run(path, warehouse, tmp_path, sandbox=each_sandbox, limits=SandboxLimits(timeout_s=6))
    assert run.status == "failed" and run.error.kind == "timeout", run.error
    assert "c_loop.ipynb: timed out after 6 s" in str(run.error)
    _no_container_left(each_sandbox, run)


def _no_container_left(sandbox: Sandbox, run: object) -> None:
    """In Docker every process of the run lives in its container: gone, they are gone."""
    if sandbox.kind == "docker":
        label = f"nb_assets.run_folder={run.folder.root}"  # type: ignore[attr-defined]
        assert sandbox.client.containers.list(all=True, filters={"label": label}) == []  # type: ignore[attr-defined]


def test_a_setsid_daemon_dies_at_the_deadline_in_docker(warehouse: Path, tmp_path: Path, docker_image: str) -> None:
    """A daemon forked with setsid, then a cell that never ends: at the deadline the container goes, and with it
    the daemon (LocalSandbox's PID namespace does the same: test_no_process_outlives_its_run)."""
    from nb_assets.sandbox.container import DockerSandbox

    daemon = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    while True:\n        time.sleep(0.1)"
    path = write_notebook(tmp_path / "daemon.ipynb", code(RUNTIME), code(daemon), code("while True:\n    pass"))
    sandbox = DockerSandbox(image=docker_image)
    run = _run(path, warehouse, tmp_path, evade_static_checks=True, sandbox=sandbox, limits=SandboxLimits(timeout_s=8))
    assert run.status == "failed" and run.error.kind == "timeout", run.error
    _no_container_left(sandbox, run)


def test_no_process_outlives_its_run(warehouse: Path, tmp_path: Path) -> None:
    beacon = tmp_path / "beacon"
    daemon = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    while True:\n"
        f"        open({str(beacon)!r}, 'w').write(str(time.time()))\n"
        "        time.sleep(0.1)"
    )
    path = write_notebook(tmp_path / "daemon.ipynb", code(RUNTIME), code(daemon), code("import time\ntime.sleep(0.5)"))
    run = _run(path, warehouse, tmp_path, evade_static_checks=True)
    assert run.status == "success", run.error
    assert run.sandbox["network"].startswith("none")
    import time

    time.sleep(0.5)
    last = beacon.read_text()
    time.sleep(1.0)
    assert beacon.read_text() == last, "a process forked by the notebook is still running"
