"""Silence is a failure: a real `dagster-daemon` tells the owner once that a notebook went stale,
naming the input that never landed, and once that it is fresh again after that input landed.

A small project under a temporary DAGSTER_HOME: `fresh_orders.ipynb` reads
raw.orders joined with raw.customers, runs when both have landed, and must
have materialized within the last minute (`freshness="1m"`, the shortest rule
Dagster's policies take). It runs once before the daemon starts; then only
raw.customers lands. The owner's mail is read by a real SMTP server on
loopback (aiosmtpd); `nb-assets status` is run against the same instance. The
daemon is restarted in the middle of the stale episode: no second notice.

The same daemon session proves that a blocked output does not trigger its reader:
`order_totals.ipynb` (on_inputs_landed) checks `unique("order_id")` on raw.order_lines,
whose ids repeat; its landing starts the run, the check fails it, and
`order_report.ipynb`, which reads mart.order_totals and is declared on_inputs_landed,
is never started, over completed automation ticks after the failure. It runs while the
freshness minute passes, so it costs the session little.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.daemon import DagsterDaemon
from support.dagster_runs import explain_run, explain_runs
from support.loopback_servers import SmtpSink, smtp_server
from support.notebook_factory import RUNTIME, code, md, write_notebook
from support.polling import wait_for
from support.sensor_ticks import wait_for_completed_ticks

pytestmark = pytest.mark.slow

OWNER = "owner@example.com"
FRESH = dg.AssetKey(["mart", "fresh_orders"])
TOTALS = dg.AssetKey(["mart", "order_totals"])  # its unique(order_id) check fails: blocked
REPORT = dg.AssetKey(["mart", "order_report"])  # reads mart.order_totals, on_inputs_landed
AUTOMATION_SENSOR = "nb_assets_automation"
QUIET_TICKS = 3  # completed automation ticks after the blocked run ended, over which its reader must not start
STALE_TIMEOUT_S = 300  # one minute of freshness, the daemon's start and ticks on a loaded 2-core machine
RUN_TIMEOUT_S = 360
TICK_TIMEOUT_S = 180
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:  # launch as soon as the automation sensor asks
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""
DEFINITIONS = '''\
import os
from pathlib import Path

from nb_assets import NotebookAsset, Notifications, SmtpChannel, notebook_definitions

BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("fresh_orders.ipynb", owners=["owner@example.com"], on_inputs_landed=True, freshness="1m"),
     NotebookAsset("order_totals.ipynb", owners=["checks@example.com"], on_inputs_landed=True),
     NotebookAsset("order_report.ipynb", owners=["checks@example.com"], on_inputs_landed=True)],
    warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, sandbox="local", sensor_interval_s=2,
    notifications=Notifications(
        email=SmtpChannel("127.0.0.1", int(os.environ.get("NB_TEST_SMTP_PORT", "25")), security="plain",
                          sender="nb-assets@example.com"),
        ui_base_url="http://dagster.example.invalid:3000", interval_s=1, backoff_s=0.05,
    ),
)
'''


def write_project(root: Path) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.customers AS SELECT range AS customer_id, 'c' || range AS name FROM range(3)")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, range % 3 AS customer_id, range * 2.5 AS amount FROM range(6)")
        # Order ids 0 and 1 twice each: unique(order_id) fails on 2 rows (two duplicated keys).
        con.execute("CREATE TABLE raw.order_lines AS SELECT range % 2 AS order_id, range * 1.5 AS amount FROM range(4)")
    (root / "definitions.py").write_text(DEFINITIONS)
    write_notebook(root / "fresh_orders.ipynb", md("# Orders with their customers"), code(RUNTIME),
                   code("%%sql orders\nSELECT o.order_id, o.amount, c.name\nFROM raw.orders o JOIN raw.customers c USING (customer_id)"),
                   code("output('mart.fresh_orders', orders)"))
    write_notebook(root / "order_totals.ipynb", md("# Order totals, one row per order"),
                   code(RUNTIME + "\nfrom nb_assets.notebook import unique"),
                   code("%%sql lines\nSELECT order_id, amount FROM raw.order_lines"),
                   code("output('mart.order_totals', lines, checks=[unique('order_id')])"))
    write_notebook(root / "order_report.ipynb", md("# Report on the order totals"), code(RUNTIME),
                   code("%%sql totals\nSELECT count(*) AS orders, sum(amount) AS amount FROM mart.order_totals"),
                   code("output('mart.order_report', totals)"))


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str], SmtpSink]]:
    root, home = tmp_path / "project", tmp_path / "dagster_home"
    root.mkdir()
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    write_project(root)
    with smtp_server() as smtp:
        env = {**os.environ, "DAGSTER_HOME": str(home), "NB_TEST_SMTP_PORT": str(smtp.port)}
        yield root, home, env, smtp


def ticks_since(instance: dg.DagsterInstance, name: str, since: float) -> list:
    state = next((s for s in instance.all_instigator_state() if s.instigator_name == name), None)
    if state is None:
        return []
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=50)
    return [t for t in ticks if t.timestamp > since and t.status.value != "STARTED"]


def cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb_assets.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def mails(smtp: SmtpSink, verb: str) -> list:
    return [m for m in smtp.to(OWNER) if f"fresh_orders {verb}" in m.subject]


def runs_of(instance: dg.DagsterInstance, key: dg.AssetKey) -> list[dg.DagsterRun]:
    """The runs that materialize `key`, oldest first: by their asset selection (the daemon's runs), else by
    what they planned (the test's own `dg.materialize`, whose run carries no selection)."""
    def planned(run: dg.DagsterRun) -> set[dg.AssetKey]:
        if run.asset_selection:
            return set(run.asset_selection)
        events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        return {e.dagster_event.asset_key for e in events if e.dagster_event is not None}

    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp)
    return [r.dagster_run for r in records if key in planned(r.dagster_run)]


def notebook_status(root: Path, env: dict[str, str], name: str) -> dict:
    return next(n for n in json.loads(cli(root, env, "status", "--json").stdout)["notebooks"] if n["notebook"] == name)


def check_blocks_and_the_reader_never_starts(root: Path, env: dict[str, str], instance: dg.DagsterInstance,
                                             daemon: DagsterDaemon) -> None:
    """raw.order_lines lands: the daemon runs order_totals, whose blocking check fails the run and publishes
    nothing; over QUIET_TICKS completed automation ticks after that, order_report is not started."""
    landed = cli(root, env, "land", "raw.order_lines")
    assert landed.returncode == 0, landed.stderr
    wait_for("order_totals' run to end", lambda: any(r.is_finished for r in runs_of(instance, TOTALS)), daemon, RUN_TIMEOUT_S)
    # The first; automation.py's documented repeat (a landing counted by two ticks) would be blocked alike.
    blocked = runs_of(instance, TOTALS)[0]
    explained = explain_run(instance, blocked.run_id)
    assert blocked.status == dg.DagsterRunStatus.FAILURE, explained
    failure = next(iter(instance.all_logs(blocked.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)), None)
    assert failure is not None, explained
    said = failure.dagster_event.step_failure_data.error.message  # type: ignore[union-attr]
    assert "unique_order_id = unique(order_id) failed on 2 row(s)" in said and "nothing loaded" in said, explained
    evaluations = [e.dagster_event.event_specific_data for e in
                   instance.all_logs(blocked.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert [(e.check_name, e.passed) for e in evaluations] == [("unique_order_id", False)], explained
    assert not instance.fetch_materializations(TOTALS, limit=1).records, explained  # blocked: nothing published

    ended = instance.get_run_record_by_id(blocked.run_id).end_time
    assert ended is not None, explained
    wait_for_completed_ticks(instance, AUTOMATION_SENSOR, QUIET_TICKS, ended, daemon, TICK_TIMEOUT_S)
    readers = runs_of(instance, REPORT)
    assert not readers, "order_report started on a blocked input:\n" + "\n".join(
        [explained, *(explain_run(instance, r.run_id) for r in readers)])


def test_an_input_that_never_lands_makes_one_stale_notice_and_its_landing_one_recovery(project) -> None:
    root, home, env, smtp = project
    sys.path.insert(0, str(root))
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    daemon = DagsterDaemon(root, env)
    try:
        instance = dg.DagsterInstance.get()
        from nb_assets import NotebookResource
        from nb_assets.defs.build import RESOURCE_KEY
        from support.failed_project import load_module

        os.environ["NB_TEST_SMTP_PORT"] = str(smtp.port)
        module = load_module(root / "definitions.py", "freshness_daemon_definitions")
        resource = NotebookResource(warehouse=str(root / "warehouse.duckdb"), sandbox="local")
        first = dg.materialize(list(module.defs.assets), selection=[FRESH], instance=instance, resources={RESOURCE_KEY: resource},
                               raise_on_error=False)
        assert first.success, explain_runs(instance, [first.run_id])  # the last good run: fresh for one minute from its end

        started = daemon.start()
        # The automation condition remembers landings from its first evaluation on.
        wait_for("the automation sensor's first tick", lambda: ticks_since(instance, AUTOMATION_SENSOR, started), daemon, TICK_TIMEOUT_S)
        landed = cli(root, env, "land", "raw.customers")
        assert landed.returncode == 0, landed.stderr
        # While fresh_orders' minute runs out: a blocked output, and its reader not started by the daemon.
        check_blocks_and_the_reader_never_starts(root, env, instance, daemon)

        wait_for("the stale notice", lambda: mails(smtp, "is stale"), daemon, STALE_TIMEOUT_S)
        [stale] = mails(smtp, "is stale")
        assert "input raw.orders: not landed since the last run started at" in stale.body
        assert "(never landed)" in stale.body and "raw.customers:" not in stale.body  # it landed after the run
        assert "Freshness:" in stale.body and "1m (materialized within the last 1m)" in stale.body
        assert stale.message["X-NB-Assets-Run"].startswith("freshness-fresh_orders-")
        assert [r.run_id for r in runs_of(instance, FRESH)] == [first.run_id]  # nothing ran it

        status = cli(root, env, "status")
        assert status.returncode == 1, status.stderr  # a stale notebook
        [line] = [n for n in status.stdout.splitlines() if n.startswith("fresh_orders:")]
        assert line.startswith(f"fresh_orders: last run success ") and f"({first.run_id[:8]})" in line
        assert "STALE since" in line and "waiting for: input raw.orders: not landed since" in line
        as_json = notebook_status(root, env, "fresh_orders")
        assert as_json["state"] == "stale" and as_json["last_run"]["run_id"] == first.run_id

        # A restarted daemon resumes the episode from the sensor's cursor and the ledger: no second notice.
        daemon.stop()
        restarted = daemon.start()
        wait_for("freshness ticks after the restart", lambda: len(ticks_since(instance, "nb_assets_freshness", restarted)) >= 3,
                 daemon, TICK_TIMEOUT_S)
        assert len(mails(smtp, "is stale")) == 1

        landed = cli(root, env, "land", "raw.orders")
        assert landed.returncode == 0, landed.stderr
        wait_for("the recovery notice", lambda: mails(smtp, "is fresh again"), daemon, RUN_TIMEOUT_S)
        [fresh] = mails(smtp, "is fresh again")
        assert fresh.message["X-NB-Assets-Run"] == f"{stale.message['X-NB-Assets-Run']}-recovered"
        assert "Fresh again at:" in fresh.body
        assert len(mails(smtp, "is stale")) == 1  # still one stale notice for the one episode
        # The run record says success once the load committed; Dagster ends the run a moment later.
        def later_runs() -> list[dg.DagsterRun]:
            return [r for r in runs_of(instance, FRESH) if r.run_id != first.run_id]

        wait_for("the landing's run to end", lambda: all(r.is_finished for r in later_runs()), daemon, RUN_TIMEOUT_S)
        runs = later_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]  # the landing ran it, and it succeeded
        assert len(smtp.to(OWNER)) == 2
        daemon.stop()
        readers = runs_of(instance, REPORT)  # not across the restart either
        assert not readers, "\n".join(explain_run(instance, r.run_id) for r in readers)
        after = notebook_status(root, env, "fresh_orders")
        assert after["last_run"]["run_id"] == runs[0].run_id
        # Both inputs landed before the run that used them: its next run waits for new landings, never "never".
        assert sorted(w.split(":")[0] for w in after["waiting_for"]) == ["input raw.customers", "input raw.orders"]
        assert all("(last landed 20" in w for w in after["waiting_for"])
        instance.dispose()
    finally:
        daemon.stop()
        sys.path.remove(str(root))
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
        os.environ.pop("NB_TEST_SMTP_PORT", None)
