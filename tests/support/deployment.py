"""A deployment (`nb-assets deploy up`) for the e2e tests that drive it: start, launch through GraphQL, wait, stop.

Shared by tests/e2e/test_deploy_*.py. Each module starts one stack (minutes) and shares it among
its tests. The state folder is not under pytest's base folder: a pytest session started meanwhile
makes that 0700 again, and the cluster runs as the postgres user. `down(purge=True)` removes it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from support.dagster_runs import explain_runs
from support.loopback_servers import free_port
from support.paths import REPO
from support.polling import wait_for
from nb_assets.deploy.config import LOCATION, DeploySettings
from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, load_secrets
from nb_assets.deploy.stack import down, up
from nb_assets.deploy.webserver_client import graphql

RUN_TIMEOUT_S = 600  # a run worker plus a notebook in its sandbox, queued behind others, on 2 loaded cores
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
LAUNCH = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message } } }
"""


class Deployment:
    """A running deployment, seen as a user and an operator see it: the webserver's GraphQL API and
    the Dagster instance its DAGSTER_HOME names (this process given the storage's password)."""

    def __init__(self, settings: DeploySettings, said: list[str]) -> None:
        self.settings, self.said = settings, said
        self.url = f"http://127.0.0.1:{settings.webserver_port}"
        self._instance: dg.DagsterInstance | None = None

    @property
    def secrets(self) -> dict[str, str]:
        return load_secrets(self.settings.state_dir)

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            os.environ["DAGSTER_HOME"] = str(self.settings.dagster_home)
            os.environ[DAGSTER_PASSWORD_ENV] = self.settings.storage_password(self.secrets)
            self._instance = dg.DagsterInstance.from_config(str(self.settings.dagster_home))
        return self._instance

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def tail(self, lines: int = 60) -> str:
        logs = [self.settings.logs_dir / name for name in ("daemon.log", "webserver.log", "reaper.log")]
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

    def wait_until_finished(self, run_ids: list[str], timeout_s: float = RUN_TIMEOUT_S) -> dict[str, dg.DagsterRunStatus]:
        wait_for(f"runs {run_ids} to finish", lambda: all(self.status(r) in FINISHED for r in run_ids), self, timeout_s)
        return {r: self.status(r) for r in run_ids}

    def warehouse(self) -> Any:
        """A psycopg connection to the warehouse as its owner (autocommit)."""
        import psycopg

        return psycopg.connect(self.settings.warehouse_url(self.secrets), autocommit=True, connect_timeout=30)

    def rows(self, table: str) -> int:
        with self.warehouse() as con:
            return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def tables(self) -> list[str]:
        """Every table and view of the warehouse outside Postgres's own schemas, as schema.name."""
        with self.warehouse() as con:
            return [f"{s}.{n}" for s, n in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")]

    def story(self) -> str:
        """What a failing test prints: every run with its status and what started it, why each
        unsuccessful one failed (its own events), the warehouse's tables, then the daemon's log."""
        runs = self.instance.get_runs()
        lines = [f"{len(runs)} runs, newest first:"]
        for run in runs:
            keys = sorted("/".join(k.path) for k in (run.asset_selection or ()))
            started_by = {k: v for k, v in run.tags.items() if k.startswith(("dagster/sensor", "dagster/schedule", "dagster/auto"))}
            lines.append(f"  {run.run_id[:8]} {run.status.value:<9} {keys} {started_by}")
        failed = [r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        with contextlib.suppress(Exception):  # the story must not hide the failure it explains
            lines.append(f"tables: {self.tables()}")
        return "\n".join([*lines, explain_runs(self.instance, failed), self.tail()])


def new_settings(state: Path | None = None, **overrides: Any) -> DeploySettings:
    state = state or Path(tempfile.mkdtemp(prefix="nb-assets-deploy-test-"))
    values: dict[str, Any] = {"webserver_port": free_port(), "code_server_port": free_port(),
                              "postgres_port": free_port(), "max_concurrent_runs": 2, "sensor_interval_s": 5}
    return DeploySettings(state_dir=state, **{**values, **overrides})


@contextlib.contextmanager
def deployed(settings: DeploySettings, *, seed: bool = True, purge: bool = True, project: Path = REPO,
             **up_options: Any) -> Iterator[Deployment]:
    """`deploy up` of `project` (the demo unless given) with `settings`, the demo's seed in its warehouse
    unless `seed` is False; `deploy down` (and purge) whatever happens."""
    from nb_assets.sandbox.container import docker_available

    if not docker_available():
        pytest.skip("no Docker engine answers (is dockerd running? DOCKER_HOST?)")
    previous = {name: os.environ.get(name) for name in ("DAGSTER_HOME", DAGSTER_PASSWORD_ENV)}
    said: list[str] = []
    deployment = Deployment(settings, said)
    try:
        up(settings, project, seed=REPO / "scripts" / "seed_demo.py" if seed else None, say=said.append, **up_options)
        yield deployment
    finally:
        deployment.close()
        down(settings.state_dir, purge=purge)
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
