"""`nb-assets deploy rotate`, end to end on a real cluster: the old passwords are refused, the new
ones work, and secrets.json (mode 0600) holds the new ones.

Rotation needs the deployment's own cluster running, not the rest of the stack (it sets passwords as
the cluster's superuser and rewrites secrets.json; the processes get them at the next `deploy up`):
so the state folder's cluster is started and provisioned as `deploy up` does it (scram-sha-256,
the logins of warehouse/postgres/roles.py), with no image, code server or Dagster process. The warehouse
is an existing one on that server (`--warehouse`), whose per-database reader is rotated through the
warehouse's own login. Seconds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nb_assets.deploy.config import DAGSTER_DB, DAGSTER_LOGIN, OWNER_LOGIN, READER_LOGIN, WAREHOUSE_DB, DeploySettings
from nb_assets.deploy.pg_cluster import Cluster, find_binaries, free_port, start_cluster
from nb_assets.deploy.secrets import load_secrets, save_secrets, split_password, with_password
from nb_assets.warehouse.backends import provision_deployment, provision_warehouse_reader
from support.cli import nb_assets

psycopg = pytest.importorskip("psycopg")

ETL_PASSWORD = "etl-password-0123456789"


@pytest.fixture
def deployment() -> Iterator[DeploySettings]:
    """A state folder whose own cluster runs (Dagster's storage there) and whose warehouse is an
    existing database `analytics` on the same server, owned by `etl` (CREATEROLE)."""
    if find_binaries() is None:
        pytest.skip("no PostgreSQL server is installed (make system-deps installs Debian's postgresql)")
    state = Path(tempfile.mkdtemp(prefix="nb-assets-rotate-"))  # not under pytest's 0700 root: see warehouses.py
    port = free_port()
    settings = DeploySettings(state_dir=state, postgres_port=port, reader_schemas=["raw"],
                              warehouse=f"postgresql://etl:{ETL_PASSWORD}@127.0.0.1:{port}/analytics")
    secrets = load_secrets(state)
    settings.take_passwords(secrets)
    settings.save()
    save_secrets(state, secrets)  # as `deploy up` keeps them: the URL's password included
    # As deploy/operate.start_postgres starts it (scram-sha-256, loopback), but thrown away: no fsync.
    start_cluster(settings.postgres_dir, port, superuser_password=secrets["postgres"], unsafe_fast=True)
    try:
        provision_deployment(settings.admin_url(secrets), storage=(DAGSTER_DB, DAGSTER_LOGIN, secrets["dagster"]),
                             warehouse=(WAREHOUSE_DB, OWNER_LOGIN, secrets["warehouse"]),
                             reader=(READER_LOGIN, secrets["reader"]), reader_schemas=settings.reader_schemas)
        with psycopg.connect(settings.admin_url(secrets), autocommit=True) as con:  # the server admin's part
            con.execute(f"CREATE ROLE etl LOGIN CREATEROLE PASSWORD '{ETL_PASSWORD}'")
            con.execute("CREATE DATABASE analytics OWNER etl")
        with psycopg.connect(settings.warehouse_url(secrets), autocommit=True) as con:
            con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT 1 AS order_id")
        provision_warehouse_reader(settings.warehouse_url(secrets), (settings.external_reader() or "", secrets["reader"]),
                                   settings.reader_schemas)
        yield settings
    finally:
        Cluster(settings.postgres_dir, port).stop()
        shutil.rmtree(state, ignore_errors=True)


def logins(settings: DeploySettings, secrets: dict[str, str]) -> dict[str, str]:
    """Each login the deployment made, as a URL with its password from `secrets`."""
    return {
        "postgres": settings.admin_url(secrets),
        "dagster": with_password(settings.postgres_url(DAGSTER_DB, DAGSTER_LOGIN), secrets["dagster"]),
        "warehouse": with_password(settings.postgres_url(WAREHOUSE_DB, OWNER_LOGIN), secrets["warehouse"]),
        "reader": with_password(settings.postgres_url(WAREHOUSE_DB, READER_LOGIN), secrets["reader"]),
        "warehouse's reader": settings.reader_url(secrets) or "",
    }


def test_rotate_refuses_the_old_passwords_and_keeps_the_new_ones_private(deployment: DeploySettings) -> None:
    state = deployment.state_dir
    before = load_secrets(state)
    for url in logins(deployment, before).values():  # all of them work before
        psycopg.connect(url, connect_timeout=10).close()

    done = nb_assets("deploy", "rotate", "--state", str(state))
    assert done.returncode == 0, done.stderr

    after = json.loads((state / "secrets.json").read_text())
    assert (state / "secrets.json").stat().st_mode & 0o777 == 0o600
    rotated = ("postgres", "dagster", "warehouse", "reader")
    assert all(after[key] != before[key] for key in rotated), "every generated password is new"
    assert after["warehouse_url"] == before["warehouse_url"]  # the existing server's own login: its admin's to rotate
    for name, url in logins(deployment, before).items():
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(url, connect_timeout=10)
    for name, url in logins(deployment, after).items():
        psycopg.connect(url, connect_timeout=10).close()
    with psycopg.connect(deployment.reader_url(after) or "") as reader:  # the rotated reader still reads
        assert reader.execute("SELECT order_id FROM raw.orders").fetchone() == (1,)
    said = done.stdout + done.stderr
    assert "nb_assets_reader_analytics" in said and "deploy up" in said
    assert not [p for p in (*before.values(), *after.values()) if p in said]
    assert split_password(json.loads((state / "deploy.json").read_text())["warehouse"])[1] is None


def test_rotate_needs_the_cluster_running(tmp_path: Path) -> None:
    DeploySettings(state_dir=tmp_path / "state").save()
    done = nb_assets("deploy", "rotate", "--state", str(tmp_path / "state"))
    assert done.returncode != 0 and "start it (deploy up), then rotate" in done.stderr
