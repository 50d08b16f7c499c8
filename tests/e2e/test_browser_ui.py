"""The demo as a user sees it: `make dev`'s `dg dev` on loopback, driven by headless Chromium.

Debian's `chromium` (installed by `make test`) through Playwright's Python API;
Playwright downloads no browser, and the browser reaches nothing but loopback:
any other request is refused and recorded. Screenshots are saved under
`.test-artifacts/` (or $NB_ASSETS_TEST_ARTIFACTS); the README's
docs/asset-graph.png is `asset_graph.png` from there, copied by hand.

Records that try to phone home (tests/support/hostile_record.py) are made in each
sandbox and opened as a user would: the HTML file, and Dagster's own
`/notebook?path=...` page; a bait server on loopback counts what reaches it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.loopback_servers import BaitSink, bait_server
from support.needs import skip_missing
from support.paths import REPO

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STARTUP_S = 180  # dg dev loads the definitions in a code server, then starts the daemon
RUN_S = 300  # one notebook run, Docker sandbox included, on a loaded 2-core machine
DEV_LOG = "dg_dev.log"  # in the served project: the wrapper's and dg dev's output, stdout and stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dg dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"dg dev did not answer {url} within {STARTUP_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dg_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A copy of the demo project (dg.toml included) with a seeded warehouse, served on loopback as
    `make dev` serves it: `dg dev` inside scripts/serve_demo_sources.py. Its output is in DEV_LOG."""
    project = tmp_path_factory.mktemp("ui_demo")
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    for name in ("definitions.py", "policy.yaml", "dg.toml"):
        shutil.copy(REPO / name, project / name)
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(project / "warehouse.duckdb")],
                   check=True, capture_output=True)
    home = project / ".dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    log = project / DEV_LOG
    env = {**os.environ, "DAGSTER_HOME": str(home), "NB_ASSETS_WAREHOUSE": str(project / "warehouse.duckdb")}
    dg_bin = Path(sys.executable).with_name("dg")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "serve_demo_sources.py"), "--port", "0", "--",
             str(dg_bin), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/server_info", process, log)
        os.environ["NB_ASSETS_UI_WAREHOUSE"] = str(project / "warehouse.duckdb")  # for the row-count check
        os.environ["NB_ASSETS_UI_DAGSTER_HOME"] = str(home)  # to explain a run that failed
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C as in `make dev`: SIGINT to the session (the wrapper, dg dev, its webserver, daemon and
    code servers); the wrapper ends once dg dev has shut its services down."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


LOOPBACK = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def browser_context(dg_dev: str) -> Iterator[object]:
    """One Chromium profile for the module. Requests that would leave loopback are refused and
    recorded in `context.offsite` (nbconvert's default template asks a CDN for its scripts)."""
    if CHROMIUM is None:
        skip_missing("browser", "no chromium executable on PATH (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(60_000)
        context.offsite = []  # type: ignore[attr-defined]

        def only_loopback(route) -> None:  # type: ignore[no-untyped-def]
            url = urllib.parse.urlsplit(route.request.url)
            if url.scheme in ("data", "file", "blob") or url.hostname in LOOPBACK:
                route.continue_()
            else:
                context.offsite.append(route.request.url)  # type: ignore[attr-defined]
                route.abort()

        context.route("**/*", only_loopback)
        yield context
        browser.close()


@pytest.fixture(scope="module")
def page(browser_context) -> object:  # type: ignore[no-untyped-def]
    return browser_context.new_page()


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


def test_dg_dev_serves_the_demo_with_no_superseded_or_deprecation_warning(dg_dev: str) -> None:
    # `dagster dev` warns that it is superseded by `dg dev` as it starts; dg dev has no such warning.
    log = (Path(os.environ["NB_ASSETS_UI_WAREHOUSE"]).parent / DEV_LOG).read_text()
    assert "Launching Dagster services" in log and "demo partner API at http://127.0.0.1:" in log, log[-3000:]
    warned = [line for line in log.splitlines() if re.search(r"supersed|supersession|deprecat", line, re.I)]
    assert warned == [], "\n".join(warned)


def test_the_asset_graph_shows_notebooks_with_their_source_tables(page, dg_dev: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, f"{dg_dev}/assets/mart/customer_revenue?view=lineage&lineageScope=upstream&lineageDepth=5")
    graph = page.locator("body")
    for node in ("customer_revenue", "orders_clean", "customers", "orders"):
        graph.get_by_text(node, exact=True).first.wait_for()
    # The sources group holds the raw tables the SQL cells read.
    assert graph.get_by_text("sources", exact=True).count() >= 1
    assert graph.get_by_text("Notebook", exact=True).count() >= 2  # the kind badge on both notebook assets
    page.get_by_text("Loading...").first.wait_for(state="detached")
    page.screenshot(path=str(_artifacts() / "asset_graph.png"))


def _explain(run_url: str) -> str:
    """The run's failure events, read from `dg dev`'s instance (support.dagster_runs)."""
    import dagster as dg

    from support.dagster_runs import explain_run

    with dg.DagsterInstance.from_config(os.environ["NB_ASSETS_UI_DAGSTER_HOME"]) as instance:
        return explain_run(instance, run_url.rstrip("/").rsplit("/", 1)[-1].split("?")[0])


def _materialize(page, dg_dev: str, asset: str) -> None:  # type: ignore[no-untyped-def]
    """Materialize an asset from its page, as a user does, and wait on the run's page for its verdict."""
    _open(page, f"{dg_dev}/assets/{asset}")
    page.locator("button", has_text="Materialize").first.click()
    run_link = page.locator("a[href*='/runs/']").first
    # Dagster asks first when an upstream asset was never materialized in Dagster (made by `nb-assets run`).
    page.locator("a[href*='/runs/'], button:has-text('Confirm')").first.wait_for()
    if not run_link.count():
        page.get_by_role("button", name="Confirm").click()
    run_link.wait_for()
    run_url = f"{dg_dev}{run_link.get_attribute('href')}"

    _open(page, run_url)
    deadline = time.monotonic() + RUN_S
    while not page.get_by_text("Success", exact=True).count():
        assert not page.get_by_text("Failure", exact=True).count(), _explain(run_url) + "\n" + page.inner_text("body")[:3000]
        assert time.monotonic() < deadline, f"run did not succeed within {RUN_S} s\n{_explain(run_url)}"
        page.wait_for_timeout(3000)
        page.reload(wait_until="networkidle")


def test_a_notebook_materializes_from_the_ui_and_shows_its_record(page, dg_dev: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, f"{dg_dev}/assets/mart/orders_clean")
    page.get_by_text("Never materialized").first.wait_for()
    _materialize(page, dg_dev, "mart/orders_clean")

    _open(page, f"{dg_dev}/assets/mart/orders_clean?view=events")
    events = page.locator("body")
    events.get_by_text("notebook/executed", exact=True).first.wait_for()
    text = page.inner_text("body")
    for key in ("notebook/view", "notebook/html", "dagster/row_count", "dagster/column_schema", "notebook/sandbox"):
        assert key in text, key
    assert "executed.ipynb" in text and "executed.html" in text
    import duckdb

    with duckdb.connect(os.environ["NB_ASSETS_UI_WAREHOUSE"], read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM mart.orders_clean").fetchone()[0]
    assert rows > 0 and f"\n{rows}\n" in f"\n{text}\n".replace("\t", "\n")
    page.screenshot(path=str(_artifacts() / "materialization.png"), full_page=True)


def test_a_report_links_to_its_executed_notebook_and_its_chart_shows(page, browser_context, dg_dev: str) -> None:  # type: ignore[no-untyped-def]
    warehouse = Path(os.environ["NB_ASSETS_UI_WAREHOUSE"])
    # The report reads two marts: made by `nb-assets run`, as a cron job outside Dagster would.
    for notebook in ("clean_orders", "customer_revenue", "daily_traffic"):
        done = subprocess.run([str(Path(sys.executable).with_name("nb-assets")), "run", f"notebooks/{notebook}.ipynb",
                               "--warehouse", str(warehouse)], cwd=warehouse.parent, capture_output=True, text=True)
        assert done.returncode == 0, f"nb-assets run {notebook}:\n{done.stdout}\n{done.stderr}"
    _materialize(page, dg_dev, "reports/revenue_report")

    _open(page, f"{dg_dev}/assets/reports/revenue_report?view=events")
    link = page.locator("a[href^='/notebook?']").first  # the notebook/view entry
    link.wait_for()
    with browser_context.expect_page() as opened:
        link.click()
    notebook = opened.value
    notebook.wait_for_load_state()
    assert notebook.url.startswith(f"{dg_dev}/notebook?"), notebook.url
    chart = notebook.locator("img[src^='data:image/png']").first
    chart.wait_for()
    assert chart.evaluate("img => img.complete && img.naturalWidth > 100"), "the chart did not render"
    assert "Revenue by country" in notebook.inner_text("body") or notebook.locator("table.dataframe").count() >= 1
    notebook.screenshot(path=str(_artifacts() / "executed_notebook.png"), full_page=True)
    notebook.close()


# --- records that try to phone home --------------------------------------------------------

CUSTOMERS = ["alice0@example.com", "bob1@example.com", "carol2@example.com"]


@pytest.fixture(scope="module")
def bait() -> Iterator[BaitSink]:
    with bait_server() as sink:
        yield sink


@pytest.fixture(scope="module", params=["local", "docker"])
def hostile_record(request: pytest.FixtureRequest, bait: BaitSink, dg_dev: str) -> Path:
    """The record of tests/support/hostile_record.py's notebook, run in each sandbox and kept by keep_record,
    inside the served project (Dagster's code server serves notebooks from below its working directory)."""
    import duckdb

    from support.hostile_record import hostile_notebook
    from nb_assets.runs.pipeline import run_pipeline
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.runs.record import keep_record
    from nb_assets.sandbox.base import SandboxLimits
    from nb_assets.sandbox.local import LocalSandbox, network_namespaces_available
    from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse

    if request.param == "local":
        if not network_namespaces_available():
            pytest.skip("network namespaces (unshare --net) are unavailable here")
        sandbox = LocalSandbox()
    else:
        from nb_assets.sandbox.container import DockerSandbox

        sandbox = DockerSandbox(image=request.getfixturevalue("docker_image"))
    tmp = Path(os.environ["NB_ASSETS_UI_WAREHOUSE"]).parent / f"hostile_{request.param}"
    tmp.mkdir()
    warehouse = tmp / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.customers AS SELECT * FROM (VALUES (1, ?), (2, ?), (3, ?)) t(customer_id, email)", CUSTOMERS)
    before = len(bait.requests)
    path = hostile_notebook(tmp / "leaky_report.ipynb", bait.url, data="','.join(customers['email'])",
                            sql="SELECT customer_id, email FROM raw.customers ORDER BY customer_id")
    run = run_pipeline(parse_notebook(path), warehouse=DuckDBWarehouse(warehouse), sandbox=sandbox,
                       run_dir=tmp / "run", limits=SandboxLimits(timeout_s=180))
    assert run.status == "success", run.error
    keep_record(run, html=True)
    assert bait.requests[before:] == [], "the sandbox itself reached the bait"
    return run.folder.record_dir


def _assert_inert(page, bait: BaitSink, what: str) -> None:  # type: ignore[no-untyped-def]
    """Nothing reached the bait, no notebook script ran, and the report is still readable."""
    page.wait_for_timeout(2000)  # room for a refresh, a lazy image or a timer to fire, if any survived
    leaked = [f"{method} {path}" for method, path in bait.requests]
    assert leaked == [], f"{what} sent {len(leaked)} request(s) to the bait: {leaked}"
    assert page.evaluate("window.__nb_pwned === undefined"), f"{what} ran the notebook's script"
    assert page.evaluate("[...document.querySelectorAll('*')].every(e => [...e.attributes].every(a => !a.name.startsWith('on')))")
    chart = page.locator("img[src^='data:image/png']").first
    assert chart.evaluate("img => img.complete && img.naturalWidth > 100"), f"{what}: the chart did not render"
    table = page.locator("table.dataframe").first
    assert all(email in table.inner_text() for email in CUSTOMERS), f"{what}: the DataFrame table did not render"


def test_a_hostile_records_html_loads_nothing_and_runs_nothing(hostile_record: Path, browser_context, bait: BaitSink) -> None:  # type: ignore[no-untyped-def]
    page = browser_context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    bait.requests.clear()
    html = hostile_record / "executed.html"
    page.goto(html.as_uri(), wait_until="load")
    _assert_inert(page, bait, "executed.html")
    assert page.evaluate("document.scripts.length") == 0
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    page.screenshot(path=str(_artifacts() / f"{hostile_record.parent.parent.name}.png"), full_page=True)
    page.close()


def test_a_hostile_record_in_dagsters_notebook_page_loads_nothing_and_runs_nothing(
    hostile_record: Path, browser_context, bait: BaitSink, dg_dev: str
) -> None:  # type: ignore[no-untyped-def]
    from nbconvert import HTMLExporter

    from nb_assets.deploy.webserver_client import LOCATIONS, graphql

    location = graphql(dg_dev, LOCATIONS)["workspaceOrError"]["locationEntries"][0]["name"]
    url = f"{dg_dev}/notebook?" + urllib.parse.urlencode({"path": str(hostile_record / "executed.ipynb"), "repoLocName": location})
    page = browser_context.new_page()
    bait.requests.clear()
    offsite_before = len(browser_context.offsite)
    page.goto(url, wait_until="load")
    _assert_inert(page, bait, "Dagster's /notebook page")
    # Only the page's own template asks the CDN for anything (refused here): require.js and MathJax.
    template = HTMLExporter()
    assert set(browser_context.offsite[offsite_before:]) <= {template.require_js_url, template.mathjax_url}
    page.close()
