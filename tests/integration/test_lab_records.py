"""`nb-assets lab` serves the run records under the project's hidden .nb_assets/ folder, which
%nb_context links to (Jupyter Server refuses hidden paths unless told). A real record of a real
`nb-assets run`, a real JupyterLab server on loopback started by the lab command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from support.cli import NB_ASSETS
from support.lab_server import lab_server
from support.notebook_factory import RUNTIME, code, params, write_notebook

pytestmark = pytest.mark.slow


def test_lab_serves_the_run_records_in_the_hidden_folder(tmp_path: Path, warehouse: Path) -> None:
    project = tmp_path / "project"
    notebook = write_notebook(project / "boom.ipynb", code(RUNTIME), params("d = 0"), code("x = 1 / d"))
    ran = subprocess.run([*NB_ASSETS, "run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local"],
                         cwd=project, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # failed, as the trial's boom did: its record is what is linked
    [executed] = (project / ".nb_assets").rglob("executed.ipynb")
    record = executed.relative_to(project).as_posix()

    with lab_server(project, tmp_path, {**os.environ, "NB_ASSETS_WAREHOUSE": str(warehouse)}) as lab:
        status, body = lab.get(f"/api/contents/{quote(record)}")
        assert status == 200, f"GET /api/contents/{record}: {status}\n{lab.log_tail()}"
        model = json.loads(body)
        assert model["type"] == "notebook" and model["path"] == record
        assert "ZeroDivisionError" in json.dumps(model["content"])  # the run's own executed notebook
        assert lab.get(f"/api/contents/{quote(record)}", token=False)[0] == 403  # still only with the token
