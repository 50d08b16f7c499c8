"""A deployment you can keep data in: durable storage, passwords that stay secret, file drops,
reaped run workers, backup, upgrade and restore. Through the deployed stack, bounded waits.

One stack for the module, started as `make deploy` starts it (no unsafe setting), plus an SMTP
password and a webhook token handed to the project with `--secret-env`, so every secret has a
value to look for. The tests run in order: the last one stops the stack, migrates it and restores
its backup into a second, fresh deployment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from support.deployment import Deployment, deployed, new_settings
from support.paths import REPO
from support.polling import wait_for
from nb_assets.deploy.backup import backup
from nb_assets.deploy.config import DEPLOY_LABEL, DeploySettings
from nb_assets.deploy.reaper import WORKER_LOGS
from nb_assets.deploy.secrets import SECRETS_FILE
from nb_assets.deploy.stack import down, up
from nb_assets.deploy.webserver_client import graphql
from nb_assets.runs.history import DAGSTER_RECORDS, find_runs
from nb_assets.sandbox.image import docker_client
from nb_assets.sandbox.janitor import SANDBOX_LABEL
from nb_assets.warehouse.landing import LOG_TABLE

pytestmark = [pytest.mark.slow, pytest.mark.docker]

ACTIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
GRAPH = [["mart", "orders_clean"], ["mart", "customer_revenue"], ["mart", "daily_traffic"]]
SMTP_PASSWORD = "smtp-Pa55word-4f1d9c2e"  # handed over with --secret-env; must surface nowhere
WEBHOOK = "http://127.0.0.1:9/hooks/token-77a1e0c3b5"  # a secret URL (port 9: discard), likewise
EVENTS = """
query($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on MessageEvent { message level eventType stepKey }
  ... on MaterializationEvent { assetKey { path } metadataEntries { __typename label
    ... on TextMetadataEntry { text } ... on PathMetadataEntry { path } ... on NotebookMetadataEntry { path }
    ... on JsonMetadataEntry { jsonString } ... on MarkdownMetadataEntry { mdStr } ... on UrlMetadataEntry { url }
    ... on IntMetadataEntry { intValue } } }
  ... on ExecutionStepFailureEvent { error { message stack } } } } } }
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Deployment]:
    os.environ["NB_ASSETS_SMTP_PASSWORD"], os.environ["NB_ASSETS_DATA_ENG_WEBHOOK"] = SMTP_PASSWORD, WEBHOOK
    settings = new_settings(worker_retention_s=0, secret_envs=["NB_ASSETS_SMTP_PASSWORD", "NB_ASSETS_DATA_ENG_WEBHOOK"],
                            smtp="127.0.0.1:9")
    try:
        with deployed(settings) as deployment:
            yield deployment
    finally:
        for name in ("NB_ASSETS_SMTP_PASSWORD", "NB_ASSETS_DATA_ENG_WEBHOOK"):
            os.environ.pop(name, None)


def secret_values(deployment: Deployment) -> dict[str, str]:
    return {**{k: v for k, v in deployment.secrets.items()}, "smtp": SMTP_PASSWORD, "webhook": WEBHOOK}


def test_runs_on_a_durable_cluster_and_no_password_surfaces_anywhere(stack: Deployment) -> None:
    settings, client = stack.settings, docker_client()
    secrets = secret_values(stack)
    home = f"{settings.dagster_home}/"
    inspected: dict[str, dict[str, Any]] = {}

    def sandboxes_seen() -> bool:
        """Each sandbox container of this deployment, inspected while it exists (they go when done)."""
        for summary in client.api.containers(all=True, filters={"label": SANDBOX_LABEL}):
            if (summary.get("Labels") or {}).get("nb_assets.run_folder", "").startswith(home) and summary["Id"] not in inspected:
                try:
                    inspected[summary["Id"]] = client.api.inspect_container(summary["Id"])
                except Exception:  # noqa: BLE001 - removed between list and inspect
                    pass
        return stack.status(run_id) in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)

    run_id = stack.launch(GRAPH)
    wait_for("the run, sandboxes inspected as they come", sandboxes_seen, stack, 600)
    assert stack.status(run_id) == dg.DagsterRunStatus.SUCCESS, stack.tail()
    assert inspected, "no sandbox container was seen while the run ran"

    # Durable: Postgres's defaults, asked of the server itself.
    import psycopg

    with psycopg.connect(settings.admin_url(stack.secrets), autocommit=True) as con:
        assert [con.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "full_page_writes", "synchronous_commit")] \
            == ["on", "on", "on"]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(settings.postgres_url("postgres"), connect_timeout=10)
    assert (settings.state_dir / SECRETS_FILE).stat().st_mode & 0o777 == 0o600
    dagster_yaml = (settings.dagster_home / "dagster.yaml").read_text()
    assert "env: NB_ASSETS_DAGSTER_PG_PASSWORD" in dagster_yaml

    # Where a password could leak: every file of the state folder (records, HTML, logs, dagster.yaml,
    # deploy.json, the cluster's own files and WAL), the run's events as GraphQL exports them, the
    # instance's raw event rows, `nb-assets runs --json`, and the sandbox containers' configuration.
    places: dict[str, bytes] = {}
    for path in settings.state_dir.rglob("*"):
        if path.is_file() and path.name != SECRETS_FILE:
            places[str(path)] = path.read_bytes()
    assert any(str(DAGSTER_RECORDS) in p for p in places) and any(p.endswith(".html") for p in places)
    places["graphql events"] = json.dumps(graphql(stack.url, EVENTS, {"runId": run_id})).encode()
    places["event rows"] = repr(stack.instance.all_logs(run_id)).encode()
    for notebook in ("clean_orders", "customer_revenue", "daily_traffic"):
        listed = subprocess.run([sys.executable, "-m", "nb_assets.cli", "runs", notebook, "--json",
                                 "--records", str(settings.dagster_home / DAGSTER_RECORDS)],
                                capture_output=True, timeout=120, cwd=REPO)
        assert listed.returncode == 0 and run_id.encode() in listed.stdout, listed.stderr
        places[f"nb-assets runs {notebook} --json"] = listed.stdout + listed.stderr
    for container_id, attributes in inspected.items():
        assert attributes["HostConfig"]["NetworkMode"] == "none"
        places[f"docker inspect {container_id[:12]}"] = json.dumps(attributes).encode()
    leaks = [(name, where) for name, value in secrets.items() for where, data in places.items() if value.encode() in data]
    assert leaks == [], leaks
    # The search finds them where they must be: the code server's environment (it loads file drops
    # and evaluates sensors against the warehouse) holds the owner's password and the passed secrets.
    server_env = json.dumps(client.api.inspect_container(settings.code_server_name)["Config"]["Env"])
    assert secrets["warehouse"] in server_env and SMTP_PASSWORD in server_env and secrets["postgres"] not in server_env
    assert secrets["dagster"] in server_env  # its sensors read the instance
    # Every sensor tick so far could reach the storage (no tick failed for want of its password).
    assert "NB_ASSETS_DAGSTER_PG_PASSWORD\" which is not set" not in (settings.logs_dir / "daemon.log").read_text()


def test_a_file_dropped_on_the_host_lands_through_the_deployment(stack: Deployment) -> None:
    settings = stack.settings
    drops = settings.landing_dir / "orders"
    drops.mkdir(parents=True, exist_ok=True)
    before = stack.rows("raw.orders")
    env = {**os.environ, "NB_ASSETS_WAREHOUSE": settings.warehouse_url(stack.secrets)}
    staged = settings.landing_dir / "new_orders.parquet"  # beside the drop folder, not in it, while it is written
    made = subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--new-orders", str(staged)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert made.returncode == 0, made.stderr
    staged.rename(drops / "new_orders.parquet")  # whole, at once
    wait_for("the file drop sensor to load the file", lambda: (drops / "loaded" / "new_orders.parquet").exists()
             or any((drops / "loaded").glob("*new_orders*")), stack, 300)
    assert stack.rows("raw.orders") > before
    with stack.warehouse() as con:
        sources = [r[0] for r in con.execute(f"SELECT source FROM {LOG_TABLE} WHERE \"table\" = 'raw.orders'")]
    assert any("new_orders.parquet" in (s or "") for s in sources), sources


def test_finished_run_workers_are_removed_once_their_logs_are_kept(stack: Deployment) -> None:
    settings, client = stack.settings, docker_client()
    run_id = stack.launch([["mart", "daily_traffic"]])
    assert stack.wait_until_finished([run_id])[run_id] == dg.DagsterRunStatus.SUCCESS, stack.tail()
    log = settings.dagster_home / WORKER_LOGS / f"{run_id}.log"
    wait_for("the reaper to keep the worker's logs and remove it",
             lambda: log.exists() and not client.api.containers(all=True, filters={"label": f"dagster/run_id={run_id}"}),
             stack, 120)
    assert f"run {run_id}, exit code 0" in log.read_text().splitlines()[0]
    assert len(log.read_bytes()) > 200  # the worker's own output, not only the header
    wait_for("no exited run worker to be left", lambda: not client.api.containers(
        all=True, filters={"label": [f"{DEPLOY_LABEL}={settings.label}", "dagster/run_id"], "status": "exited"}), stack, 120)


def test_backup_upgrade_and_restore_into_a_fresh_deployment(stack: Deployment, tmp_path: Path) -> None:
    """Backup while running; stop; `up` again as if Dagster had changed (it migrates and says so,
    history intact); then a fresh deployment restored from the backup has the runs and the tables."""
    settings = stack.settings
    # Quiet first: the file drop's landing started the notebooks downstream of raw.orders.
    busy = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, *ACTIVE]
    wait_for("the runs the landing started to finish",
             lambda: stack.instance.get_runs_count(dg.RunsFilter(statuses=busy)) == 0, stack, 1200)
    runs_before = {r.run_id: r.status for r in stack.instance.get_runs()}
    present = set(stack.tables())
    expected = ("mart.orders_clean", "mart.daily_traffic", "raw.orders")
    assert runs_before and present.issuperset(expected), stack.story()
    tables = {t: stack.rows(t) for t in expected}
    assert all(tables.values()), (tables, stack.story())
    saved = tmp_path / "backup"
    done = subprocess.run([sys.executable, "-m", "nb_assets.cli", "deploy", "backup", "--state", str(settings.state_dir),
                           "--to", str(saved)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in saved.iterdir()} >= {"storage.dump", "warehouse.dump", "dagster_home.tar", "manifest.json"}
    assert saved.stat().st_mode & 0o777 == 0o700
    dumped = b"".join(p.read_bytes() for p in saved.iterdir())
    assert not [k for k, v in secret_values(stack).items() if v.encode() in dumped]

    # An upgrade: the state folder says an older Dagster ran it.
    stack.close()
    down(settings.state_dir)
    recorded = json.loads((settings.state_dir / "deploy.json").read_text())
    recorded["dagster_version"] = "1.12.0"
    (settings.state_dir / "deploy.json").write_text(json.dumps(recorded))
    said: list[str] = []
    again = DeploySettings.load(settings.state_dir)
    again.pids = {}
    up(again, REPO, say=said.append)
    assert any(line.startswith("migrated Dagster's storage") and "from Dagster 1.12.0 to" in line for line in said), said
    assert json.loads((settings.state_dir / "deploy.json").read_text())["dagster_version"] == dg.__version__
    now = {r.run_id: r.status for r in stack.instance.get_runs()}
    assert {r: now.get(r) for r in runs_before} == runs_before  # (sensors may have started more since)
    stack.close()
    down(settings.state_dir)

    # A fresh deployment from the backup: a new state folder, new passwords, the same history and tables.
    fresh = new_settings()
    with deployed(fresh, seed=False, restore=saved) as restored:
        assert any(line.startswith("restored backup") for line in restored.said), restored.said
        assert restored.secrets["warehouse"] != stack.secrets["warehouse"]
        now = {r.run_id: r.status for r in restored.instance.get_runs()}
        assert {r: now.get(r) for r in runs_before} == runs_before
        assert {t: restored.rows(t) for t in tables} == tables
        assert find_runs([fresh.dagster_home / DAGSTER_RECORDS], "daily_traffic")
        # The queue works on the restored storage: one more run, on the restored tables.
        run_id = restored.launch([["mart", "daily_traffic"]])
        assert restored.wait_until_finished([run_id])[run_id] == dg.DagsterRunStatus.SUCCESS, restored.tail()
