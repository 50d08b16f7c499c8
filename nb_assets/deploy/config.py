"""What the deployment recipe runs with: its settings, dagster.yaml and workspace.yaml.

One folder (the state folder, `.deploy/` by default) holds everything a
deployment keeps: the Postgres cluster (Dagster's storage and the warehouse, two
databases), DAGSTER_HOME with the records, the logs. DAGSTER_HOME is mounted
into every run worker at the same path, so a record a run worker writes is
where the webserver (a host process) and `nb-assets runs` read it: configured
once, by where DAGSTER_HOME is.

Passwords live in `secrets.json` beside deploy.json (deploy/secrets.py, mode 0600)
and reach the processes and containers as environment variables: dagster.yaml
names them (Dagster's `env:` form and the run launcher's bare `env_vars` names,
whose values the daemon passes on from its own environment), deploy.json keeps
URLs without them.

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
from urllib.parse import unquote, urlsplit

import yaml

from nb_assets.deploy.project_layout import ProjectLayout
from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, split_password, with_password
from nb_assets.errors import DeclarationError
from nb_assets.locations import is_postgres_url, with_user

DEPLOY_LABEL = "nb_assets.deploy"  # on the code server and every run worker: whose deployment it is
LOCATION = "nb_assets_project"
PROJECT_IN_IMAGE = Path("/opt/project")
DAGSTER_DB, WAREHOUSE_DB = "dagster", "warehouse"
# The logins of the deployment's own cluster (warehouse/postgres/roles.py); `postgres` is its superuser.
DAGSTER_LOGIN, OWNER_LOGIN, READER_LOGIN = "dagster", "nb_assets_owner", "nb_assets_reader"
LANDING_IN_IMAGE = str(PROJECT_IN_IMAGE / "landing")  # where the demo's FileDrop folders are, below definitions.py
# Declared file and folder sources (`Source(path="sources/...")`, relative to definitions.py): read by run
# workers when they fetch, and by the code server's source sensor; not in the code image (data, not code).
SOURCES_IN_IMAGE = str(PROJECT_IN_IMAGE / "sources")
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
    warehouse: str = ""  # empty: the deployment's own Postgres database `warehouse`; never with a password
    storage: str = ""  # empty: the deployment's own Postgres database `dagster`; never with a password
    landing: str = ""  # the host folder of file drops (empty: state_dir/landing), mounted at landing_mount
    landing_mount: str = LANDING_IN_IMAGE
    sources: str = ""  # the host folder of declared file/folder sources (empty: none), mounted read-only at sources_mount
    sources_mount: str = SOURCES_IN_IMAGE
    worker_retention_s: int = 300  # a finished run worker's container is kept this long, then its logs saved and it removed
    smtp: str = ""  # HOST:PORT of the SMTP server notices go to (as seen from the host network)
    secret_envs: list[str] = field(default_factory=list)  # variables passed to the project; values in secrets.json
    reader_schemas: list[str] = field(default_factory=list)  # the schemas the reader may SELECT from
    code_target: list[str] = field(default_factory=list)  # what the code server loads (code_target()); empty: definitions.py
    dagster_version: str = ""  # the Dagster that last ran this state folder: a change means migrating its storage
    warm_spares: bool = True  # a spare per run slot for the next run worker (False: each run's sandbox made cold)
    python_trees: dict[str, str] = field(default_factory=dict)  # the code image's Python trees: volume -> path (read-only)
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

    @property
    def landing_dir(self) -> Path:
        return Path(self.landing) if self.landing else self.state_dir / "landing"

    @property
    def own_storage(self) -> bool:
        return not self.storage

    @property
    def own_warehouse(self) -> bool:
        return not self.warehouse

    def postgres_url(self, database: str, login: str = "postgres") -> str:
        """A URL of the deployment's own cluster, without a password (see `with_password`)."""
        return f"postgresql://{login}@127.0.0.1:{self.postgres_port}/{database}"

    def warehouse_location(self) -> str:
        """Where the warehouse is, as said in messages and deploy.json: no password."""
        return self.warehouse or self.postgres_url(WAREHOUSE_DB, OWNER_LOGIN)

    def storage_location(self) -> str:
        """Where Dagster's storage is, without a password."""
        return self.storage or self.postgres_url(DAGSTER_DB, DAGSTER_LOGIN)

    def admin_url(self, secrets: dict[str, str]) -> str:
        """The own cluster's superuser, password included: for `deploy up` and `deploy backup` only."""
        return with_password(self.postgres_url("postgres"), secrets["postgres"])

    def warehouse_url(self, secrets: dict[str, str]) -> str:
        """The warehouse owner's URL with its password: handed to processes in their environment only."""
        if self.own_warehouse:
            return with_password(self.warehouse_location(), secrets.get("warehouse"))
        return with_password(self.warehouse, secrets.get("warehouse_url"))

    def reader_url(self, secrets: dict[str, str]) -> str | None:
        """The prefetch login's URL with its password: the own warehouse's reader, or the one `deploy up`
        makes for an existing Postgres warehouse's database (`external_reader`); None for a DuckDB file."""
        if self.own_warehouse:
            return with_password(self.postgres_url(WAREHOUSE_DB, READER_LOGIN), secrets.get("reader"))
        login = self.external_reader()
        if login is None:
            return None
        return with_user(self.warehouse, login, secrets.get("reader"))

    def external_reader(self) -> str | None:
        """The reader's login on an existing Postgres warehouse: one per warehouse database (roles.py)."""
        if self.own_warehouse or not is_postgres_url(self.warehouse):
            return None
        from nb_assets.warehouse.backends import warehouse_reader_login

        return warehouse_reader_login(unquote(urlsplit(self.warehouse).path.lstrip("/")))

    def storage_password(self, secrets: dict[str, str]) -> str:
        return secrets["dagster"] if self.own_storage else secrets.get("storage_url", "")

    def take_passwords(self, secrets: dict[str, str]) -> None:
        """Move the passwords of user-given URLs (--storage, --warehouse) into `secrets`, out of the settings."""
        for attribute, key in (("storage", "storage_url"), ("warehouse", "warehouse_url")):
            bare, password = split_password(getattr(self, attribute))
            setattr(self, attribute, bare)
            if password:
                secrets[key] = password

    def warehouse_folder(self) -> Path | None:
        """The folder of a DuckDB warehouse file (mounted where it is), or None for a server."""
        location = self.warehouse_location()
        return None if "://" in location else Path(location).resolve().parent

    def project_env(self, secrets: dict[str, str]) -> dict[str, str]:
        """What definitions.py reads, the same in the code server and every run worker (passwords
        included: this goes into environments, never into a file but secrets.json)."""
        env = {
            "NB_ASSETS_WAREHOUSE": self.warehouse_url(secrets),
            "NB_ASSETS_SANDBOX": "docker",  # no engine or image is an error, never a silent LocalSandbox
            "NB_ASSETS_SENSOR_INTERVAL_S": str(self.sensor_interval_s),
            "NB_ASSETS_UI_URL": f"http://localhost:{self.webserver_port}",
        }
        if self.warm_spares:
            # A run worker lives for one run, in a container of its own: the spare it leaves is for the
            # deployment's next run worker, one per run slot, claimed through a folder they all see.
            env["NB_ASSETS_SPARE_POOL"] = self.label
            env["NB_ASSETS_SPARES_PER_SETTINGS"] = str(self.max_concurrent_runs)
            env["NB_ASSETS_SPARE_CLAIMS"] = str(self.dagster_home / "spare-claims")
        else:
            env["NB_ASSETS_DOCKER_SPARES"] = "0"
        reader = self.reader_url(secrets)
        if reader:
            env["NB_ASSETS_READ_DSN"] = reader
        if self.smtp:
            host, _, port = self.smtp.rpartition(":")
            env["NB_ASSETS_SMTP_HOST"], env["NB_ASSETS_SMTP_PORT"] = host, port
        for name in self.secret_envs:
            env[name] = secrets.get(f"env:{name}", "")
        return env

    def mounts(self) -> dict[str, dict[str, str]]:
        """Host folders a container sees: DAGSTER_HOME (records, compute logs) at the same path,
        the landing folder at `landing_mount` (file drops: the code server's sensor reads it and a
        run worker moves loaded files), the declared sources' folder at `sources_mount` (read-only),
        a DuckDB warehouse's folder if that is the warehouse, and the engine's socket."""
        volumes = {str(self.dagster_home): {"bind": str(self.dagster_home), "mode": "rw"},
                   str(self.landing_dir): {"bind": self.landing_mount, "mode": "rw"}}
        if self.sources:  # read-only: a fetch reads, it never moves or marks a source's files
            volumes[str(Path(self.sources).resolve())] = {"bind": self.sources_mount, "mode": "ro"}
        folder = self.warehouse_folder()
        if folder is not None:
            volumes[str(folder)] = {"bind": str(folder), "mode": "rw"}
        for volume, path in self.python_trees.items():  # off fuse-overlayfs: each run worker imports Dagster afresh
            volumes[volume] = {"bind": path, "mode": "ro"}
        socket = docker_socket()
        if socket:
            volumes[socket] = {"bind": DOCKER_SOCKET, "mode": "rw"}
        return volumes

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = {**asdict(self), "state_dir": str(self.state_dir)}
        for attribute in ("storage", "warehouse"):  # a password given in a URL lives in secrets.json only
            data[attribute] = split_password(data[attribute])[0]
        (self.state_dir / "deploy.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> DeploySettings:
        data = json.loads((state_dir / "deploy.json").read_text())
        data["state_dir"] = Path(data["state_dir"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})  # a newer or older deploy.json


def sources_folder(folder: str | Path) -> str:
    """The host folder `deploy up --sources DIR` names, absolute (relative to the current folder);
    refused unless it is a folder, since the engine would mount an empty one made in its place."""
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise DeclarationError(
            f"--sources {folder}: {path} {what}; give the folder that holds the project's declared file sources "
            f"(mounted read-only at {SOURCES_IN_IMAGE}), or leave --sources out to mount the project's own sources/"
        )
    return str(path)


def project_sources(project_dir: Path) -> str:
    """The project's own folder of declared sources (`sources/` beside definitions.py), if it has one."""
    folder = project_dir.resolve() / "sources"
    return str(folder) if folder.is_dir() else ""


def default_code_target() -> list[str]:
    """`dagster code-server start`'s code pointer for a definitions.py project, in the image."""
    return ["-f", str(PROJECT_IN_IMAGE / "definitions.py"), "-d", str(PROJECT_IN_IMAGE)]


def code_target(layout: ProjectLayout) -> list[str]:
    """The code pointer for the project as the image holds it (at PROJECT_IN_IMAGE): a dg project's module,
    imported from its src/ (or root) folder. The run launcher hands run workers the code server's pointer,
    working directory included, so they import the same module the same way."""
    if not layout.is_dg or layout.module is None or layout.package_base is None:
        return default_code_target()
    base = PROJECT_IN_IMAGE / layout.package_base.relative_to(layout.root)
    return ["-m", layout.module, "-d", str(base)]


def docker_socket() -> str | None:
    """The engine's unix socket on this host (DOCKER_HOST=unix://... or the default), if it is one."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return DOCKER_SOCKET if not host else None


def storage_config(settings: DeploySettings) -> dict[str, Any]:
    """dagster-postgres's `postgres_db` form: the password named by variable, never written here."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(settings.storage_location())
    config: dict[str, Any] = {
        "username": unquote(parts.username or "postgres"),
        "password": {"env": DAGSTER_PASSWORD_ENV},
        "hostname": parts.hostname or "127.0.0.1",
        "db_name": parts.path.lstrip("/") or DAGSTER_DB,
        "port": parts.port or 5432,
        # The driver named: SQLAlchemy 2.1 takes a bare postgresql:// to mean psycopg 3, with
        # which dagster-postgres's queries fail (and the code image has psycopg2 only).
        "scheme": "postgresql+psycopg2",
    }
    if parts.query:
        from urllib.parse import parse_qsl

        config["params"] = dict(parse_qsl(parts.query))
    return config


def dagster_yaml(settings: DeploySettings) -> str:
    """Postgres storage, the queued coordinator and the Docker run launcher; names of variables, no secret."""
    # Bare names: the launcher copies each value from the daemon's environment into the run worker's.
    env_vars = sorted({*settings.project_env({}).keys(), "NB_ASSETS_WAREHOUSE", DAGSTER_PASSWORD_ENV})
    if os.environ.get("DOCKER_HOST") and not docker_socket():
        env_vars.append("DOCKER_HOST")  # a TCP engine: reached over host networking
    config: dict[str, Any] = {
        "telemetry": {"enabled": False},
        "storage": {"postgres": {"postgres_db": storage_config(settings)}},
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


def dagster_version() -> str:
    """The Dagster installed here (read from its metadata: this package never imports Dagster)."""
    from importlib import metadata

    return metadata.version("dagster")


def workspace_yaml(settings: DeploySettings) -> str:
    """The webserver and the daemon load the project from the code server, never themselves."""
    entry = {"grpc_server": {"host": "127.0.0.1", "port": settings.code_server_port, "location_name": LOCATION}}
    return yaml.safe_dump({"load_from": [entry]}, sort_keys=False)
