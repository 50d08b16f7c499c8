"""A PostgreSQL cluster in a folder: `initdb`, `pg_ctl start`, `pg_ctl stop`.

For the deployment recipe and the test suite on one machine: Debian's server
binaries (the `postgresql` package), no service manager, nothing outside the
folder. Postgres refuses to run as root, so as root the cluster runs as the
`postgres` user the package creates, and the folder is handed to it.

Durable by default: fsync, full-page writes and synchronous commit stay at
Postgres's defaults, so a host crash loses no committed transaction and
corrupts no page. Only the test suite asks for `unsafe_fast=True` (a cluster
thrown away at the end of the session, where a crash costs nothing).

With a `superuser_password` every connection, TCP and the unix socket alike,
authenticates with scram-sha-256; without one (the test suite's cluster) the
server trusts loopback. The password reaches `initdb` through a file of mode
0600 that is removed at once, never an argument or a log line.
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


# What the test suite's throwaway cluster trades for speed; never a deployment's default.
UNSAFE_FAST_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
# Every connection (unix socket and loopback TCP) proves its password; nothing is trusted.
SCRAM_HBA = """# Written by nb_assets.deploy.pg_cluster: every connection proves a password (scram-sha-256).
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def start_cluster(
    folder: Path,
    port: int | None = None,
    listen: str = "127.0.0.1",
    *,
    superuser_password: str | None = None,
    unsafe_fast: bool = False,
) -> Cluster:
    """Create (if new) and start a cluster in `folder`, listening on `listen` only.

    Durable unless `unsafe_fast` (the test suite's explicit choice). With `superuser_password`,
    scram-sha-256 on every connection; without, trust (the test suite's cluster only)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    port = port or free_port()
    if os.geteuid() == 0:
        _hand_over(folder)
    if not (data / "PG_VERSION").exists():
        _initdb(folder, data, superuser_password, unsafe_fast)
    options = f"-c listen_addresses={listen} -p {port} -k {folder}"
    if superuser_password is not None:
        options += " -c password_encryption=scram-sha-256"
        hba = data / "pg_hba.conf"
        if hba.read_text() != SCRAM_HBA:  # a cluster an older version made with trust: give postgres its password
            _set_superuser_password(folder, data, port, options, superuser_password)
            _write_owned(hba, SCRAM_HBA, folder)
    if unsafe_fast:
        options += " " + UNSAFE_FAST_OPTIONS
    _as_owner([_binary("pg_ctl"), "start", "-D", str(data), "-l", str(folder / "server.log"), "-w",
               "-t", str(_START_TIMEOUT_S), "-o", options], folder)
    cluster = Cluster(folder, port, host=listen if listen not in ("*", "0.0.0.0") else "127.0.0.1")
    _wait_for(cluster)
    return cluster


def _initdb(folder: Path, data: Path, superuser_password: str | None, unsafe_fast: bool) -> None:
    argv = [_binary("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C"]
    if unsafe_fast:
        argv.append("--no-sync")  # a durable cluster's first files reach the disk too
    if superuser_password is None:
        _as_owner([*argv, "--auth=trust"], folder)
        return
    pwfile = folder / ".initdb-pw"
    _write_owned(pwfile, superuser_password + "\n", folder)
    try:
        _as_owner([*argv, "--auth=scram-sha-256", f"--pwfile={pwfile}"], folder)
    finally:
        pwfile.unlink(missing_ok=True)
    _write_owned(data / "pg_hba.conf", SCRAM_HBA, folder)  # loopback TCP and the socket only


def _set_superuser_password(folder: Path, data: Path, port: int, options: str, password: str) -> None:
    """Start the cluster as it was (unix socket only), store the superuser's scram verifier, stop it."""
    quiet = f"-c listen_addresses= -p {port} -k {folder}"
    _as_owner([_binary("pg_ctl"), "start", "-D", str(data), "-l", str(folder / "server.log"), "-w",
               "-t", str(_START_TIMEOUT_S), "-o", quiet], folder)
    try:
        # The verifier, never the password, crosses to the server: it cannot surface in its log.
        from nb_assets.warehouse.backends import scram_verifier

        sql = f"ALTER ROLE postgres PASSWORD '{scram_verifier(password)}'"
        _as_owner([_binary("psql"), "-h", str(folder), "-p", str(port), "-U", "postgres", "-d", "postgres",
                   "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], folder)
    finally:
        _as_owner([_binary("pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"], folder)


def _write_owned(path: Path, text: str, folder: Path) -> None:
    """Write `text` readable by the server's user only (mode 0600, owned by it when run as root)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)


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
