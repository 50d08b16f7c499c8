"""`nb-assets lab` serves the run records under the project's hidden .nb_assets/ folder, which
%nb_context links to (Jupyter Server refuses hidden paths unless told). A real record of a real
`nb-assets run`, a real JupyterLab server on loopback started by the lab command."""

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
from urllib.parse import quote

import pytest

from support.cli import NB_ASSETS
from support.notebook_factory import RUNTIME, code, params, write_notebook

pytestmark = pytest.mark.slow
STARTUP_S = 120  # JupyterLab's server on a loaded 2-core machine


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


def test_lab_serves_the_run_records_in_the_hidden_folder(tmp_path: Path, warehouse: Path) -> None:
    project = tmp_path / "project"
    notebook = write_notebook(project / "boom.ipynb", code(RUNTIME), params("d = 0"), code("x = 1 / d"))
    ran = subprocess.run([*NB_ASSETS, "run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local"],
                         cwd=project, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # failed, as the trial's boom did: its record is what is linked
    [executed] = (project / ".nb_assets").rglob("executed.ipynb")
    record = executed.relative_to(project).as_posix()

    port, token = _free_port(), secrets.token_hex(16)
    jupyter = {f"JUPYTER_{k}": str(tmp_path / k.lower()) for k in ("CONFIG_DIR", "RUNTIME_DIR", "DATA_DIR")}
    env = {**os.environ, **jupyter, "JUPYTER_TOKEN": token, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "NB_ASSETS_WAREHOUSE": str(warehouse)}
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*NB_ASSETS, "lab", str(project), "--port", str(port), "--no-browser"], cwd=tmp_path,
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + STARTUP_S
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                status, body = _get(f"{base}/api/contents/{quote(record)}?token={token}")
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer within {STARTUP_S} s:\n{log.read_text()[-3000:]}"
                time.sleep(1)
        assert status == 200, f"GET /api/contents/{record}: {status}\n{log.read_text()[-3000:]}"
        model = json.loads(body)
        assert model["type"] == "notebook" and model["path"] == record
        assert "ZeroDivisionError" in json.dumps(model["content"])  # the run's own executed notebook
        assert _get(f"{base}/api/contents/{quote(record)}")[0] == 403  # still only with the token
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
