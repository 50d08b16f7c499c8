"""`nb-assets deploy backup` and `deploy up --restore`: the deployment's data in one folder and back.

    BACKUP/storage.dump      pg_dump -Fc of Dagster's storage (runs, events, schedules)
    BACKUP/warehouse.dump    pg_dump -Fc of the warehouse (a Postgres one; a DuckDB file is copied)
    BACKUP/dagster_home.tar  the records, compute logs and run-worker logs (no dagster.yaml: `up` writes it)
    BACKUP/manifest.json     when, from which state folder, by which Dagster (restore migrates if it differs)

A backup is consistent per database (pg_dump takes one snapshot each); run it
while the queue is idle for the two to agree with each other. Passwords reach
pg_dump and pg_restore as PGPASSWORD in their environment, never an argument,
and the folder is made with mode 0700. Restoring goes into a new state folder:
`deploy up --restore BACKUP` creates the cluster and its logins as always,
loads both dumps (objects owned by the deployment's logins), unpacks the
records, then migrates the storage if the backup's Dagster is older.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from nb_assets.deploy.config import DAGSTER_DB, DAGSTER_LOGIN, OWNER_LOGIN, WAREHOUSE_DB, DeploySettings, dagster_version
from nb_assets.deploy.secrets import load_secrets, split_password
from nb_assets.errors import NbAssetsError
from nb_assets.locations import is_postgres_url, redact

STORAGE_DUMP, WAREHOUSE_DUMP, HOME_TAR, MANIFEST = "storage.dump", "warehouse.dump", "dagster_home.tar", "manifest.json"
_NOT_BACKED_UP = ("dagster.yaml", "workspace.yaml")  # written by `up` for the deployment it starts


class BackupError(NbAssetsError):
    """A backup or restore failed; the message names the step (and never a password)."""


def backup(state_dir: Path, dest: Path | None = None) -> Path:
    """Dump storage and warehouse of the deployment in `state_dir` (running) into `dest`; its path."""
    settings = DeploySettings.load(state_dir)
    secrets = load_secrets(state_dir)
    dest = dest or state_dir / "backups" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest.mkdir(parents=True, exist_ok=False)
    os.chmod(dest, 0o700)
    storage_url, storage_password = _login(settings, secrets, "storage")
    _pg("pg_dump", ["-Fc", "-f", str(dest / STORAGE_DUMP), "-d", storage_url], storage_password, "dumping the storage")
    if is_postgres_url(settings.warehouse_location()):
        url, password = _login(settings, secrets, "warehouse")
        _pg("pg_dump", ["-Fc", "-f", str(dest / WAREHOUSE_DUMP), "-d", url], password, "dumping the warehouse")
    else:
        shutil.copy2(settings.warehouse_location(), dest / Path(settings.warehouse_location()).name)
    with tarfile.open(dest / HOME_TAR, "w") as tar:
        for path in sorted(settings.dagster_home.iterdir()):
            if path.name not in _NOT_BACKED_UP:
                tar.add(path, arcname=path.name)
    manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "state_dir": str(state_dir),
                "dagster_version": settings.dagster_version or dagster_version(),
                "storage": redact(settings.storage_location()), "warehouse": redact(settings.warehouse_location())}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return dest


def restore_backup(settings: DeploySettings, secrets: dict[str, str], source: Path) -> str:
    """Load `source` (a backup folder) into the new deployment `settings` describes, before it starts.
    What it restored, one line."""
    manifest = json.loads((source / MANIFEST).read_text())
    storage_url, storage_password = _login(settings, secrets, "storage")
    _restore(source / STORAGE_DUMP, storage_url, storage_password, DAGSTER_LOGIN if settings.own_storage else None,
             "restoring the storage")
    if (source / WAREHOUSE_DUMP).exists():
        url, password = _login(settings, secrets, "warehouse")
        _restore(source / WAREHOUSE_DUMP, url, password, OWNER_LOGIN if settings.own_warehouse else None,
                 "restoring the warehouse")
    with tarfile.open(source / HOME_TAR) as tar:
        tar.extractall(settings.dagster_home, filter="data")  # no links out, no devices, no absolute paths
    settings.dagster_version = str(manifest.get("dagster_version", ""))  # up migrates when this Dagster differs
    settings.save()
    return f"restored {source.name} (made {manifest.get('created')} from {manifest.get('state_dir')}): storage, warehouse, records"


def _login(settings: DeploySettings, secrets: dict[str, str], which: str) -> tuple[str, str]:
    """(URL without password, password) to dump or restore `which` database as: the own cluster's
    superuser (it reads every object), else the login the user gave."""
    own = settings.own_storage if which == "storage" else settings.own_warehouse
    if own:
        database = DAGSTER_DB if which == "storage" else WAREHOUSE_DB
        return settings.postgres_url(database), secrets["postgres"]
    bare = split_password(settings.storage_location() if which == "storage" else settings.warehouse_location())[0]
    return bare, secrets.get(f"{which}_url", "")


def _restore(dump: Path, url: str, password: str, role: str | None, what: str) -> None:
    argv = ["--no-owner", "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "-d", url, str(dump)]
    if role:
        argv[:0] = [f"--role={role}"]  # every object made by (so owned by) the deployment's login
    _pg("pg_restore", argv, password, what)


def _pg(tool: str, argv: list[str], password: str, what: str) -> None:
    from nb_assets.deploy.pg_cluster import find_binaries

    folder = find_binaries()
    binary = str(folder / tool) if folder and (folder / tool).exists() else shutil.which(tool)
    if not binary:
        raise BackupError(f"{what}: {tool} is not installed (Debian: apt-get install postgresql-client)")
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "30"}
    done = subprocess.run([binary, *argv], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        message = redact(done.stderr.strip()[-2000:]).replace(password, "***") if password else redact(done.stderr)
        raise BackupError(f"{what} failed ({tool} exit {done.returncode}): {message}")
