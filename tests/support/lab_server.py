"""`nb-assets lab` started as a user starts it, on a free loopback port with its own token and
Jupyter folders under the test's tmp folder; stopped (its whole process group) whatever happens.

`lab_page` opens it in Debian's Chromium through Playwright, every request outside loopback
refused, for a test that clicks what an author clicks.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.cli import NB_ASSETS
from support.loopback_servers import free_port
from support.needs import skip_missing

STARTUP_S = 120  # JupyterLab's server on a loaded 2-core machine
LOOPBACK = {"127.0.0.1", "localhost"}


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
def lab_server(project: Path, tmp_path: Path, env: dict[str, str], *, expose_app: bool = False) -> Iterator[LabServer]:
    """`nb-assets lab PROJECT` with `env`, once its contents API answers. `expose_app`: the page
    gets `window.jupyterapp`, so a browser test reads the notebook's state rather than guessing it."""
    token = secrets.token_hex(16)
    jupyter = {f"JUPYTER_{k}": str(tmp_path / k.lower()) for k in ("CONFIG_DIR", "RUNTIME_DIR", "DATA_DIR")}
    if expose_app:
        config = Path(jupyter["JUPYTER_CONFIG_DIR"])
        config.mkdir(parents=True, exist_ok=True)
        (config / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {"expose_app_in_browser": True}}))
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


def chromium() -> str:
    """Debian's Chromium, or the test skips through the skip gate (a missing browser fails `make test`)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        skip_missing("browser", "no chromium executable on PATH (make setup installs Debian's chromium)")
    assert found is not None
    return found


@contextmanager
def lab_page(executable: str, viewport: tuple[int, int] = (1400, 900)) -> Iterator[Any]:
    """A Chromium page; a request outside loopback is refused and listed in `page.offsite`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(120_000)
            offsite: list[str] = []

            def only_loopback(route: Any) -> None:
                url = urllib.parse.urlsplit(route.request.url)
                if url.scheme in ("data", "blob") or url.hostname in LOOPBACK:
                    route.continue_()
                else:
                    offsite.append(route.request.url)
                    route.abort()

            context.route("**/*", only_loopback)
            page = context.new_page()
            page.offsite = offsite
            yield page
        finally:
            browser.close()


def open_notebook(page: Any, server: LabServer, relative: str) -> None:
    """JupyterLab on `relative` (a fresh workspace), once its kernel is idle (`expose_app` servers only)."""
    page.goto(f"{server.base}/lab/tree/{relative}?reset&token={server.token}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'",
                           timeout=STARTUP_S * 1000)


def wait_idle(page: Any, timeout_s: float = STARTUP_S) -> None:
    """The current notebook's kernel idle again (after a short pause, so a just-sent request is busy first)."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=timeout_s * 1000)
