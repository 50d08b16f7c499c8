"""The freshness sensor ticked in-process against a real instance, real runs (papermill, local
sandbox, DuckDB) and real SMTP and webhook servers on loopback; and `nb-assets status` and the
context pane on the same facts.

A notebook that never ran is judged from when the sensor began watching it, which its
cursor carries: a cursor saying "watching since 27 hours ago" stands in for 27 hours of
waiting on a 26-hour rule, and leaves no race with the clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from support.loopback_servers import SmtpSink, WebhookSink, smtp_server, webhook_server
from support.notebook_factory import RUNTIME, code, params, write_notebook
from nb_assets import NotebookAsset, NotebookResource, Notifications, SmtpChannel, WebhookChannel, notebook_definitions
from nb_assets.defs.build import RESOURCE_KEY
from nb_assets.defs.freshness_sensor import SENSOR_NAME
from nb_assets.errors import DeclarationError

OWNERS = ["a@example.com", "team:ops"]
WATCHED_FOR_S = 27 * 3600  # the sensor "began watching" a never-run notebook 27 hours ago: past its 26h rule
DEFINITIONS = '''\
from pathlib import Path
from nb_assets import NotebookAsset, notebook_definitions

BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    [NotebookAsset("daily.ipynb", owners=["a@example.com"], on_inputs_landed=True, freshness="1m"),
     NotebookAsset("weekly.ipynb", owners=["a@example.com"], on_inputs_landed=True)],
    warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, sandbox="local",
)
'''


@dataclass
class Project:
    root: Path
    instance: dg.DagsterInstance
    defs: dg.Definitions
    smtp: SmtpSink
    hook: WebhookSink

    def tick(self, cursor: str | None) -> dg.SensorResult:
        sensor = next(s for s in self.defs.sensors if s.name == SENSOR_NAME)
        result = sensor(dg.build_sensor_context(instance=self.instance, cursor=cursor))
        assert isinstance(result, dg.SensorResult)
        return result

    def materialize(self, **config: object) -> dg.ExecuteInJobResult:
        resource = NotebookResource(warehouse=str(self.root / "warehouse.duckdb"), sandbox="local")
        run_config = {"ops": {"daily": {"config": config}}} if config else None
        return dg.materialize([a for a in self.defs.assets if isinstance(a, dg.AssetsDefinition) and a.node_def.name == "daily"],
                              instance=self.instance, resources={RESOURCE_KEY: resource}, run_config=run_config,
                              raise_on_error=False)

    def notices(self, verb: str) -> list:
        return [m for m in self.smtp.to("a@example.com") if f"daily {verb}" in m.subject]


def write_project(root: Path) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id FROM range(4)")
    write_notebook(root / "daily.ipynb", code(RUNTIME), params("fail = False"),
                   code("%%sql orders\nSELECT * FROM raw.orders"),
                   code("if fail:\n    raise ValueError('the feed is late')"), code("output('mart.daily', orders)"))
    write_notebook(root / "weekly.ipynb", code(RUNTIME), code("%%sql daily\nSELECT * FROM mart.daily"),
                   code("output('mart.weekly', daily)"))
    (root / "definitions.py").write_text(DEFINITIONS)


@pytest.fixture()
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "home").mkdir()
    write_project(root)
    with smtp_server() as smtp, webhook_server() as hook, dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        notifications = Notifications(
            email=SmtpChannel("127.0.0.1", smtp.port, security="plain", sender="nb-assets@example.com"),
            webhooks={"ops": WebhookChannel(url=f"http://127.0.0.1:{hook.server.server_address[1]}/hook")},
            ui_base_url="http://dagster.example.invalid:3000", interval_s=1, backoff_s=0.05,
        )
        defs = notebook_definitions(
            [NotebookAsset("daily.ipynb", owners=OWNERS, on_inputs_landed=True, freshness="26h"),
             NotebookAsset("weekly.ipynb", owners=["a@example.com"], on_inputs_landed=True)],
            warehouse=root / "warehouse.duckdb", base_dir=root, sandbox="local", notifications=notifications,
        )
        yield Project(root, instance, defs, smtp, hook)


def test_one_stale_notice_per_episode_through_lost_cursors_and_one_recovery(project: Project) -> None:
    watched_long_ago = json.dumps({"since": {"daily": time.time() - WATCHED_FOR_S}})
    first = project.tick(watched_long_ago)
    [stale] = project.notices("is stale")
    assert "- input raw.orders: never landed" in stale.body and "Last materialized: never" in stale.body
    assert "In Dagster:" in stale.body and "/assets/mart/daily" in stale.body
    [posted] = project.hook.received
    assert posted["text"].startswith("daily is stale: not materialized within the last 1d 2h")
    state = json.loads(first.cursor)
    assert list(state["open"]) == ["daily"] and "weekly" not in state["since"]  # weekly has no rule

    second = project.tick(first.cursor)
    lost = project.tick(json.dumps({**state, "open": {}}))  # the daemon died before saving the cursor
    assert len(project.notices("is stale")) == 1 and len(project.hook.received) == 1
    assert json.loads(lost.cursor)["open"] == state["open"]  # the episode is open again, not new
    assert "1 stale notebook(s): daily" in second.skip_reason.skip_message

    failed = project.materialize(fail=True)
    assert not failed.success
    project.tick(second.cursor)  # still stale: a failed run changes nothing but what it waits for
    assert len(project.notices("is stale")) == 1

    assert project.materialize().success
    recovered = project.tick(second.cursor)
    [fresh] = project.notices("is fresh again")
    assert fresh.message["X-NB-Assets-Run"] == f"{stale.message['X-NB-Assets-Run']}-recovered"
    assert len(project.hook.received) == 2 and project.hook.received[1]["text"].startswith("daily is fresh again")
    assert json.loads(recovered.cursor) == {"since": {}, "open": {}, "deferred": {}}
    project.tick(recovered.cursor)
    assert len(project.smtp.to("a@example.com")) == 2  # one stale, one recovery


def test_a_failed_run_is_named_in_the_notice_and_in_status(project: Project) -> None:
    assert project.materialize(fail=True).success is False
    result = project.tick(json.dumps({"since": {"daily": time.time() - WATCHED_FOR_S}}))
    [stale] = project.notices("is stale")
    assert "failed at" in stale.body and "ValueError: the feed is late" in stale.body, stale.body
    status = subprocess.run([sys.executable, "-m", "nb_assets.cli", "status", "--json", "--records",
                             str(Path(project.instance.storage_directory()) / "nb_assets")],
                            cwd=project.root, capture_output=True, text=True, timeout=300)
    assert status.returncode == 1, status.stderr  # the sensor's watch file says since when: stale there too
    daily, weekly = json.loads(status.stdout)["notebooks"]
    assert daily["state"] == "stale" and daily["last_run"]["status"] == "failed"
    assert any("the feed is late" in w for w in daily["waiting_for"])
    assert weekly == {**weekly, "state": "no rule", "last_run": None, "waiting_for": ["input mart.daily: never landed"]}
    assert json.loads(result.cursor)["open"]


def test_status_of_a_project_that_never_ran_and_of_one_that_cannot_load(tmp_path: Path) -> None:
    write_project(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "no_home")}
    plain = subprocess.run([sys.executable, "-m", "nb_assets.cli", "status"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    daily, weekly = plain.stdout.splitlines()
    assert daily.startswith("daily: never ran; not yet due until ") and daily.endswith(
        "(1m); waiting for: input raw.orders: never landed")
    assert weekly == "weekly: never ran; no freshness rule; waiting for: input mart.daily: never landed"
    (tmp_path / "definitions.py").write_text(DEFINITIONS.replace('freshness="1m"', 'freshness="26 hours"'))
    bad = subprocess.run([sys.executable, "-m", "nb_assets.cli", "status"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "daily.ipynb: freshness='26 hours' is not a freshness rule" in bad.stderr


def test_without_a_rule_or_notifications_there_is_no_freshness_sensor(tmp_path: Path) -> None:
    write_project(tmp_path)
    plain = notebook_definitions([NotebookAsset("daily.ipynb", freshness="1m")], warehouse=tmp_path / "warehouse.duckdb",
                                 base_dir=tmp_path)
    assert SENSOR_NAME not in {s.name for s in plain.sensors}
    [notebook] = [a for a in plain.assets if isinstance(a, dg.AssetsDefinition)]
    [spec] = notebook.specs  # Dagster's own policy on the output, for its UI and its freshness daemon
    assert spec.freshness_policy == dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=1))
    [source] = [a for a in plain.assets if isinstance(a, dg.AssetSpec)]
    assert source.key == dg.AssetKey(["raw", "orders"]) and source.freshness_policy is None
    with pytest.raises(DeclarationError, match=r"daily.ipynb: freshness='by 7' is not a freshness rule"):
        notebook_definitions([NotebookAsset("daily.ipynb", freshness="by 7")], warehouse=tmp_path / "warehouse.duckdb",
                             base_dir=tmp_path)


def test_the_context_pane_shows_the_status_line_of_its_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nb_assets.jupyter.context_pane import notebook_context, render_html, render_text

    write_project(tmp_path)
    (tmp_path / "definitions.py").write_text(DEFINITIONS.replace('freshness="1m"', 'freshness="26h"'))  # no clock race
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    ran = subprocess.run([sys.executable, "-m", "nb_assets.cli", "run", "daily.ipynb", "--definitions", "definitions.py",
                          "--sandbox", "local"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    context = notebook_context(tmp_path / "daily.ipynb")
    assert context.status is not None and context.status.startswith("daily: last run success ")
    assert "fresh until" in context.status and "(26h)" in context.status
    assert "waiting for: input raw.orders: not landed since the last run started at" in context.status
    assert f"status: {context.status}" in render_text(context)
    assert "<th style='text-align:left;padding-right:1em'>status</th>" in render_html(context)
    # The CLI says the same of it, in a fresh interpreter that loads no Dagster.
    probe = ("import sys\nfrom nb_assets.cli.main import main\nrc = main(['status'])\n"
             "print('DAGSTER' if any(m.startswith('dagster') for m in sys.modules) else 'NO-DAGSTER')\n")
    status = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert status.stdout.splitlines()[0] == context.status.split(" (landing log")[0], (status.stdout, context.status)
    assert status.stdout.splitlines()[-1] == "NO-DAGSTER"


def test_a_notebook_stale_since_long_before_the_sensor_ran_is_still_told(project: Project) -> None:
    """The delivery's give-up time (a day) counts from when the notice was queued, not from when the
    rule was first missed: a sensor deployed on a project stale for a month still tells its owners."""
    project.tick(json.dumps({"since": {"daily": time.time() - 30 * 86400}}))
    [stale] = project.notices("is stale")
    assert "Stale since:" in stale.body and len(project.hook.received) == 1


def test_on_postgres_status_reads_when_each_source_last_landed(pg_warehouse: str) -> None:
    """The landing log is read through the one chooser, so a Postgres warehouse answers the same."""
    from nb_assets.runs.status import Watched, project_status, source_landings
    from nb_assets.warehouse.backends import record_landing

    assert source_landings(pg_warehouse, {"raw.orders"}) == ({}, None)  # no log yet: nothing landed
    first = record_landing(pg_warehouse, "raw.orders", rows=20)
    latest = record_landing(pg_warehouse, "raw.orders", rows=5)
    assert source_landings(pg_warehouse, {"raw.orders"}) == ({"raw.orders": latest.landed_at}, None)
    assert latest.landed_at >= first.landed_at
    watched = [Watched("daily", "daily.ipynb", ("a@example.com",), "when all inputs have landed", ("raw.orders",),
                       ("mart.daily",), "26h", True)]
    [status] = project_status(watched, [], pg_warehouse, watched_since={}).notebooks
    assert status.state == "not yet due" and status.waiting_for == []  # it landed; the notebook never ran
