"""What the deployment recipe runs with: its settings, dagster.yaml and workspace.yaml.

One folder (the state folder, `.deploy/` by default) holds everything a
deployment keeps: the Postgres cluster (Dagster's storage and the warehouse, two
databases), DAGSTER_HOME with the records, the logs. DAGSTER_HOME is mounted
into every run worker at the same path, so a record a run worker writes is
where the webserver (a host process) and `nb-assets runs` read it: configured
once, by where DAGSTER_HOME is.

Every container of the deployment uses host networking: run workers and the
code server reach Postgres and each other on 127.0.0.1, Postgres listens on
loopback only, and nothing is published. The sandbox containers a run worker
starts do not inherit it: each is made with `network_mode: none`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEPLOY_LABEL = "nb_assets.deploy"  # on the code server and every run worker: whose deployment it is
LOCATION = "nb_assets_project"
PROJECT_IN_IMAGE = Path("/opt/project")
DAGSTER_DB, WAREHOUSE_DB = "dagster", "warehouse"
DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass
class DeploySettings:
    """Where and how a deployment runs; saved in the state folder as deploy.json."""

    state_dir: Path
    webserver_port: int = 3000
    code_server_port: int = 4266
    postgres_port: int = 5433
    max_concurrent_runs: int = 2  # notebook runs at once; each is a run worker plus a sandbox container
    code_image: str = ""
    sensor_interval_s: int = 15
    warehouse: str = ""  # empty: the deployment's own Postgres database `warehouse`
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster_home"

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def label(self) -> str:
        return str(self.state_dir)

    @property
    def code_server_name(self) -> str:
        return f"nb-assets-code-server-{hashlib.sha256(self.label.encode()).hexdigest()[:10]}"

    def postgres_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.postgres_port}/{database}"

    def warehouse_location(self) -> str:
        return self.warehouse or self.postgres_url(WAREHOUSE_DB)

    def warehouse_folder(self) -> Path | None:
        """The folder of a DuckDB warehouse file (mounted where it is), or None for a server."""
        location = self.warehouse_location()
        return None if "://" in location else Path(location).resolve().parent

    def project_env(self) -> dict[str, str]:
        """What definitions.py reads, the same in the code server and every run worker."""
        return {
            "NB_ASSETS_WAREHOUSE": self.warehouse_location(),
            "NB_ASSETS_SANDBOX": "docker",  # no engine or image is an error, never a silent LocalSandbox
            # A run worker lives for one run: a spare made after it would die with its container.
            "NB_ASSETS_DOCKER_SPARES": "0",
            "NB_ASSETS_SENSOR_INTERVAL_S": str(self.sensor_interval_s),
            "NB_ASSETS_UI_URL": f"http://localhost:{self.webserver_port}",
        }

    def mounts(self) -> dict[str, dict[str, str]]:
        """Host folders a container sees at the same path: DAGSTER_HOME (records, compute logs),
        a DuckDB warehouse's folder if that is the warehouse, and the engine's socket."""
        volumes = {str(self.dagster_home): {"bind": str(self.dagster_home), "mode": "rw"}}
        folder = self.warehouse_folder()
        if folder is not None:
            volumes[str(folder)] = {"bind": str(folder), "mode": "rw"}
        socket = docker_socket()
        if socket:
            volumes[socket] = {"bind": DOCKER_SOCKET, "mode": "rw"}
        return volumes

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {**asdict(self), "state_dir": str(self.state_dir)}
        (self.state_dir / "deploy.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> DeploySettings:
        data = json.loads((state_dir / "deploy.json").read_text())
        data["state_dir"] = Path(data["state_dir"])
        return cls(**data)


def docker_socket() -> str | None:
    """The engine's unix socket on this host (DOCKER_HOST=unix://... or the default), if it is one."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return DOCKER_SOCKET if not host else None


def dagster_yaml(settings: DeploySettings) -> str:
    """Postgres storage, the queued coordinator and the Docker run launcher."""
    env_vars = [f"{k}={v}" for k, v in settings.project_env().items()]
    if os.environ.get("DOCKER_HOST") and not docker_socket():
        env_vars.append(f"DOCKER_HOST={os.environ['DOCKER_HOST']}")  # a TCP engine: reached over host networking
    config: dict[str, Any] = {
        "telemetry": {"enabled": False},
        # The driver named: SQLAlchemy 2.1 takes a bare postgresql:// to mean psycopg 3, with
        # which dagster-postgres's queries fail (and the code image has psycopg2 only).
        "storage": {"postgres": {"postgres_url": settings.postgres_url(DAGSTER_DB).replace("postgresql://", "postgresql+psycopg2://", 1)}},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                # Every run of this code location runs notebooks: the run limit is the notebook limit.
                "max_concurrent_runs": settings.max_concurrent_runs,
                "dequeue_interval_seconds": 1,
            },
        },
        "run_launcher": {
            "module": "dagster_docker",
            "class": "DockerRunLauncher",
            "config": {
                "image": settings.code_image,
                "network": "host",
                "env_vars": env_vars,
                "container_kwargs": {
                    "volumes": settings.mounts(),
                    "labels": {DEPLOY_LABEL: settings.label},
                },
            },
        },
        "run_monitoring": {
            "enabled": True,
            "poll_interval_seconds": 5,
            "start_timeout_seconds": 180,
            # A run worker that died is a failed run, never a second run of the same notebook.
            "max_resume_run_attempts": 0,
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def workspace_yaml(settings: DeploySettings) -> str:
    """The webserver and the daemon load the project from the code server, never themselves."""
    entry = {"grpc_server": {"host": "127.0.0.1", "port": settings.code_server_port, "location_name": LOCATION}}
    return yaml.safe_dump({"load_from": [entry]}, sort_keys=False)
