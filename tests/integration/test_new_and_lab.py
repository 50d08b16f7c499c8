"""`nb-assets new` writes a starter that `nb-assets check` passes; `nb-assets lab` serves the
project with JupyterLab on loopback, with the token it makes, %%sql pointed at the project's warehouse."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support.cli import NB_ASSETS, nb_assets
from support.schedule_project import project  # noqa: F401 - the fixture: a git copy of the demo

pytestmark = pytest.mark.slow
STARTUP_S = 120  # JupyterLab's server on a loaded 2-core machine


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_lab_serves_the_project_on_loopback_with_its_warehouse(project: Path, tmp_path: Path) -> None:
    port, token = _free_port(), secrets.token_hex(16)
    jupyter = {f"JUPYTER_{k}": str(tmp_path / k.lower()) for k in ("CONFIG_DIR", "RUNTIME_DIR", "DATA_DIR")}
    env = {**os.environ, **jupyter, "JUPYTER_TOKEN": token, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    env.pop("NB_ASSETS_WAREHOUSE", None)
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*NB_ASSETS, "lab", str(project), "--port", str(port), "--no-browser"], cwd=tmp_path,
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + STARTUP_S
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                status, body = _get(f"{base}/api/contents?token={token}")
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer within {STARTUP_S} s:\n{log.read_text()[-3000:]}"
                time.sleep(1)
        assert status == 200
        assert {"definitions.py", "notebooks"} <= {item["name"] for item in json.loads(body)["content"]}
        assert _get(f"{base}/api/contents")[0] == 403  # the token JupyterLab was given is required
        # The server (the same process: `lab` execs JupyterLab) passes the warehouse to every kernel.
        environ = dict(item.split("=", 1) for item in Path(f"/proc/{server.pid}/environ").read_text().split("\0") if "=" in item)
        assert environ["NB_ASSETS_WAREHOUSE"] == str(project / "warehouse.duckdb")
        assert f"%%sql reading {project / 'warehouse.duckdb'}" in log.read_text()
        assert "--ServerApp.ip=127.0.0.1" in Path(f"/proc/{server.pid}/cmdline").read_text().split("\0")  # loopback only
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
