"""The demo as a user sees it: `dagster dev` on loopback, driven by headless Chromium.

Debian's `chromium` (installed by `make test`) through Playwright's Python API;
Playwright downloads no browser. A screenshot of the asset graph is saved under
`.test-artifacts/` (or $NB_ASSETS_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STARTUP_S = 180  # dagster dev loads the definitions in a code server, then starts the daemon
RUN_S = 300  # one notebook run, Docker sandbox included, on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"dagster dev did not answer {url} within {STARTUP_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A copy of the demo project with a seeded warehouse, served by `dagster dev` on loopback."""
    project = tmp_path_factory.mktemp("ui_demo")
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    for name in ("definitions.py", "policy.yaml"):
        shutil.copy(REPO / name, project / name)
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(project / "warehouse.duckdb")],
                   check=True, capture_output=True)
    home = project / ".dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    log = project / "dagster_dev.log"
    env = {**os.environ, "DAGSTER_HOME": str(home), "NB_ASSETS_WAREHOUSE": str(project / "warehouse.duckdb")}
    dagster = Path(sys.executable).with_name("dagster")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(dagster), "dev", "-f", "definitions.py", "-h", "127.0.0.1", "-p", str(port)],
            cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", process, log)
        os.environ["NB_ASSETS_UI_WAREHOUSE"] = str(project / "warehouse.duckdb")  # for the row-count check
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # webserver, daemon and code servers together
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def page(dagster_dev: str) -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("no chromium executable on PATH (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url, wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")  # Dagster's newsletter dialog, once per browser profile
    if not getattr(page, "_dialog_dismissed", False):
        try:
            skip.click(timeout=15_000)
        except Exception:  # noqa: BLE001 - a Dagster version without the dialog
            pass
        page._dialog_dismissed = True


def _artifacts() -> Path:
    folder = Path(os.environ.get("NB_ASSETS_TEST_ARTIFACTS", REPO / ".test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_asset_graph_shows_notebooks_with_their_source_tables(page, dagster_dev: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, f"{dagster_dev}/assets/mart/customer_revenue?view=lineage&lineageScope=upstream&lineageDepth=5")
    graph = page.locator("body")
    for node in ("customer_revenue", "orders_clean", "customers", "orders"):
        graph.get_by_text(node, exact=True).first.wait_for()
    # The sources group holds the raw tables the SQL cells read.
    assert graph.get_by_text("sources", exact=True).count() >= 1
    assert graph.get_by_text("Notebook", exact=True).count() >= 2  # the kind badge on both notebook assets
    page.get_by_text("Loading...").first.wait_for(state="detached")
    page.screenshot(path=str(_artifacts() / "asset_graph.png"))


def test_a_notebook_materializes_from_the_ui_and_shows_its_record(page, dagster_dev: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, f"{dagster_dev}/assets/mart/orders_clean")
    page.get_by_text("Never materialized").first.wait_for()
    page.locator("button", has_text="Materialize").first.click()
    run_link = page.locator("a[href*='/runs/']").first
    run_link.wait_for()
    run_url = f"{dagster_dev}{run_link.get_attribute('href')}"

    _open(page, run_url)
    deadline = time.monotonic() + RUN_S
    while not page.get_by_text("Success", exact=True).count():
        assert not page.get_by_text("Failure", exact=True).count(), page.inner_text("body")[:3000]
        assert time.monotonic() < deadline, f"run did not succeed within {RUN_S} s"
        page.wait_for_timeout(3000)
        page.reload(wait_until="networkidle")

    _open(page, f"{dagster_dev}/assets/mart/orders_clean?view=events")
    events = page.locator("body")
    events.get_by_text("notebook/executed", exact=True).first.wait_for()
    text = page.inner_text("body")
    for key in ("notebook/html", "dagster/row_count", "dagster/column_schema", "notebook/sandbox"):
        assert key in text, key
    assert "executed.ipynb" in text and "executed.html" in text
    import duckdb

    with duckdb.connect(os.environ["NB_ASSETS_UI_WAREHOUSE"], read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM mart.orders_clean").fetchone()[0]
    assert rows > 0 and f"\n{rows}\n" in f"\n{text}\n".replace("\t", "\n")
    page.screenshot(path=str(_artifacts() / "materialization.png"), full_page=True)
