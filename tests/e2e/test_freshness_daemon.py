"""Silence is a failure: a real `dagster-daemon` tells the owner once that a notebook went stale,
naming the input that never landed, and once that it is fresh again after that input landed.

A small project under a temporary DAGSTER_HOME: `fresh_orders.ipynb` reads
raw.orders joined with raw.customers, runs when both have landed, and must
have materialized within the last minute (`freshness="1m"`, the shortest rule
Dagster's policies take). It runs once before the daemon starts; then only
raw.customers lands. The owner's mail is read by a real SMTP server on
loopback (aiosmtpd); `nb-assets status` is run against the same instance. The
daemon is restarted in the middle of the stale episode: no second notice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.loopback_servers import SmtpSink, smtp_server
from support.notebook_factory import RUNTIME, code, md, write_notebook
from support.polling import wait_for

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
OWNER = "owner@example.com"
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
    [NotebookAsset("fresh_orders.ipynb", owners=["owner@example.com"], on_inputs_landed=True, freshness="1m")],
    warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, sandbox="local", sensor_interval_s=2,
    notifications=Notifications(
        email=SmtpChannel("127.0.0.1", int(os.environ.get("NB_TEST_SMTP_PORT", "25")), security="plain",
                          sender="nb-assets@example.com"),
        ui_base_url="http://dagster.example.invalid:3000", interval_s=1, backoff_s=0.05,
    ),
)
'''


class Daemon:
    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.project, self.env = project, env
        self.log = project / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.time()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-f", "definitions.py"], cwd=self.project,
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return started

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def write_project(root: Path) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.customers AS SELECT range AS customer_id, 'c' || range AS name FROM range(3)")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, range % 3 AS customer_id, range * 2.5 AS amount FROM range(6)")
    (root / "definitions.py").write_text(DEFINITIONS)
    write_notebook(root / "fresh_orders.ipynb", md("# Orders with their customers"), code(RUNTIME),
                   code("%%sql orders\nSELECT o.order_id, o.amount, c.name\nFROM raw.orders o JOIN raw.customers c USING (customer_id)"),
                   code("output('mart.fresh_orders', orders)"))


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


def test_an_input_that_never_lands_makes_one_stale_notice_and_its_landing_one_recovery(project) -> None:
    root, home, env, smtp = project
    sys.path.insert(0, str(root))
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    daemon = Daemon(root, env)
    try:
        instance = dg.DagsterInstance.get()
        from nb_assets import NotebookResource
        from nb_assets.defs.build import RESOURCE_KEY
        from support.failed_project import load_module

        os.environ["NB_TEST_SMTP_PORT"] = str(smtp.port)
        module = load_module(root / "definitions.py", "freshness_daemon_definitions")
        resource = NotebookResource(warehouse=str(root / "warehouse.duckdb"), sandbox="local")
        first = dg.materialize(list(module.defs.assets), instance=instance, resources={RESOURCE_KEY: resource})
        assert first.success  # the last good run: fresh for one minute from its end

        started = daemon.start()
        # The automation condition remembers landings from its first evaluation on.
        wait_for("the automation sensor's first tick", lambda: ticks_since(instance, "nb_assets_automation", started), daemon, TICK_TIMEOUT_S)
        landed = cli(root, env, "land", "raw.customers")
        assert landed.returncode == 0, landed.stderr

        wait_for("the stale notice", lambda: mails(smtp, "is stale"), daemon, STALE_TIMEOUT_S)
        [stale] = mails(smtp, "is stale")
        assert "input raw.orders: not landed since the last run started at" in stale.body
        assert "(never landed)" in stale.body and "raw.customers:" not in stale.body  # it landed after the run
        assert "Freshness:" in stale.body and "1m (materialized within the last 1m)" in stale.body
        assert stale.message["X-NB-Assets-Run"].startswith("freshness-fresh_orders-")
        assert not [r for r in instance.get_run_records() if r.dagster_run.run_id != first.run_id]  # nothing ran

        status = cli(root, env, "status")
        assert status.returncode == 1, status.stderr  # a stale notebook
        [line] = status.stdout.splitlines()
        assert line.startswith(f"fresh_orders: last run success ") and f"({first.run_id[:8]})" in line
        assert "STALE since" in line and "waiting for: input raw.orders: not landed since" in line
        as_json = json.loads(cli(root, env, "status", "--json").stdout)["notebooks"][0]
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
            return [r.dagster_run for r in instance.get_run_records() if r.dagster_run.run_id != first.run_id]

        wait_for("the landing's run to end", lambda: all(r.is_finished for r in later_runs()), daemon, RUN_TIMEOUT_S)
        runs = later_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]  # the landing ran it, and it succeeded
        assert len(smtp.to(OWNER)) == 2
        daemon.stop()
        after = json.loads(cli(root, env, "status", "--json").stdout)["notebooks"][0]
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
