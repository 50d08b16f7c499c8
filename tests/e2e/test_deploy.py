"""The deployment recipe, used as a user would: runs launched through the webserver's GraphQL API.

`nb-assets deploy up` (what `make deploy` runs) in a temporary state folder on
free ports: the code image is built offline if missing, a Postgres cluster holds
Dagster's storage and the warehouse database, the code server runs in a
container, webserver and daemon are host processes, and each run worker is a
container started by DockerRunLauncher. Every wait is bounded; `deploy down
--purge` runs at the end whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from support.dagster_runs import explain_runs
from support.loopback_servers import free_port
from support.needs import require_docker
from support.paths import REPO
from support.polling import wait_for
from nb_assets.deploy.config import DEPLOY_LABEL, LOCATION, DeploySettings
from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, load_secrets
from nb_assets.deploy.stack import DeployError, down, start_daemon, stop_daemon, up
from nb_assets.sandbox.janitor import (
    BOOT_AT_LABEL,
    MAKER_LABEL,
    OFFERED_PREFIX,
    OWNER_LABEL,
    POOL_LABEL,
    SANDBOX_LABEL,
    here,
)
from nb_assets.sandbox.image import docker_client, image_tag
from nb_assets.runs.history import DAGSTER_RECORDS, find_runs
from nb_assets.deploy.webserver_client import graphql

pytestmark = [pytest.mark.slow, pytest.mark.docker]

LIMIT = 2  # notebook runs at once
RUN_TIMEOUT_S = 600  # a run worker plus a notebook in its sandbox, queued behind others, on 2 loaded cores
GRAPH = [["mart", "orders_clean"], ["mart", "customer_revenue"], ["mart", "daily_traffic"], ["reports", "revenue_report"],
         ["mart", "regional_revenue_emea"], ["mart", "regional_revenue_apac"]]
LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message } } }
"""
MATERIALIZATION = """
query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset { assetMaterializations(limit: 1) {
  runId metadataEntries { label ... on PathMetadataEntry { path } ... on NotebookMetadataEntry { path } } } } } }
"""
ACTIVE = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
RATES_ENV = "NB_ASSETS_DEMO_RATES_URL"  # the demo declares partner_rates as an HTTP source when it names one


class RatesServer:
    """The demo's partner API (its rates JSON, with an ETag) on this host's loopback, recording each request:
    run workers share the host's network, the sandboxes they start have none."""

    def __init__(self) -> None:
        body = (REPO / "sources" / "partner_rates.json").read_bytes()
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        self.requests: list[str] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                served.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", served.etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/rates"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Deployment:
    def __init__(self, settings: DeploySettings, instance: dg.DagsterInstance, rates: RatesServer) -> None:
        self.settings, self.instance, self.rates = settings, instance, rates
        self.url = f"http://127.0.0.1:{settings.webserver_port}"

    def tail(self, lines: int = 60) -> str:
        logs = [self.settings.logs_dir / name for name in ("daemon.log", "webserver.log")]
        return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in logs if log.exists())

    def launch(self, keys: list[list[str]]) -> str:
        params = {"mode": "default", "selector": {
            "repositoryLocationName": LOCATION, "repositoryName": "__repository__", "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": key} for key in keys]}}
        answer = graphql(self.url, LAUNCH, {"params": params})["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        return str(answer["run"]["runId"])

    def status(self, run_id: str) -> dg.DagsterRunStatus:
        run = self.instance.get_run_by_id(run_id)
        assert run is not None
        return run.status

    def wait_until_done(self, run_ids: list[str], timeout_s: float = RUN_TIMEOUT_S) -> None:
        finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
        wait_for(f"runs {run_ids} to finish", lambda: all(self.status(r) in finished for r in run_ids), self, timeout_s)
        assert {r: self.status(r) for r in run_ids} == {r: dg.DagsterRunStatus.SUCCESS for r in run_ids}, \
            explain_runs(self.instance, run_ids) + "\n" + self.tail()


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    require_docker()  # a patient probe; its skip fails `make test` (support.needs)
    # Not under pytest's base folder: a pytest session started meanwhile makes it 0700 again, and the
    # cluster runs as the postgres user. Removed by `down(purge=True)`.
    state = Path(tempfile.mkdtemp(prefix="nb-assets-deploy-test-"))
    # The declared sources' folder, a copy the tests may add to (mounted read-only in every container),
    # and the partner API, whose URL reaches the code server and the run workers as a passed variable.
    sources = state / "sources"
    shutil.copytree(REPO / "sources", sources)
    rates = RatesServer()
    settings = DeploySettings(state_dir=state, webserver_port=free_port(), code_server_port=free_port(),
                              postgres_port=free_port(), max_concurrent_runs=LIMIT, sensor_interval_s=5,
                              worker_retention_s=24 * 3600,  # the tests inspect finished run workers
                              sources=str(sources), secret_envs=[RATES_ENV])
    previous = os.environ.get("DAGSTER_HOME")
    previous_rates = os.environ.get(RATES_ENV)
    os.environ[RATES_ENV] = rates.url
    try:
        # The suite's explicit choice: a cluster thrown away at the end needs no fsync.
        up(settings, REPO, seed=REPO / "scripts" / "seed_demo.py", unsafe_fast=True)
        os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
        os.environ[DAGSTER_PASSWORD_ENV] = settings.storage_password(load_secrets(state))
        instance = dg.DagsterInstance.get()
        try:
            yield Deployment(settings, instance, rates)
        finally:
            instance.dispose()
    finally:
        down(state, purge=True)
        rates.stop()
        for name, value in (("DAGSTER_HOME", previous), (RATES_ENV, previous_rates)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_the_demo_graph_runs_in_a_run_worker_container_with_a_sandbox_container_per_notebook(deployment: Deployment) -> None:
    settings, client = deployment.settings, docker_client()
    creations = SandboxCreations(client)  # watched live: the engine keeps only its last 256 events
    try:
        run_id = deployment.launch(GRAPH)
        deployment.wait_until_done([run_id])
    finally:
        creations.close()

    # The run worker: a container of the code image, started by the run launcher for this run.
    worker = client.containers.get(deployment.instance.get_run_by_id(run_id).tags["docker/container_id"])
    assert worker.image.tags == [settings.code_image]
    assert worker.labels["dagster/run_id"] == run_id and worker.labels[DEPLOY_LABEL] == settings.label
    assert worker.attrs["State"]["ExitCode"] == 0

    # One sandbox container per notebook, made through the engine socket from inside the run worker
    # (another pid namespace than this one), from the sandbox image, with every limit: made for its
    # run, or a spare a run worker of this deployment left (its pool), claimed by this run only.
    made_for = creations.by_notebook(settings.dagster_home / DAGSTER_RECORDS)
    records = {r.notebook: r for r in find_runs([settings.dagster_home / DAGSTER_RECORDS]) if r.run_id == run_id}
    assert set(records) == {"clean_orders", "customer_revenue", "daily_traffic", "revenue_report",
                            "regional_revenue_emea", "regional_revenue_apac"}
    used = set()
    for notebook, record in records.items():
        facts = record.summary["sandbox"]
        assert record.status == "success" and facts["kind"] == "docker" and facts["network"] == "none"
        assert facts["image"] == image_tag()
        attributes = creations.by_id(facts["container"])
        assert attributes is not None, f"{notebook}: no sandbox created with id {facts['container']}"
        assert not worker.id.startswith(facts["container"]) and attributes["image"] == image_tag()
        if facts["warm_spare"]:
            assert attributes[POOL_LABEL] == settings.label, attributes
            maker = attributes[MAKER_LABEL]
        else:
            assert made_for[notebook]["id"] == attributes["id"]
            maker = attributes[OWNER_LABEL]
        assert maker.partition(":")[0] not in ("", here()), "made by this process's namespace"
        used.add(attributes["id"])
    assert len(used) == len(records)

    # Outputs in the Postgres warehouse, as many rows as each record says.
    for notebook, record in records.items():
        for output in record.summary["outputs"]:
            assert warehouse_rows(settings, output["table"]) == output["rows"] > 0, (notebook, output)

    # The records, found through the webserver: the paths it shows are readable on its host.
    answer = graphql(deployment.url, MATERIALIZATION, {"key": {"path": ["mart", "daily_traffic"]}})
    latest = answer["assetOrError"]["assetMaterializations"][0]
    assert latest["runId"] == run_id
    paths = {e["label"]: e.get("path") for e in latest["metadataEntries"]}
    assert Path(paths["notebook/executed"]).read_text().startswith("{")
    assert "<html" in Path(paths["notebook/html"]).read_text()[:2000].lower()
    # The UI's "View Notebook": the webserver renders it, read through the code server's container.
    query = urllib.parse.urlencode({"path": paths["notebook/executed"], "repoLocName": LOCATION})
    page = urllib.request.urlopen(f"{deployment.url}/notebook?{query}", timeout=120).read().decode()
    assert "mart.daily_traffic" in page and "jp-Notebook" in page


def test_the_spare_a_run_worker_leaves_serves_the_next_run_worker(deployment: Deployment) -> None:
    """A run worker lives for one run: the spare it leaves is for the deployment's next one (its pool)."""
    settings, client = deployment.settings, docker_client()
    # Those earlier tests' runs left (deploy down's work, done early): the second run here finds the first's.
    for left in client.api.containers(all=True, filters={"label": f"{POOL_LABEL}={settings.label}"}):
        client.api.remove_container(left["Id"], force=True)
    creations = SandboxCreations(client)
    try:
        runs = []
        for _ in range(2):  # one after the other: the second finds what the first left
            runs.append(deployment.launch([["mart", "daily_traffic"]]))
            deployment.wait_until_done(runs[-1:])
    finally:
        creations.close()
    records = {r.run_id: r for r in find_runs([settings.dagster_home / DAGSTER_RECORDS]) if r.run_id in runs}
    facts = records[runs[1]].summary["sandbox"]
    assert facts["warm_spare"], (facts, explain_runs(deployment.instance, runs))
    spare = creations.by_id(facts["container"])
    seen = [(e["Actor"]["ID"][:12], e["Actor"]["Attributes"].get("name")) for e in creations.events]
    assert spare is not None and spare[POOL_LABEL] == settings.label, (facts, records[runs[0]].summary["sandbox"], seen)
    assert spare[MAKER_LABEL].partition(":")[0] not in ("", here()), "made by a run worker, not this process"
    # What waits: the spare the second run left for whatever run comes next, and the one the first left for
    # daily_traffic's next tick (unbooted until shortly before it), which the second run neither took nor doubled.
    offered = [c for c in client.api.containers(filters={"label": f"{POOL_LABEL}={settings.label}"})
               if c["Names"][0].lstrip("/").startswith(OFFERED_PREFIX)]
    booted = [c for c in offered if BOOT_AT_LABEL not in c["Labels"]]
    assert len(booted) == 1 and len(offered) - len(booted) <= 1, offered


def test_run_workers_fetch_declared_sources_a_mounted_folder_and_an_http_api(deployment: Deployment) -> None:
    """fx_revenue reads `sales_regions` (CSV files under the mounted sources folder, not in the code image)
    and `partner_rates` (the HTTP API above): the run worker fetches both; its sandbox has no network."""
    settings = deployment.settings
    # A file only the host's folder has: read through the mount, so it is the folder now, not an image's copy.
    (Path(settings.sources) / "sales_regions" / "zz_test_only.csv").write_text("currency,sales_region\nXTS,Testland\n")
    region_rows = sum(len(f.read_text().splitlines()) - 1 for f in (Path(settings.sources) / "sales_regions").glob("*.csv"))
    asked = len(deployment.rates.requests)
    # mart.orders_clean, which fx_revenue reads, from the first test, or made here when this one runs alone.
    upstream = [] if warehouse_has(settings, "mart", "orders_clean") else [["mart", "orders_clean"]]
    run_id = deployment.launch([*upstream, ["mart", "revenue_eur_by_region"]])
    deployment.wait_until_done([run_id])

    event = deployment.instance.get_latest_materialization_event(dg.AssetKey(["mart", "revenue_eur_by_region"]))
    assert event is not None and event.run_id == run_id
    fetched = event.asset_materialization.metadata["notebook/sources"].value
    rates, regions = fetched["partner_rates"], fetched["sales_regions"]
    assert rates["location"] == f"{deployment.rates.url}?date=2026-11-25" and rates["kind"] == "https"
    assert rates["version"] == deployment.rates.etag and rates["rows"] == 7
    assert deployment.rates.requests[asked:] == ["/v1/rates?date=2026-11-25"]  # once, by the run worker
    assert regions["location"] == f"{settings.sources_mount}/sales_regions" and regions["rows"] == region_rows
    record = next(r for r in find_runs([settings.dagster_home / DAGSTER_RECORDS], "fx_revenue") if r.run_id == run_id)
    assert record.summary["sandbox"]["kind"] == "docker" and record.summary["sandbox"]["network"] == "none"
    assert warehouse_rows(settings, "mart.revenue_eur_by_region") > 0


@pytest.mark.soak  # `make soak`, beside the 200-run soak: a queue of eight, 140 s of make test's time
def test_eight_runs_hold_the_queue_limit_and_survive_a_daemon_restart(deployment: Deployment) -> None:
    instance, settings = deployment.instance, deployment.settings
    run_ids = [deployment.launch([["mart", "daily_traffic"]]) for _ in range(8)]
    most_active = 0

    def some_started_others_queued() -> bool:
        nonlocal most_active
        statuses = [deployment.status(r) for r in run_ids]
        most_active = max(most_active, sum(s in ACTIVE for s in statuses))
        return any(s in (*ACTIVE, dg.DagsterRunStatus.SUCCESS) for s in statuses) and \
            statuses.count(dg.DagsterRunStatus.QUEUED) >= 3

    wait_for("the queue to start the first runs", some_started_others_queued, deployment, RUN_TIMEOUT_S)
    stop_daemon(settings)
    queued = {r for r in run_ids if deployment.status(r) == dg.DagsterRunStatus.QUEUED}
    # With no daemon, nothing leaves the queue: watched over many of the coordinator's dequeue intervals
    # (no daemon runs, so there are no ticks to count), checked at each poll rather than once at the end.
    quiet_until = time.monotonic() + max(8.0, 8 * getattr(instance.run_coordinator, "dequeue_interval_seconds", 1))
    while time.monotonic() < quiet_until:
        assert {r for r in run_ids if deployment.status(r) == dg.DagsterRunStatus.QUEUED} == queued, deployment.tail()
        time.sleep(0.5)
    start_daemon(settings)

    def finished() -> bool:
        nonlocal most_active
        most_active = max(most_active, instance.get_runs_count(dg.RunsFilter(statuses=ACTIVE)))
        return all(deployment.status(r) in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) for r in run_ids)

    wait_for("all eight runs to finish", finished, deployment, 4 * RUN_TIMEOUT_S)
    deployment.wait_until_done(run_ids)

    # The limit, from what was seen while polling and from the runs' own start and end times.
    records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    assert 1 <= most_active <= LIMIT
    assert most_overlapping([(r.start_time, r.end_time) for r in records]) == LIMIT

    # Exactly once: one start, one success, one run worker container and one notebook record per run.
    client = docker_client()
    for run_id in run_ids:
        logs = instance.all_logs(run_id)
        kinds = [e.dagster_event.event_type for e in logs if e.dagster_event is not None]
        assert kinds.count(dg.DagsterEventType.RUN_START) == 1 and kinds.count(dg.DagsterEventType.RUN_SUCCESS) == 1
        assert sum("Launching run in a new container" in (e.message or "") for e in logs) == 1
        assert len(client.containers.list(all=True, filters={"label": f"dagster/run_id={run_id}"})) == 1
        assert [r.run_id for r in find_runs([settings.dagster_home / DAGSTER_RECORDS], "daily_traffic")].count(run_id) == 1


def most_overlapping(spans: list[tuple[float | None, float | None]]) -> int:
    """The most runs between their start and end at any moment."""
    edges = sorted([(start, 1) for start, _ in spans if start is not None] + [(end, -1) for _, end in spans if end is not None],
                   key=lambda edge: (edge[0], edge[1]))  # an end before a start at the same instant
    level = most = 0
    for _, step in edges:
        level += step
        most = max(most, level)
    return most


class SandboxCreations:
    """The sandbox containers the engine creates while this watches, by their create events, read as they
    happen: asked for afterwards (`events(since=...)`), the engine answers from a buffer of its last 256
    events of any kind, which a busy engine (other tests' containers, volume mounts) overruns in minutes."""

    def __init__(self, client: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self._stream = client.events(decode=True, filters={"type": "container", "event": "create", "label": SANDBOX_LABEL})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        except Exception:  # noqa: BLE001  # the stream closed under the reader: close() was called
            pass

    def close(self) -> None:
        time.sleep(1)  # the last create event is on its way through the stream
        self._stream.close()
        self._reader.join(10)

    def by_id(self, prefix: str) -> dict[str, str] | None:
        """The container created with an id starting with `prefix`: its image and labels."""
        for event in self.events:
            if event["Actor"]["ID"].startswith(prefix):
                return {**event["Actor"]["Attributes"], "id": event["Actor"]["ID"]}
        return None

    def by_notebook(self, records_root: Path) -> dict[str, dict[str, str]]:
        """For runs recorded under `records_root`: each notebook's container id, image and labels."""
        found: dict[str, dict[str, str]] = {}
        for event in self.events:
            attributes = dict(event["Actor"]["Attributes"])
            folder = Path(attributes.get("nb_assets.run_folder", "/"))
            if records_root in folder.parents:
                found[folder.relative_to(records_root).parts[0]] = {**attributes, "id": event["Actor"]["ID"]}
        return found


def warehouse_rows(settings: DeploySettings, table: str) -> int:
    """Rows of `table` in the deployment's warehouse: its Postgres database."""
    import psycopg

    assert settings.warehouse_location().startswith("postgresql://")
    with psycopg.connect(settings.warehouse_url(load_secrets(settings.state_dir))) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def warehouse_has(settings: DeploySettings, schema: str, table: str) -> bool:
    import psycopg

    with psycopg.connect(settings.warehouse_url(load_secrets(settings.state_dir))) as con:
        return con.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{table}",)).fetchone()[0]


def test_most_overlapping_counts_runs_at_once() -> None:
    assert most_overlapping([(0, 2), (1, 3), (2, 4), (5, 6)]) == 2
    assert most_overlapping([(0, 1), (1, 2)]) == 1
    assert json.dumps(most_overlapping([])) == "0"


def test_ports_in_use_are_refused_before_anything_is_built_or_started(tmp_path: Path) -> None:
    """A webserver elsewhere on all interfaces and a server on loopback, both on ports the deployment wants."""
    with socket.socket() as anywhere, socket.socket() as loopback:
        anywhere.bind(("0.0.0.0", 0))
        loopback.bind(("127.0.0.1", 0))
        for held in (anywhere, loopback):
            held.listen()
        web, code = anywhere.getsockname()[1], loopback.getsockname()[1]
        state = tmp_path / "deploy"
        settings = DeploySettings(state_dir=state, webserver_port=web, code_server_port=code, postgres_port=free_port())
        with pytest.raises(DeployError) as refused:
            up(settings, REPO)
    message = str(refused.value)
    assert f"{web} (--port)" in message and f"{code} (--code-server-port)" in message, message
    assert "--postgres-port)" not in message.split(";")[0]  # the free one is not named
    assert not (state / "deploy.json").exists()  # nothing saved, so nothing was started
