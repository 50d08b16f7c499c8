"""Faults survived by the deployed stack: a run worker SIGKILLed, the webserver and the code server
restarted, the Postgres postmaster SIGKILLed and restarted. Short versions (a handful of runs
each); the 200-run soak is `make soak` (benchmarks/deploy_soak.py), never `make test`.

One stack for the module, durable as `make deploy` starts it, one run at a time (so "queued" is
easy to hold). Every wait is bounded; a failed wait prints the daemon's and webserver's logs.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from support.dagster_runs import explain_run
from support.deployment import Deployment, deployed, new_settings
from support.loopback_servers import SmtpSink, smtp_server
from support.polling import wait_for
from nb_assets.deploy.operate import restart_code_server, restart_webserver, start_postgres
from nb_assets.deploy.webserver_client import graphql
from nb_assets.sandbox.image import docker_client
from nb_assets.sandbox.janitor import CLAIMED_PREFIX, POOL_LABEL, SANDBOX_LABEL

pytestmark = [pytest.mark.slow, pytest.mark.docker]

TRAFFIC = [["mart", "daily_traffic"]]
ACTIVE = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
RUNS = "{ runsOrError { __typename ... on Runs { results { runId status } } } }"


@pytest.fixture(scope="module")
def mail() -> Iterator[SmtpSink]:
    with smtp_server() as sink:
        yield sink


@pytest.fixture(scope="module")
def stack(mail: SmtpSink) -> Iterator[Deployment]:
    settings = new_settings(max_concurrent_runs=1, worker_retention_s=3600, smtp=f"127.0.0.1:{mail.port}")
    with deployed(settings) as deployment:
        yield deployment


def table(deployment: Deployment, name: str) -> list[tuple[Any, ...]] | None:
    """Every row of `name`, ordered; None if it does not exist."""
    import psycopg

    with deployment.warehouse() as con:
        try:
            return sorted(map(tuple, con.execute(f"SELECT * FROM {name}").fetchall()), key=repr)
        except psycopg.errors.UndefinedTable:
            return None


def sandboxes_of(deployment: Deployment) -> list[dict[str, Any]]:
    """The deployment's sandboxes serving a run: made for it, or a spare of its pool it claimed
    (an offered spare waits for the next run worker: not a run's)."""
    home = f"{deployment.settings.dagster_home}/"

    def of_a_run(container: dict[str, Any]) -> bool:
        labels, name = container.get("Labels") or {}, (container.get("Names") or ["/"])[0].lstrip("/")
        return (labels.get("nb_assets.run_folder", "").startswith(home)
                or (labels.get(POOL_LABEL) == deployment.settings.label and name.startswith(CLAIMED_PREFIX)))

    return [c for c in docker_client().api.containers(all=True, filters={"label": SANDBOX_LABEL}) if of_a_run(c)]


def test_a_killed_run_worker_fails_its_run_and_leaves_no_sandbox_and_no_change(stack: Deployment, mail: SmtpSink) -> None:
    # A run first, so the killed one's sandbox is a spare it claimed, which only its name ties to its worker.
    warm_up = stack.launch(TRAFFIC)
    assert stack.wait_until_finished([warm_up])[warm_up] == dg.DagsterRunStatus.SUCCESS, explain_run(stack.instance, warm_up)
    before = table(stack, "mart.daily_traffic")
    run_id = stack.launch(TRAFFIC)
    wait_for("the run's sandbox to start", lambda: bool(sandboxes_of(stack)), stack, 600)
    [sandbox] = sandboxes_of(stack)
    assert sandbox["Names"][0].lstrip("/").startswith(CLAIMED_PREFIX), sandbox["Names"]
    worker = stack.instance.get_run_by_id(run_id).tags["docker/container_id"]
    docker_client().api.kill(worker, signal="SIGKILL")

    assert stack.wait_until_finished([run_id])[run_id] == dg.DagsterRunStatus.FAILURE
    # Run monitoring said why, and did not start it again (max_resume_run_attempts: 0).
    messages = [e.message or "" for e in stack.instance.all_logs(run_id)]
    assert sum("Launching run in a new container" in m for m in messages) == 1, messages
    # The deployment's janitor (the reaper) removes the orphaned sandbox, well before its deadline.
    wait_for("the orphaned sandbox to be removed", lambda: not sandboxes_of(stack), stack, 120)
    assert table(stack, "mart.daily_traffic") == before
    # The owners hear of it through the SMTP server the deployment was given (--smtp), over host networking.
    wait_for("the failure notice", lambda: any(m.message["X-NB-Assets-Run"] == run_id for m in mail.to("product@example.com")),
             stack, 300)


def test_the_webserver_restarts_with_the_same_history(stack: Deployment) -> None:
    run_id = stack.launch(TRAFFIC)
    assert stack.wait_until_finished([run_id])[run_id] == dg.DagsterRunStatus.SUCCESS, stack.tail()
    seen = graphql(stack.url, RUNS)["runsOrError"]["results"]
    old_pid = stack.settings.pids["webserver"]
    new_pid = restart_webserver(stack.settings)
    assert new_pid != old_pid
    assert graphql(stack.url, RUNS)["runsOrError"]["results"] == seen
    assert run_id in {r["runId"] for r in seen}


def test_a_new_code_server_mid_queue_runs_every_queued_run_exactly_once(stack: Deployment) -> None:
    run_ids = [stack.launch(TRAFFIC) for _ in range(3)]
    wait_for("one run started, the others queued", lambda: any(stack.status(r) in (*ACTIVE, dg.DagsterRunStatus.SUCCESS)
             for r in run_ids) and sum(stack.status(r) == dg.DagsterRunStatus.QUEUED for r in run_ids) >= 1, stack, 600)
    restart_code_server(stack.settings)
    statuses = stack.wait_until_finished(run_ids, timeout_s=1800)
    assert set(statuses.values()) == {dg.DagsterRunStatus.SUCCESS}, (statuses, stack.tail())
    for run_id in run_ids:
        kinds = [e.dagster_event.event_type for e in stack.instance.all_logs(run_id) if e.dagster_event is not None]
        assert kinds.count(dg.DagsterEventType.RUN_START) == 1 and kinds.count(dg.DagsterEventType.RUN_SUCCESS) == 1


def test_postgres_killed_and_restarted_loses_no_history_and_half_loads_nothing(stack: Deployment) -> None:
    settings = stack.settings
    history = {r.run_id: r.status for r in stack.instance.get_runs()}
    run_ids = [stack.launch(TRAFFIC) for _ in range(2)]
    wait_for("a run to start", lambda: any(stack.status(r) in ACTIVE for r in run_ids), stack, 600)
    stack.close()  # this process's pool would only see broken connections
    postmaster = int((settings.postgres_dir / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)

    deadline = time.monotonic() + 120  # its backends notice the postmaster is gone and exit; then it starts
    while True:
        try:
            start_postgres(settings)
            break
        except Exception:  # noqa: BLE001 - shared memory still held by an exiting backend: try again
            if time.monotonic() > deadline:
                raise
            time.sleep(2)

    statuses = stack.wait_until_finished(run_ids, timeout_s=1800)
    for run_id, status in statuses.items():
        if status != dg.DagsterRunStatus.SUCCESS:  # failed by the outage, and saying so: in a message or an error
            # (a run being dequeued when Postgres died is failed by the daemon, the database's error in its event)
            text = " ".join(_message_and_error(e) for e in stack.instance.all_logs(run_id)).lower()
            assert any(w in text for w in ("connection", "terminat", "server closed", "shut down")), \
                explain_run(stack.instance, run_id) + "\n" + text[-3000:]
    # History intact: every run from before, as it was.
    now = {r.run_id: r.status for r in stack.instance.get_runs()}
    assert {r: now[r] for r in history} == history
    # The queue carries on. The webserver's one pooled connection died with the server: the first
    # request on it fails (500) and the pool reconnects, so a launch is retried, within a bound.
    launched: list[str] = []

    def launch() -> bool:
        try:
            launched.append(stack.launch(TRAFFIC))
        except urllib.error.HTTPError as exc:
            assert exc.code == 500
            return False
        return True

    wait_for("the webserver to launch runs again", launch, stack, 120)
    after = launched[0]
    assert stack.wait_until_finished([after])[after] == dg.DagsterRunStatus.SUCCESS, stack.tail()
    # No half-loaded table: the output is whole, as a successful run leaves it.
    rows = table(stack, "mart.daily_traffic")
    assert rows and len(rows) == len(set(rows))


def _message_and_error(entry: dg.EventLogEntry) -> str:
    """An event's message and, where it carries one, its error with causes (engine events of the daemon)."""
    data = entry.dagster_event.event_specific_data if entry.dagster_event is not None else None
    error = getattr(data, "error", None)
    return " ".join([entry.message or "", error.to_string() if error is not None else ""])
