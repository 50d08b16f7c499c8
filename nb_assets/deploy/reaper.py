"""Finished run workers go once their logs are kept: a long-lived deployment accumulates no containers.

    python -m nb_assets.deploy.reaper STATE_DIR     (started by `deploy up`, stopped by `deploy down`)

Every few seconds: each exited run-worker container of this deployment (its
label names the state folder) that finished at least `worker_retention_s` ago
has its `docker logs` written to DAGSTER_HOME/run_workers/<run id>.log (beside
the runs' records, where `nb-assets runs` and the webserver's host read), then
is removed. A container is removed only after its logs are on disk, so a crash
between the two keeps the container for the next pass. The retention keeps a
failed worker inspectable (`docker inspect`, exit code) for a while.

It is also the deployment's janitor for sandboxes whose run worker died (a
SIGKILL, an engine restart): a sandbox's owner label names the pid namespace
of the process that started it, which only that run worker's container can
judge; from the host, the reaper knows which namespaces belong to run workers
still running. A sandbox of this deployment (its run folder is under
DAGSTER_HOME, or a spare its run workers left) owned from a namespace no
running container of the deployment has is removed at once instead of at its
deadline: a run's container by its starter, a claimed spare by its claimer, a
spare being made by its maker. An offered spare waits for its claim-by.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nb_assets.deploy.config import DEPLOY_LABEL, DeploySettings

RUN_ID_LABEL = "dagster/run_id"  # DockerRunLauncher's label on each run worker
WORKER_LOGS = "run_workers"
POLL_S = 5.0


def reap_once(settings: DeploySettings, client: Any, now: float | None = None) -> list[str]:
    """One pass: the run ids whose finished worker was saved and removed."""
    now = time.time() if now is None else now
    done = []
    filters = {"label": [f"{DEPLOY_LABEL}={settings.label}", RUN_ID_LABEL], "status": ["exited", "dead"]}
    for summary in client.api.containers(all=True, filters=filters):
        info = client.api.inspect_container(summary["Id"])
        finished = _finished_at(info["State"].get("FinishedAt", ""))
        if finished is None or now - finished < settings.worker_retention_s:
            continue
        run_id = (summary.get("Labels") or {}).get(RUN_ID_LABEL, summary["Id"][:12])
        folder = settings.dagster_home / WORKER_LOGS
        folder.mkdir(parents=True, exist_ok=True)
        logs = client.api.logs(summary["Id"], stdout=True, stderr=True, timestamps=True)
        exit_code = info["State"].get("ExitCode")
        header = f"# run worker {summary['Id'][:12]} of run {run_id}, exit code {exit_code}\n".encode()
        (folder / f"{run_id}.log").write_bytes(header + logs)
        client.api.remove_container(summary["Id"], v=True)
        done.append(run_id)
    return done


def sweep_orphaned_sandboxes(settings: DeploySettings, client: Any) -> list[str]:
    """Remove this deployment's sandboxes whose run worker is gone; their ids. Sandboxes are listed
    before the workers, so one started meanwhile is never judged against a list made before its worker."""
    from nb_assets.sandbox.janitor import SANDBOX_LABEL, remove_container

    home = f"{settings.dagster_home}/"
    sandboxes = [c for c in client.api.containers(all=True, filters={"label": SANDBOX_LABEL})
                 if _of_deployment(settings, c.get("Labels") or {}, home)]
    if not sandboxes:
        return []
    alive = {_pid_namespace(os.getpid())}  # a host process's sandboxes: its own janitor judges them
    for summary in client.api.containers(filters={"label": f"{DEPLOY_LABEL}={settings.label}", "status": "running"}):
        namespace = _pid_namespace(client.api.inspect_container(summary["Id"])["State"].get("Pid", 0))
        if namespace:
            alive.add(namespace)
    removed = []
    for sandbox in sandboxes:
        namespace = _owner_namespace(sandbox.get("Labels") or {}, (sandbox.get("Names") or ["/"])[0].lstrip("/"))
        if namespace and namespace not in alive:
            remove_container(client, sandbox["Id"])
            removed.append(sandbox["Id"])
    return removed


def remove_deployment_containers(settings: DeploySettings) -> list[str]:
    """The code server and every run worker of this deployment, finished or not, the sandboxes
    of its runs (their run folders are under its DAGSTER_HOME), which a removed run worker leaves,
    and the spares its run workers left for the next.
    One line per kind of container removed."""
    from nb_assets.sandbox.janitor import SANDBOX_LABEL
    from nb_assets.sandbox.image import docker_client

    client = docker_client()
    ours = client.api.containers(all=True, filters={"label": f"{DEPLOY_LABEL}={settings.label}"})
    home = f"{settings.dagster_home}/"
    ours += [c for c in client.api.containers(all=True, filters={"label": SANDBOX_LABEL})
             if _of_deployment(settings, c.get("Labels") or {}, home)]
    removed: dict[str, list[str]] = {}
    for summary in ours:
        try:
            client.api.remove_container(summary["Id"], force=True, v=True)
        except Exception as exc:  # noqa: BLE001 - keep stopping the rest; say what is left
            print(f"[nb_assets.deploy] could not remove container {summary['Id'][:12]}: {exc}", file=sys.stderr)
            continue
        name = (summary.get("Names") or ["/" + summary["Id"][:12]])[0].lstrip("/")
        kind = ("code server" if name == settings.code_server_name
                else "sandbox" if SANDBOX_LABEL in (summary.get("Labels") or {}) else "run worker")
        removed.setdefault(kind, []).append(f"{name} ({summary.get('State') or 'created'})")
    return [f"removed {kind} container(s): {', '.join(names)}" for kind, names in removed.items()]


def _of_deployment(settings: DeploySettings, labels: dict[str, str], home: str) -> bool:
    """A sandbox of one of its runs (its run folder is under DAGSTER_HOME), or a spare its run workers left."""
    from nb_assets.sandbox.janitor import POOL_LABEL

    return labels.get("nb_assets.run_folder", "").startswith(home) or labels.get(POOL_LABEL) == settings.label


def _owner_namespace(labels: dict[str, str], name: str) -> str:
    """The pid namespace of the process a sandbox belongs to, "" when none does (an offered spare waits
    for any run worker until its claim-by) or a host process's: a run's starter, a spare's claimer or maker."""
    from nb_assets.sandbox.janitor import BOOT_PREFIX, CLAIMED_PREFIX, MAKER_LABEL, OWNER_LABEL, SPARE_LABEL, claimer_namespace

    if SPARE_LABEL not in labels:
        owner = labels.get(OWNER_LABEL, "")
    elif name.startswith(CLAIMED_PREFIX):  # only a pool's names carry the claimer's namespace; else its deadline
        return claimer_namespace(name)
    elif name.startswith(BOOT_PREFIX):
        owner = labels.get(MAKER_LABEL, "")
    else:
        return ""
    host = owner.partition(":")[0]
    return host.rpartition("+")[2] if "+" in host else ""


def _pid_namespace(pid: int) -> str:
    """The pid namespace's inode number of a host pid ("" if gone), as janitor.here() writes it."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid").partition("[")[2].rstrip("]") if pid else ""
    except OSError:
        return ""


def _finished_at(stamp: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds, as seconds; None for a container that never ran."""
    if not stamp or stamp.startswith("0001-"):
        return None
    main, _, fraction = stamp.rstrip("Z").partition(".")
    parsed = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return parsed.timestamp() + float(f"0.{fraction[:6] or 0}")


def main(argv: list[str]) -> int:
    from nb_assets.sandbox.image import docker_client

    settings = DeploySettings.load(Path(argv[0]))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    client = docker_client()
    while not stopping:
        try:
            for run_id in reap_once(settings, client):
                print(f"removed the run worker of run {run_id}; its logs are in {WORKER_LOGS}/{run_id}.log", flush=True)
            for sandbox in sweep_orphaned_sandboxes(settings, client):
                print(f"removed sandbox {sandbox[:12]}: its run worker is gone", flush=True)
        except Exception as exc:  # noqa: BLE001 - the engine restarting is no reason to stop reaping
            print(f"reaping failed this pass: {exc}", flush=True)
        deadline = time.monotonic() + min(POLL_S, max(settings.worker_retention_s, 1))
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
