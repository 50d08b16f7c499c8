"""Start and stop the deployment recipe: Dagster as it runs in production, on one machine.

    nb-assets deploy up    (make deploy)       nb-assets deploy down  (make deploy-stop)

What runs where (every container with host networking, see deploy/config.py):
  PostgreSQL          a cluster in the state folder (deploy/pg_cluster.py), host process:
                      database `dagster` (runs, events, schedules) and `warehouse`
  code server         a container of the code image: `dagster code-server start`
                      on the project baked into it (`-f definitions.py`, or a dg
                      project's `-m <module>`, config.code_target); it names the code
                      image, so the run launcher starts run workers from the same
                      image, and they load the same code pointer
  dagster-webserver   host process, loads the project from the code server
  dagster-daemon      host process: the queue (QueuedRunCoordinator), sensors,
                      schedules, run monitoring
  run workers         one container per run (DockerRunLauncher), each starting
                      its notebook's sandbox container as a sibling through the
                      engine socket and copying the run folder in and out
  reaper              host process (deploy/reaper.py): saves a finished run worker's
                      logs beside its run's records and removes its container
`up` returns once the webserver serves the loaded code location; the processes
keep running. `down` stops them in the reverse order and keeps the state
folder (runs, records, databases) unless `purge`.

The own cluster is durable and every login proves a password (deploy/pg_cluster.py,
warehouse/postgres/roles.py); the passwords are in the state folder's secrets.json
(deploy/secrets.py) and reach the processes through their environment only.
`--storage` / `--warehouse` use existing servers instead. `up` on a state folder
that an older Dagster ran migrates its storage first (`dagster instance migrate`)
and says so.
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
from collections.abc import Callable
from pathlib import Path

from nb_assets.deploy.config import (
    DAGSTER_DB,
    DAGSTER_LOGIN,
    DEPLOY_LABEL,
    LOCATION,
    OWNER_LOGIN,
    READER_LOGIN,
    WAREHOUSE_DB,
    DeploySettings,
    dagster_version,
    dagster_yaml,
    workspace_yaml,
)
from nb_assets.deploy.config import code_target, default_code_target, project_sources
from nb_assets.deploy.project_layout import project_layout
from nb_assets.deploy.reaper import remove_deployment_containers
from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, load_secrets, save_secrets
from nb_assets.errors import NbAssetsError
from nb_assets.locations import redact
from nb_assets.warehouse.backends import provision_deployment, provision_warehouse_reader
from nb_assets.deploy.webserver_client import LOCATIONS, graphql, wait_until_serving

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 300.0  # the code server imports the project and reads the warehouse on a loaded 2-core machine
STOP_TIMEOUT_S = 60.0


class DeployError(NbAssetsError):
    """The deployment could not start or stop; the message says which piece and why."""


def up(settings: DeploySettings, project_dir: Path, seed: Path | None = None, *, restore: Path | None = None,
       unsafe_fast: bool = False, say: Callable[[str], None] | None = None) -> DeploySettings:
    """Build the code image if needed, then start Postgres, the code server, the daemon, the webserver
    and the reaper. `restore`: a `deploy backup` folder loaded into a new state folder first.
    `unsafe_fast`: the own cluster without fsync (the test suite's choice, never the CLI's)."""
    from nb_assets.deploy.code_image import build_code_image, python_trees

    say = say or (lambda line: print(f"[nb_assets.deploy] {line}", file=sys.stderr, flush=True))
    if is_running(settings.state_dir):
        raise DeployError(f"a deployment already runs from {settings.state_dir}: stop it first (make deploy-stop)")
    previous = DeploySettings.load(settings.state_dir) if (settings.state_dir / "deploy.json").exists() else None
    if restore is not None and previous is not None:
        raise DeployError(f"--restore loads a backup into a new deployment, but {settings.state_dir} holds one already")
    remove_deployment_containers(settings)  # a code server left by a deployment that was never stopped
    busy = busy_ports(settings)
    if busy:  # said before the image build and anything started, not after a minute of waiting
        raise DeployError(
            f"in use on 127.0.0.1: port {', '.join(busy)}; stop what listens there, or choose other ports "
            "(nb-assets deploy up --port N --code-server-port N --postgres-port N)"
        )
    secrets = load_secrets(settings.state_dir)
    settings.take_passwords(secrets)
    _take_secret_envs(settings, secrets)
    save_secrets(settings.state_dir, secrets)
    layout = project_layout(project_dir)  # a bad dg config is said before the image build
    settings.code_image = build_code_image(project_dir)
    settings.python_trees = python_trees(settings.code_image)
    settings.code_target = code_target(layout)
    for folder in (settings.dagster_home, settings.logs_dir, settings.landing_dir):
        folder.mkdir(parents=True, exist_ok=True)
    settings.reader_schemas = settings.reader_schemas or reader_schemas(project_dir)
    settings.sources = settings.sources or project_sources(project_dir)  # mounted for the fetches (config.mounts)
    settings.dagster_version = previous.dagster_version if previous else ""
    settings.save()
    try:
        if settings.own_storage or settings.own_warehouse:
            _start_own_cluster(settings, secrets, unsafe_fast)
        reader = settings.external_reader()
        if reader:  # an existing warehouse: its own reader of that database, never a cluster-wide one
            provision_warehouse_reader(settings.warehouse_url(secrets), (reader, secrets["reader"]), settings.reader_schemas)
        if restore is not None:
            from nb_assets.deploy.backup import restore_backup

            say(restore_backup(settings, secrets, restore))
            if settings.own_storage or settings.own_warehouse:  # the restored objects: owned and granted as here
                _start_own_cluster(settings, secrets, unsafe_fast, started=True)
        seeded = settings.state_dir / ".warehouse-seeded"
        if seed is not None and not seeded.exists() and restore is None:
            _run([sys.executable, str(seed)], "seeding the warehouse",
                 env={**os.environ, "NB_ASSETS_WAREHOUSE": settings.warehouse_url(secrets)})
            seeded.touch()
        (settings.dagster_home / "dagster.yaml").write_text(dagster_yaml(settings))
        (settings.dagster_home / "workspace.yaml").write_text(workspace_yaml(settings))
        migrated = migrate_if_needed(settings, secrets, restored=restore is not None)
        if migrated:
            say(migrated)
        _start_code_server(settings, secrets)
        start_daemon(settings)
        settings.pids["webserver"] = _spawn(settings, "webserver", [
            str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(settings.webserver_port)])
        settings.pids["reaper"] = _spawn(settings, "reaper", [
            sys.executable, "-m", "nb_assets.deploy.reaper", str(settings.state_dir)], workspace=False)
        settings.save()
        _wait_for_location(settings)
    except BaseException:
        down(settings.state_dir)
        raise
    return settings


def _start_own_cluster(settings: DeploySettings, secrets: dict[str, str], unsafe_fast: bool, *,
                       started: bool = False) -> None:
    """The state folder's cluster: durable, scram-sha-256 everywhere, the logins and grants of roles.py."""
    from nb_assets.deploy.pg_cluster import start_cluster

    if not started:
        start_cluster(settings.postgres_dir, settings.postgres_port, listen="127.0.0.1",
                      superuser_password=secrets["postgres"], unsafe_fast=unsafe_fast)
    provision_deployment(
        settings.admin_url(secrets),
        storage=(DAGSTER_DB, DAGSTER_LOGIN, secrets["dagster"]),
        warehouse=(WAREHOUSE_DB, OWNER_LOGIN, secrets["warehouse"]),
        reader=(READER_LOGIN, secrets["reader"]),
        reader_schemas=settings.reader_schemas,
    )


def _take_secret_envs(settings: DeploySettings, secrets: dict[str, str]) -> None:
    """Each `--secret-env NAME`'s value, from this environment now or kept from an earlier `up`."""
    for name in settings.secret_envs:
        if name in os.environ:
            secrets[f"env:{name}"] = os.environ[name]
        elif f"env:{name}" not in secrets:
            raise DeployError(f"--secret-env {name}: the variable is not set here, and no earlier `deploy up` kept it")


def reader_schemas(project_dir: Path) -> list[str]:
    """The schemas the project's notebooks read (their SQL inputs' tables), for the reader's grants:
    the notebooks below notebooks/, or below a dg project's package (beside their defs.yaml)."""
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.sources.model import is_relation

    schemas = set()
    for path in project_layout(project_dir).notebooks():
        for table in parse_notebook(path, dialect="postgres").input_tables:
            if is_relation(table):  # a declared source (source.x): fetched by the host, not read from the warehouse
                continue
            schemas.add(table.rpartition(".")[0] or "main")
    return sorted(schemas)


def migrate_if_needed(settings: DeploySettings, secrets: dict[str, str], *, restored: bool = False) -> str | None:
    """`dagster instance migrate` when another Dagster ran this state folder (or wrote the restored
    backup) than the one here; what it did, for `up` to say. A new state folder needs none."""
    now = dagster_version()
    before = settings.dagster_version
    settings.dagster_version = now
    settings.save()
    if not before or before == now:
        return None
    _run([str(BIN / "dagster"), "instance", "migrate"], "migrating Dagster's storage",
         env=host_env(settings, secrets), cwd=settings.dagster_home)
    where = "restored " if restored else ""
    return f"migrated Dagster's {where}storage ({redact(settings.storage_location())}) from Dagster {before} to {now}"


def busy_ports(settings: DeploySettings) -> list[str]:
    """This deployment's ports that another process listens on, each with the option that moves it."""
    wanted = {"--port": settings.webserver_port, "--code-server-port": settings.code_server_port,
              "--postgres-port": settings.postgres_port}
    busy = []
    for option, port in wanted.items():
        with socket.socket() as probe:
            # As the servers bind: a port a stopped deployment left in TIME_WAIT is free to them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{port} ({option})")
    return busy


def down(state_dir: Path, *, purge: bool = False) -> list[str]:
    """Stop the daemon (no new launches), the webserver, the code server, the run workers still
    running, then Postgres. With `purge`, remove the state folder too. Says what it did, one line
    per piece; nothing when nothing ran."""
    done: list[str] = []
    if (state_dir / "deploy.json").exists():  # else nothing was started from it
        settings = DeploySettings.load(state_dir)
        for name in ("daemon", "webserver", "reaper"):
            pid = settings.pids.pop(name, None)
            if _stop_process(pid):
                done.append(f"stopped {'dagster-' if name != 'reaper' else 'the run-worker '}{name} (pid {pid})")
        settings.save()
        done += remove_deployment_containers(settings)
        if _stop_cluster(settings):
            done.append(f"stopped PostgreSQL on 127.0.0.1:{settings.postgres_port} (data kept in {settings.postgres_dir})")
    if purge and state_dir.exists():
        shutil.rmtree(state_dir, ignore_errors=True)
        done.append(f"removed {state_dir} (runs, records, both databases)")
    return done


def start_daemon(settings: DeploySettings) -> int:
    """Start dagster-daemon (the queue, sensors, schedules, run monitoring); its pid."""
    settings.pids["daemon"] = _spawn(settings, "daemon", [str(BIN / "dagster-daemon"), "run"])
    settings.save()
    return settings.pids["daemon"]


def stop_daemon(settings: DeploySettings) -> None:
    """Stop dagster-daemon: queued runs stay queued in Postgres, run workers keep running."""
    _stop_process(settings.pids.pop("daemon", None))
    settings.save()


def is_running(state_dir: Path) -> bool:
    """True while a process this state folder started is alive."""
    if not (state_dir / "deploy.json").exists():
        return False
    return any(_alive(pid) for pid in DeploySettings.load(state_dir).pids.values())


def host_env(settings: DeploySettings, secrets: dict[str, str] | None = None) -> dict[str, str]:
    """The webserver's and daemon's environment: the deployment's DAGSTER_HOME, the storage's password
    (dagster.yaml names it), and what the run launcher passes on to each run worker by name."""
    secrets = secrets if secrets is not None else load_secrets(settings.state_dir)
    return {**os.environ, **settings.project_env(secrets), "DAGSTER_HOME": str(settings.dagster_home),
            DAGSTER_PASSWORD_ENV: settings.storage_password(secrets)}


def _start_code_server(settings: DeploySettings, secrets: dict[str, str]) -> None:
    from nb_assets.sandbox.image import docker_client

    client = docker_client()
    client.containers.run(
        settings.code_image,
        ["dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(settings.code_server_port),
         *(settings.code_target or default_code_target()),
         "--location-name", LOCATION, "--container-image", settings.code_image],
        # Its working directory is DAGSTER_HOME: the UI's "View Notebook" reads a record through the
        # code server, which serves notebooks from below its working directory only.
        working_dir=str(settings.dagster_home),
        name=settings.code_server_name, detach=True, network="host",
        # The storage's password too: sensors it evaluates read the instance (run status, landings).
        environment={**settings.project_env(secrets), DAGSTER_PASSWORD_ENV: settings.storage_password(secrets)},
        volumes=settings.mounts(), labels={DEPLOY_LABEL: settings.label},
    )
    health = [str(BIN / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(settings.code_server_port)]
    deadline = time.monotonic() + START_TIMEOUT_S
    while subprocess.run(health, capture_output=True).returncode != 0:
        container = client.containers.get(settings.code_server_name)
        if container.status == "exited" or time.monotonic() > deadline:
            logs = container.logs(tail=40).decode(errors="replace")
            raise DeployError(f"the code server did not start ({container.status}):\n{logs}")
        time.sleep(1)


def _spawn(settings: DeploySettings, name: str, argv: list[str], *, workspace: bool = True) -> int:
    with (settings.logs_dir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            [*argv, "-w", str(settings.dagster_home / "workspace.yaml")] if workspace else argv,
            cwd=settings.dagster_home, env=host_env(settings), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,  # outlives `deploy up`; stopped as a group
        )
    return process.pid


def _wait_for_location(settings: DeploySettings) -> None:
    url = f"http://127.0.0.1:{settings.webserver_port}"
    log = settings.logs_dir / "webserver.log"
    tail = lambda: "\n".join(log.read_text(errors="replace").splitlines()[-30:])  # noqa: E731
    wait_until_serving(url, lambda: _alive(settings.pids["webserver"]), START_TIMEOUT_S, tail)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        entries = graphql(url, LOCATIONS)["workspaceOrError"].get("locationEntries") or []
        loaded = [e for e in entries if e["name"] == LOCATION and e["loadStatus"] == "LOADED"]
        if loaded:
            problem = loaded[0]["locationOrLoadError"]
            if problem and problem["__typename"] == "PythonError":
                raise DeployError(f"the project did not load in the code server: {problem['message']}")
            return
        time.sleep(1)
    raise DeployError(f"the webserver did not load {LOCATION} in {START_TIMEOUT_S:.0f} s:\n{tail()}")


def _stop_cluster(settings: DeploySettings) -> bool:
    """Stop the deployment's Postgres; False if it was not running."""
    from nb_assets.deploy.pg_cluster import Cluster, ClusterError

    pid_file = settings.postgres_dir / "data" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        Cluster(settings.postgres_dir, settings.postgres_port).stop()
    except ClusterError as exc:  # e.g. pg_ctl, run as postgres, can no longer reach the folder
        print(f"[nb_assets.deploy] {str(exc)[:300]}; stopping the server by its pid", file=sys.stderr)
        pid = int(pid_file.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # what pg_ctl -m fast sends
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    return True


def _stop_process(pid: int | None) -> bool:
    """SIGTERM the process group this recipe started, SIGKILL after STOP_TIMEOUT_S; False if it was not running."""
    if pid is None or not _alive(pid):
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    """A live dagster process (not a zombie, not a recycled pid running something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z" and (b"dagster" in cmdline or b"nb_assets.deploy" in cmdline)


def _run(argv: list[str], what: str, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode != 0:
        # A driver's message can quote the URL it was given: said without its password.
        raise DeployError(f"{what} failed: {scrub(done.stderr.strip()[-2000:], env)}")


def scrub(text: str, env: dict[str, str] | None) -> str:
    """`text` with every URL's password and every secret value of `env` replaced by ***."""
    text = redact(text)
    for key, value in (env or {}).items():
        if value and len(value) >= 8 and (key.endswith("PASSWORD") or "://" in value):
            text = text.replace(value, redact(value) if "://" in value else "***")
    return text
