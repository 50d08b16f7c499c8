"""A throwaway PostgreSQL cluster in a folder: `initdb`, `pg_ctl start`, `pg_ctl stop`.

For the test suite and the deployment recipe on one machine: Debian's server
binaries (the `postgresql` package), no service manager, nothing outside the
folder. Postgres refuses to run as root, so as root the cluster runs as the
`postgres` user the package creates, and the folder is handed to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_START_TIMEOUT_S = 60


class ClusterError(RuntimeError):
    """The cluster could not be created or started; the message says why."""


@dataclass(frozen=True)
class Cluster:
    folder: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = "postgres"

    def dsn(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        who = user or self.superuser
        if password:
            who = f"{who}:{password}"
        return f"postgresql://{who}@{self.host}:{self.port}/{database}"

    def stop(self) -> None:
        _as_owner([_binary("pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "fast", "-w"], self.folder)


def find_binaries() -> Path | None:
    """The newest installed server's bin folder, or None if no server is installed."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb") or "").resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def start_cluster(folder: Path, port: int | None = None, listen: str = "127.0.0.1") -> Cluster:
    """Create (if new) and start a cluster in `folder`; trust auth on `listen` only."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    port = port or free_port()
    if os.geteuid() == 0:
        _hand_over(folder)
    if not (data / "PG_VERSION").exists():
        _as_owner([_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync", "--locale=C"], folder)
    options = (f"-c listen_addresses={listen} -p {port} -k {folder} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    _as_owner([_binary("pg_ctl"), "start", "-D", str(data), "-l", str(folder / "server.log"), "-w",
               "-t", str(_START_TIMEOUT_S), "-o", options], folder)
    cluster = Cluster(folder, port, host=listen if listen not in ("*", "0.0.0.0") else "127.0.0.1")
    _wait_for(cluster)
    return cluster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    found = find_binaries()
    if found is None:
        raise ClusterError("no PostgreSQL server is installed (Debian: apt-get install postgresql)")
    return str(found / name)


def _hand_over(folder: Path) -> None:
    owner = pwd.getpwnam("postgres")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    # the server must reach its folder: every parent needs search permission for it
    for parent in folder.parents:
        if parent.stat().st_mode & 0o001 == 0:
            os.chmod(parent, parent.stat().st_mode | 0o001)


def _as_owner(argv: list[str], folder: Path) -> None:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        log = folder / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise ClusterError(f"{' '.join(argv[-6:])} failed: {done.stderr.strip() or done.stdout.strip()}\n{tail}")


def _wait_for(cluster: Cluster) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((cluster.host, cluster.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise ClusterError(f"the cluster in {cluster.folder} did not accept connections on port {cluster.port}")
