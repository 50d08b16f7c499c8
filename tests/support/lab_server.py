"""`nb-assets lab` started as a user starts it, on a free loopback port with its own token and
Jupyter folders under the test's tmp folder; stopped (its whole process group) whatever happens."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.cli import NB_ASSETS
from support.loopback_servers import free_port

STARTUP_S = 120  # JupyterLab's server on a loaded 2-core machine


@dataclass(frozen=True)
class LabServer:
    base: str  # http://127.0.0.1:PORT
    token: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str, *, token: bool = True) -> tuple[int, bytes]:
        """GET `path` (e.g. /api/contents), with the server's token unless `token` is False."""
        url = f"{self.base}{path}" + (f"{'&' if '?' in path else '?'}token={self.token}" if token else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextmanager
def lab_server(project: Path, tmp_path: Path, env: dict[str, str]) -> Iterator[LabServer]:
    """`nb-assets lab PROJECT` with `env`, once its contents API answers."""
    token = secrets.token_hex(16)
    jupyter = {f"JUPYTER_{k}": str(tmp_path / k.lower()) for k in ("CONFIG_DIR", "RUNTIME_DIR", "DATA_DIR")}
    env = {**env, **jupyter, "JUPYTER_TOKEN": token, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    port, log = free_port(), tmp_path / "lab.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*NB_ASSETS, "lab", str(project), "--port", str(port), "--no-browser"], cwd=tmp_path,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, process, log)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, server.log_tail()
            try:
                server.get("/api/contents")
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer within {STARTUP_S} s:\n{server.log_tail()}"
                time.sleep(1)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
