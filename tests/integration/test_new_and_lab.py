"""`nb-assets new` writes a starter that `nb-assets check` passes; `nb-assets lab` serves the
project with JupyterLab on loopback, with the token it makes, %%sql pointed at the project's warehouse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support.cli import nb_assets
from support.lab_server import lab_server
from support.schedule_project import project  # noqa: F401 - the fixture: a git copy of the demo

pytestmark = pytest.mark.slow


def test_new_writes_a_starter_notebook_that_check_passes(project: Path) -> None:
    made = nb_assets("new", "top_orders", cwd=project / "notebooks")
    path = project / "notebooks" / "top_orders.ipynb"
    assert made.returncode == 0 and path.is_file(), made.stdout + made.stderr
    checked = nb_assets("check", str(path), "--json", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    [report] = json.loads(checked.stdout)["notebooks"]
    assert report["outputs"] == ["mart.top_orders"] and report["inputs"][0]["tables"] == ["raw.orders"]
    assert report["findings"] == [] and [p["name"] for p in report["parameters"]] == ["limit"]
    again = nb_assets("new", "notebooks/top_orders.ipynb", cwd=project)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_lab_serves_the_project_on_loopback_with_its_warehouse(project: Path, tmp_path: Path) -> None:
    env = {**os.environ}
    env.pop("NB_ASSETS_WAREHOUSE", None)
    with lab_server(project, tmp_path, env) as lab:
        status, body = lab.get("/api/contents")
        assert status == 200, lab.log_tail()
        assert {"definitions.py", "notebooks"} <= {item["name"] for item in json.loads(body)["content"]}
        assert lab.get("/api/contents", token=False)[0] == 403  # the token JupyterLab was given is required
        # The server (the same process: `lab` execs JupyterLab) passes the warehouse to every kernel.
        pid = lab.process.pid
        environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        assert environ["NB_ASSETS_WAREHOUSE"] == str(project / "warehouse.duckdb")
        assert f"%%sql reading {project / 'warehouse.duckdb'}" in lab.log.read_text()
        assert "--ServerApp.ip=127.0.0.1" in Path(f"/proc/{pid}/cmdline").read_text().split("\0")  # loopback only
