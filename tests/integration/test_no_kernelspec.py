"""A notebook saved without kernelspec metadata runs in the project's kernel (issue 19, point 3),
and what papermill itself raises is the runner's error, never the notebook's.

Before: such a notebook passed `check`, then every run failed with papermill's
"No language found in notebook", reported as "the notebook raised ValueError".
Real papermill, a real kernel, in the local sandbox and in Docker.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat

from support.warehouses import warehouse_snapshot
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.analysis.parser import parse_notebook
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.cli import NB_ASSETS
from support.notebook_factory import RUNTIME, code, params


def _without_kernelspec(path: Path) -> Path:
    notebook = nbformat.v4.new_notebook()  # metadata {}: no kernelspec, no language_info, as some tools save it
    notebook.cells = [
        code(RUNTIME),
        params("n = 3"),
        code("import pandas as pd\ncounted = pd.DataFrame({'x': range(n)})"),
        code("output('mart.counted', counted)"),
    ]
    nbformat.write(notebook, str(path))
    assert "kernelspec" not in json.loads(path.read_text())["metadata"]
    return path


def test_it_runs_in_the_project_kernel_in_each_sandbox(tmp_path: Path, warehouse: Path, each_sandbox) -> None:
    spec = parse_notebook(_without_kernelspec(tmp_path / "counted.ipynb"))
    run = run_pipeline(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=each_sandbox, run_dir=tmp_path / "run", params={"n": 5})
    assert run.status == "success", f"{run.error}\n{run.sandbox}"
    assert run.loaded_rows == {"mart.counted": 5}
    executed = json.loads(run.executed_notebook.read_text())
    assert executed["metadata"]["language_info"]["name"] == "python"  # the kernel that ran it says so
    assert len(warehouse_snapshot(warehouse)["mart.counted"]) == 5


def test_check_says_which_kernel_it_will_run_in(tmp_path: Path) -> None:
    (finding,) = parse_notebook(_without_kernelspec(tmp_path / "counted.ipynb")).findings
    assert (finding.rule, finding.severity) == ("no-kernelspec", "warning")
    assert "runs in the project's Python kernel (python3)" in finding.message


def test_a_kernel_that_cannot_start_is_the_runners_error_not_the_notebooks(tmp_path: Path, warehouse: Path) -> None:
    """The kernel the runner starts is broken (its kernelspec names a missing program): papermill
    raises before any cell runs, and the verdict says the run's setup failed."""
    kernels = tmp_path / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(
        {"argv": [str(tmp_path / "no-such-python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "broken", "language": "python"}))
    notebook = _without_kernelspec(tmp_path / "counted.ipynb")
    before = warehouse_snapshot(warehouse)
    proc = subprocess.run(
        [*NB_ASSETS, "run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", "--records", str(tmp_path / "records")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "JUPYTER_PATH": str(tmp_path / "jupyter")},
    )
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert "the runner failed outside the notebook's cells (papermill raised FileNotFoundError" in proc.stderr
    assert "not an error in the notebook" in proc.stderr and "the notebook raised" not in proc.stderr
    assert "details: nb-assets show " in proc.stderr and "None" not in proc.stderr
    assert warehouse_snapshot(warehouse) == before
    proc = subprocess.run(
        [*NB_ASSETS, "run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", "--records", str(tmp_path / "records"),
         "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "JUPYTER_PATH": str(tmp_path / "jupyter")},
    )
    error = json.loads(proc.stdout)["error"]
    assert (error["kind"], error["type"], error["cell"]) == ("runner-error", "FileNotFoundError", None), error
