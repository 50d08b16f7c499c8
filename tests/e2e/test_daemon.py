"""Landings drive the demo project's notebooks through a real `dagster-daemon`.

A copy of the demo project (its definitions.py, notebooks, policy and source files, a
freshly seeded warehouse) under a temporary DAGSTER_HOME with SQLite storage; data
lands with `nb-assets land`, through the file drop and as a new file under a watched
source folder, and every wait is bounded and polls what the daemon recorded (ticks,
runs, materializations). The daemon is restarted once: nothing runs twice, and what had
landed before the restart still counts towards the next run. A wait that times out and
a count that is wrong print the timeline (runs, landings, the ticks that requested runs).

The daemon loads the demo through NO_CRON, which stops the demo's cron triggers
(06:00-07:00 Europe/Amsterdam daily, Monday 05:00): a test crossing one of those
minutes got extra runs, and a cron run of daily_orders could create its table
first. So the test holds at any time of day, and it checks that no cron ran.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from support.paths import REPO
from support.daemon import DagsterDaemon
from support.dagster_runs import explain_run, explain_runs
from support.polling import HasLog, wait_for
from support.watched_sources import new_files, source_landings, watched_definitions
from nb_assets.defs.source_sensor import SOURCE_SENSOR
from nb_assets.runs.history import find_runs
from nb_assets.warehouse.duckdb.warehouse import connect
from nb_assets.deploy.webserver_client import graphql, wait_until_serving

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SENSORS = ("nb_assets_landings", "nb_assets_file_drop_raw_orders", SOURCE_SENSOR, "nb_assets_automation")
NOTEBOOK_OF = {
    "mart/orders_clean": "clean_orders", "mart/customer_revenue": "customer_revenue",
    "mart/daily_traffic": "daily_traffic", "reports/revenue_report": "revenue_report",
    "mart/regional_revenue_emea": "regional_revenue_emea", "mart/regional_revenue_apac": "regional_revenue_apac",
    "mart/daily_orders": "daily_orders", "mart/revenue_eur_by_region": "fx_revenue",
}
RUN_TIMEOUT_S = 300  # a notebook run on a loaded 2-core machine; polled, so usually far less
TICK_TIMEOUT_S = 120
# The demo's definitions with its cron triggers stopped: every notebook keeps its assets, landings still start
# clean_orders and customer_revenue, and nothing starts because of the time of day. (revenue_report waits for a
# cron tick and then its inputs: stopped too.) Dagster's public map_asset_specs, on the demo's own Definitions.
NO_CRON_FILE = "definitions_no_cron.py"
NO_CRON = """\
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("nb_assets_demo_definitions", Path(__file__).with_name("definitions.py"))
_demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_demo)


def _no_cron(spec):
    condition = spec.automation_condition
    if condition is not None and "at each tick of" in (condition.get_label() or ""):
        return spec.replace_attributes(automation_condition=None)
    return spec


defs = _demo.defs.map_asset_specs(func=_no_cron)
"""
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:  # launch as soon as the automation sensor asks: one hop less to wait for
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""


@contextlib.contextmanager
def demo_copy(tmp: Path) -> Iterator[tuple[Path, DagsterDaemon, dg.DagsterInstance, dict[str, str]]]:
    """The demo copied and seeded under `tmp`, its daemon (not started), and its instance."""
    project, home = tmp / "project", tmp / "dagster_home"
    project.mkdir()
    home.mkdir()
    shutil.copy(REPO / "policy.yaml", project / "policy.yaml")
    # Its two declared sources watched, fx_revenue started when its inputs land (support/watched_sources.py).
    (project / "definitions.py").write_text(watched_definitions((REPO / "definitions.py").read_text()))
    (project / NO_CRON_FILE).write_text(NO_CRON)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    shutil.copytree(REPO / "sources", project / "sources")
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),  # the code under test
        "NB_ASSETS_WAREHOUSE": str(project / "warehouse.duckdb"),
        "NB_ASSETS_SANDBOX": "local",
        "NB_ASSETS_SENSOR_INTERVAL_S": "2",
    }
    env.pop("NB_ASSETS_DEMO_RATES_URL", None)  # partner_rates is the demo's file stand-in, watched like the folder
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(project / "warehouse.duckdb")],
                   env=env, check=True, capture_output=True)
    daemon = DagsterDaemon(project, env, definitions=NO_CRON_FILE, log=home / "daemon.log")
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    instance = dg.DagsterInstance.get()
    try:
        yield project, daemon, instance, env
    finally:
        daemon.stop()
        instance.dispose()
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    with demo_copy(tmp_path_factory.mktemp("daemon")) as copy:
        yield copy


def ticks_since(instance: dg.DagsterInstance, name: str, since: float, limit: int | None = 50) -> list:
    """The sensor's ticks after `since`, newest first (the newest `limit` of them)."""
    state = next((s for s in instance.all_instigator_state() if s.instigator_name == name), None)
    if state is None:
        return []
    return [t for t in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=limit) if t.timestamp > since]


class Story:
    """What a wait that times out prints: the timeline of runs, landings and ticks, then the daemon's log."""

    def __init__(self, daemon: DagsterDaemon, instance: dg.DagsterInstance) -> None:
        self.daemon, self.instance = daemon, instance

    def tail(self, lines: int = 60) -> str:
        return f"timeline:\n{timeline(self.instance)}\ndaemon log:\n{self.daemon.tail(lines)}"


def wait_for_ticks(instance: dg.DagsterInstance, daemon: HasLog, since: float, count: int = 2, names: tuple[str, ...] = SENSORS) -> None:
    """Every named sensor has finished `count` ticks after `since`, none of them failed."""
    for name in names:
        wait_for(f"{count} ticks of {name}", lambda n=name: len([t for t in ticks_since(instance, n, since) if t.status.value != "STARTED"]) >= count,
                 daemon, TICK_TIMEOUT_S)
        failed = [t.error for t in ticks_since(instance, name, since) if t.status.value == "FAILURE"]
        assert not failed, f"{name} failed: {failed[0]}"


def runs(instance: dg.DagsterInstance) -> dict[str, list[dg.DagsterRun]]:
    """Runs per notebook, oldest first."""
    by_notebook: dict[str, list[dg.DagsterRun]] = {}
    for record in sorted(instance.get_run_records(), key=lambda r: r.create_timestamp):
        for key in record.dagster_run.asset_selection or ():
            by_notebook.setdefault(NOTEBOOK_OF[key.to_user_string()], []).append(record.dagster_run)
    return by_notebook


# What each landing-driven notebook reads: a run of it is explained by an update of one of these.
INPUTS = {"clean_orders": ("raw.orders",), "customer_revenue": ("mart.orders_clean", "raw.customers"),
          "fx_revenue": ("mart.orders_clean", "source.partner_rates", "source.sales_regions")}


def all_run_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    return {name: len(rs) for name, rs in runs(instance).items()}


def run_counts(instance: dg.DagsterInstance) -> dict[str, int]:
    """Runs per notebook that an update of its inputs started.

    automation.py documents one repeat: a landing stored while the tick that requests its notebook is being
    evaluated is counted by that tick and by the next, and the notebook runs once more (replacing its outputs with
    the same data). On a loaded machine ticks are slow and this happens. Such a run has no input update since the
    notebook's previous run was created: it is not counted, but a repeat of a repeat fails the test, and so does any
    run of a notebook that no landing starts."""
    counts: dict[str, int] = {}
    for name, notebook_runs in runs(instance).items():
        assert name in INPUTS, f"{name} ran, but only landings start runs here:\n{timeline(instance)}"
        updates = [r.timestamp for table in INPUTS[name]
                   for r in instance.fetch_materializations(dg.AssetKey(table.split(".")), limit=1000).records]
        created = [instance.get_run_record_by_id(r.run_id).create_timestamp.timestamp() for r in notebook_runs]
        counted, repeated = 0, False
        for i, at in enumerate(created):
            if i == 0 or any(created[i - 1] < t <= at for t in updates):
                counted, repeated = counted + 1, False
            else:
                assert not repeated, f"{name} ran twice more with no new input:\n{timeline(instance)}"
                repeated = True
        counts[name] = counted
    return counts


def succeeded(instance: dg.DagsterInstance, notebook: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        done = [r for r in runs(instance).get(notebook, []) if r.is_finished]
        failed = [r for r in done if r.status != dg.DagsterRunStatus.SUCCESS]
        assert not failed, f"{notebook} run {failed[0].run_id} ended {failed[0].status}:\n{explain_run(instance, failed[0].run_id)}"
        # `count` runs started by landings (a documented repeat does not count), and none still going.
        return run_counts(instance).get(notebook, 0) >= count and len(done) == len(runs(instance).get(notebook, []))

    return check


def timeline(instance: dg.DagsterInstance) -> str:
    """Runs and reported landings in time order, for an assertion on counts to explain itself."""
    events: list[tuple[float, str]] = []
    for record in instance.get_run_records():
        run = record.dagster_run
        keys = ",".join(k.to_user_string() for k in run.asset_selection or ())
        tags = {k: v for k, v in run.tags.items() if "sensor" in k or "automation" in k or "tick" in k}
        events.append((record.create_timestamp.timestamp(), f"run {run.run_id[:8]} {keys} {run.status.value} {tags}"))
    for table in ("raw.orders", "raw.customers"):
        records = instance.fetch_materializations(dg.AssetKey(table.split(".")), limit=100, ascending=True).records
        events.extend((r.timestamp, f"landing {table} #{r.asset_materialization.metadata['landing/id'].value}") for r in records)
    for source in ("partner_rates", "sales_regions"):
        events.extend((r.timestamp, f"source {source} landed, new files {new_files(r)}") for r in source_landings(instance, source))
    records = instance.fetch_materializations(dg.AssetKey(["mart", "orders_clean"]), limit=100, ascending=True).records
    events.extend((r.timestamp, f"mart.orders_clean materialized by run {(r.run_id or '')[:8]}") for r in records)
    for tick in ticks_since(instance, "nb_assets_automation", 0, limit=None):
        if tick.run_ids:
            events.append((tick.timestamp, f"automation tick {tick.tick_id} requested runs {[r[:8] for r in tick.run_ids]}"))
    for name in ("nb_assets_automation", SOURCE_SENSOR):
        done = sorted(t.timestamp for t in ticks_since(instance, name, 0, limit=None) if t.status.value != "STARTED")
        if done:  # the order of the sensors' first ticks decides what a condition's first evaluation sees
            events.append((done[0], f"first tick of {name} ({len(done)} finished in all)"))
    return "\n".join(f"  {time.strftime('%H:%M:%S', time.gmtime(t))}.{int(t % 1 * 1000):03d} {what}" for t, what in sorted(events))


def all_finished(instance: dg.DagsterInstance) -> bool:
    return all(r.is_finished for rs in runs(instance).values() for r in rs)


def reported_landings(instance: dg.DagsterInstance, table: str) -> list[int]:
    records = instance.fetch_materializations(dg.AssetKey(table.split(".")), limit=100, ascending=True).records
    return [r.asset_materialization.metadata["landing/id"].value for r in records]


def sales_regions_in_output(project: Path) -> set[str]:
    with connect(project / "warehouse.duckdb", read_only=True) as con:
        return {r[0] for r in con.execute("SELECT DISTINCT sales_region FROM mart.revenue_eur_by_region").fetchall()}


def created_at(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float:
    return instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()


def logged_landings(project: Path, table: str) -> list[int]:
    with connect(project / "warehouse.duckdb", read_only=True) as con:
        return [r[0] for r in con.execute('SELECT id FROM nb_assets.landings WHERE "table" = ? ORDER BY id', [table]).fetchall()]


def land(project: Path, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "nb_assets.cli", "land", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def new_orders(project: Path, env: dict[str, str], dest: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(project / "warehouse.duckdb"),
                    "--new-orders", str(dest)], env=env, check=True, capture_output=True, timeout=120)


def test_sources_that_landed_before_a_reader_had_its_trigger_do_not_start_it_before_its_upstream_ran(tmp_path: Path) -> None:
    """The order the long test below leaves to the daemon's threads, made certain: fx_revenue's sources are reported
    before its first evaluation (here by a first daemon session in which it had no trigger yet). mart.orders_clean has
    never materialized, so fx_revenue must not start; it did, at its second tick (automation.py, `_input_landed`)."""
    with demo_copy(tmp_path) as (project, daemon, instance, env):
        story = Story(daemon, instance)
        (project / "definitions.py").write_text(watched_definitions((REPO / "definitions.py").read_text(), trigger=False))
        daemon.start()
        wait_for("both sources reported once", lambda: [len(source_landings(instance, s)) for s in ("partner_rates", "sales_regions")] == [1, 1],
                 story, TICK_TIMEOUT_S)
        daemon.stop()
        (project / "definitions.py").write_text(watched_definitions((REPO / "definitions.py").read_text()))  # the trigger declared
        wait_for_ticks(instance, story, daemon.start(), count=4, names=(SOURCE_SENSOR, "nb_assets_automation"))
        assert all_run_counts(instance) == {}, timeline(instance)


def test_landings_run_the_notebooks_downstream_through_a_real_daemon(demo) -> None:
    project, daemon, instance, env = demo
    started = daemon.start()
    story = Story(daemon, instance)  # what a wait that times out prints
    # Conditions start remembering at their first evaluation: land after it. The source sensor's first tick
    # reports both watched sources once (what they hold has landed); fx_revenue still waits for mart.orders_clean.
    wait_for_ticks(instance, story, started, count=1)
    wait_for("both sources reported once", lambda: [len(source_landings(instance, s)) for s in ("partner_rates", "sales_regions")] == [1, 1],
             story, TICK_TIMEOUT_S)

    # Only one of customer_revenue's two inputs lands: nothing runs.
    land(project, env, "raw.customers")
    wait_for("raw.customers reported", lambda: reported_landings(instance, "raw.customers") == [1], story, TICK_TIMEOUT_S)
    wait_for_ticks(instance, story, time.time(), names=("nb_assets_automation",))
    assert run_counts(instance) == {}, timeline(instance)

    # raw.orders lands with data: clean_orders runs by itself, then customer_revenue (now both inputs are new).
    new_orders(project, env, project / "new_orders.csv")
    land(project, env, "raw.orders", "--from", str(project / "new_orders.csv"))
    wait_for("clean_orders to run", succeeded(instance, "clean_orders", 1), story, RUN_TIMEOUT_S)
    wait_for("customer_revenue to run", succeeded(instance, "customer_revenue", 1), story, RUN_TIMEOUT_S)
    # fx_revenue too: its sources had landed, mart.orders_clean now has (it reads the rates from the file, no HTTP).
    wait_for("fx_revenue to run", succeeded(instance, "fx_revenue", 1), story, RUN_TIMEOUT_S)
    clean, revenue, fx = (runs(instance)[n][0] for n in ("clean_orders", "customer_revenue", "fx_revenue"))
    for reader in (revenue, fx):  # never before the first mart.orders_clean (automation.py, `_input_landed`)
        assert instance.get_run_record_by_id(reader.run_id).start_time >= instance.get_run_record_by_id(clean.run_id).end_time, \
            timeline(instance)
    assert "Japan" not in sales_regions_in_output(project)
    with connect(project / "warehouse.duckdb", read_only=True) as con:
        newest = con.execute("SELECT max(order_id) FROM raw.orders").fetchone()[0]
        assert con.execute("SELECT count(*) FROM mart.orders_clean WHERE order_id = ?", [newest]).fetchone()[0] == 1

    # raw.orders again, alone: clean_orders runs, customer_revenue waits for raw.customers ... The partner publishes
    # new rates meanwhile: fx_revenue has two of its three inputs new, and waits for sales_regions.
    rates_file = project / "sources" / "partner_rates.json"
    rates = rates_file.read_text()
    assert rates.count('"per_eur": 164.0') == 1
    publish(project, rates.replace('"per_eur": 164.0', '"per_eur": 165.0'), rates_file)
    land(project, env, "raw.orders")
    wait_for("clean_orders to run again", succeeded(instance, "clean_orders", 2), story, RUN_TIMEOUT_S)
    wait_for("the new rates to be reported", lambda: len(source_landings(instance, "partner_rates")) == 2, story, TICK_TIMEOUT_S)
    wait_for_ticks(instance, story, time.time(), names=("nb_assets_automation",))
    assert run_counts(instance) == {"clean_orders": 2, "customer_revenue": 1, "fx_revenue": 1}, timeline(instance)
    # ... which lands: customer_revenue runs once. A new file under the watched sales_regions folder: the source
    # sensor reports it, and fx_revenue, which had only that input left to wait for, runs once and reads it.
    publish(project, "currency,sales_region\nJPY,Japan\n", project / "sources" / "sales_regions" / "japan.csv")
    land(project, env, "raw.customers")
    wait_for("customer_revenue to run again", succeeded(instance, "customer_revenue", 2), story, RUN_TIMEOUT_S)
    wait_for("fx_revenue to run for the new file", succeeded(instance, "fx_revenue", 2), story, RUN_TIMEOUT_S)
    *_, dropped = source_landings(instance, "sales_regions")
    assert new_files(dropped) == ["japan.csv"], timeline(instance)
    # Started after the file was reported, and counted once (run_counts tells automation.py's documented repeat,
    # a run with no input new since the previous one, apart; a second repeat fails).
    fx_after_drop = [r for r in runs(instance)["fx_revenue"] if created_at(instance, r) > dropped.timestamp]
    assert fx_after_drop and run_counts(instance)["fx_revenue"] == 2, timeline(instance)
    assert "Japan" in sales_regions_in_output(project)

    # A file dropped into the watched folder: loaded once, raw.orders lands, clean_orders runs.
    drops = project / "landing" / "orders"
    rows_before = _count(project, "raw.orders")
    new_orders(project, env, drops / "more_orders.parquet")
    (drops / "broken.parquet").write_text("not a parquet file")
    wait_for("the file to be loaded", lambda: (drops / "loaded" / "more_orders.parquet").is_file(), story, TICK_TIMEOUT_S)
    wait_for("the broken file to be rejected", lambda: (drops / "rejected" / "broken.parquet.reason.txt").is_file(), story, TICK_TIMEOUT_S)
    assert "not a readable Parquet file" in (drops / "rejected" / "broken.parquet.reason.txt").read_text()
    assert _count(project, "raw.orders") == rows_before + 40
    wait_for("clean_orders to run for the file", succeeded(instance, "clean_orders", 3), story, RUN_TIMEOUT_S)
    wait_for_ticks(instance, story, time.time(), names=("nb_assets_automation",))
    wait_for("every run to finish", lambda: all_finished(instance), story, RUN_TIMEOUT_S)

    # fx_revenue: once for the first landings, once for the new file (clean_orders' third run alone starts nothing).
    assert run_counts(instance) == {"clean_orders": 3, "customer_revenue": 2, "fx_revenue": 2}, timeline(instance)  # and no cron-driven notebook ran (NO_CRON)
    # New rates: fx_revenue now has two of its three inputs new (mart.orders_clean from clean_orders' third run),
    # and waits for sales_regions, across the restart below.
    publish(project, rates_file.read_text().replace('"per_eur": 165.0', '"per_eur": 166.0'), rates_file)
    wait_for("the newer rates to be reported", lambda: len(source_landings(instance, "partner_rates")) == 3, story, TICK_TIMEOUT_S)
    wait_for_ticks(instance, story, time.time(), names=("nb_assets_automation",))
    assert run_counts(instance)["fx_revenue"] == 2, timeline(instance)

    # Restart the daemon: nothing is reported, loaded or run twice (every run counted, repeats included).
    before_restart = all_run_counts(instance)
    daemon.stop()
    restarted = daemon.start()
    wait_for_ticks(instance, story, restarted, count=3)
    # The source sensor's ticks since the restart were read from its stored cursor; one more automation tick
    # sees anything they might have reported.
    wait_for_ticks(instance, story, time.time(), count=1, names=("nb_assets_automation",))
    assert all_run_counts(instance) == before_restart, timeline(instance)
    for table in ("raw.orders", "raw.customers"):
        assert reported_landings(instance, table) == logged_landings(project, table)  # each landing exactly once
    assert [len(source_landings(instance, s)) for s in ("partner_rates", "sales_regions")] == [3, 2], timeline(instance)
    assert _count(project, "raw.orders") == rows_before + 40
    assert sorted(p.name for p in (drops / "loaded").iterdir()) == ["more_orders.parquet"]

    # After the restart, a new file under sales_regions: reported once, and fx_revenue, whose other two inputs had
    # landed before the restart (the conditions' memory is in the instance), runs exactly once more and reads it.
    publish(project, "currency,sales_region\nCAD,Canada\n", project / "sources" / "sales_regions" / "canada.csv")
    wait_for("fx_revenue to run for the file after the restart", succeeded(instance, "fx_revenue", 3), story, RUN_TIMEOUT_S)
    *_, canada = source_landings(instance, "sales_regions")
    assert new_files(canada) == ["canada.csv"], timeline(instance)
    assert [r for r in runs(instance)["fx_revenue"] if created_at(instance, r) > canada.timestamp], timeline(instance)
    wait_for_ticks(instance, story, time.time(), names=(SOURCE_SENSOR, "nb_assets_automation"))
    wait_for("every run to finish", lambda: all_finished(instance), story, RUN_TIMEOUT_S)
    # Nothing else ran; fx_revenue once more for the file (run_counts tells the documented repeat apart).
    assert run_counts(instance) == {"clean_orders": 3, "customer_revenue": 2, "fx_revenue": 3}, timeline(instance)
    assert {n: c for n, c in all_run_counts(instance).items() if n != "fx_revenue"} == \
        {n: c for n, c in before_restart.items() if n != "fx_revenue"}, timeline(instance)
    assert [len(source_landings(instance, s)) for s in ("partner_rates", "sales_regions")] == [3, 3], timeline(instance)
    assert "Canada" in sales_regions_in_output(project)


def publish(project: Path, text: str, dest: Path) -> None:
    """Write a source's file whole, as a partner's upload does: a sensor tick never sees it half written."""
    staged = project / f".{dest.name}.part"  # outside the watched folder
    staged.write_text(text)
    os.replace(staged, dest)


def _count(project: Path, table: str) -> int:
    with connect(project / "warehouse.duckdb", read_only=True) as con:  # waits while a run loads
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def launch_backfill_from_the_ui_api(project: Path, env: dict[str, str], key: list[str], days: list[str]) -> str:
    """What the UI's "Materialize selected" over a partition range sends: a GraphQL
    launchPartitionBackfill to a real dagster-webserver on the project."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = project / "webserver.log"
    with log.open("ab") as out:
        server = subprocess.Popen([str(BIN / "dagster-webserver"), "-f", NO_CRON_FILE, "-h", "127.0.0.1", "-p", str(port)],
                                  cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, lambda: server.poll() is None, TICK_TIMEOUT_S, lambda: log.read_text(errors="replace")[-3000:])
        params = {"partitionNames": days, "assetSelection": [{"path": key}]}
        answer = graphql(url, BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert answer["__typename"] == "LaunchBackfillSuccess", answer
        return answer["backfillId"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def _orders_per_day(project: Path, table: str, column: str) -> dict[str, int]:
    with connect(project / "warehouse.duckdb", read_only=True) as con:
        sql = f"SELECT {column}, {'sum(orders)' if table.startswith('mart') else 'count(DISTINCT order_id)'} FROM {table} GROUP BY 1 ORDER BY 1"
        return {str(d): n for d, n in con.execute(sql).fetchall()}


def test_a_dagster_backfill_of_three_days_finds_three_partitions_and_leaves_other_days_alone(demo) -> None:
    project, daemon, instance, env = demo
    if daemon.process is None or daemon.process.poll() is not None:
        daemon.start()
    # Another day, already loaded by the CLI: the backfill must not touch it.
    cli = subprocess.run([sys.executable, "-m", "nb_assets.cli", "run", "notebooks/daily_orders.ipynb", "--definitions", "definitions.py",
                          "--partition", "2026-11-10", "--records", str(project / "cli-records")],
                         cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert cli.returncode == 0, cli.stderr
    before = _orders_per_day(project, "mart.daily_orders", "ds")
    assert list(before) == ["2026-11-10"]

    days = ["2026-11-20", "2026-11-21", "2026-11-22"]
    backfill_id = launch_backfill_from_the_ui_api(project, env, ["mart", "daily_orders"], days)

    def done() -> bool:
        backfill = instance.get_backfill(backfill_id)
        if backfill is not None and "FAIL" in backfill.status.value:
            started = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            pytest.fail(f"backfill {backfill_id} ended {backfill.status.value}:\n{explain_runs(instance, [r.run_id for r in started])}")
        assert backfill is not None
        return backfill.status.value.startswith("COMPLETED")

    wait_for(f"backfill {backfill_id} to complete", done, daemon, 3 * RUN_TIMEOUT_S)
    backfill_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    # One run per day: a one-day range each (BackfillPolicy.multi_run(1)).
    ranges = sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in backfill_runs)
    assert ranges == [(d, d) for d in days]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in backfill_runs), \
        explain_runs(instance, [r.run_id for r in backfill_runs])
    # Each run's record names its day, as `nb-assets runs` and `show` print it.
    kept = {r.run_id: r.partition for r in find_runs([Path(env["DAGSTER_HOME"]) / "storage" / "nb_assets"], "daily_orders")}
    assert sorted(kept[r.run_id] for r in backfill_runs) == days
    records = instance.fetch_materializations(dg.AssetKey(["mart", "daily_orders"]), limit=100).records
    assert sorted(r.partition_key for r in records if r.partition_key in days) == days
    after = _orders_per_day(project, "mart.daily_orders", "ds")
    raw = _orders_per_day(project, "raw.orders", "order_date")
    assert after == {"2026-11-10": before["2026-11-10"], **{d: raw[d] for d in days}}
