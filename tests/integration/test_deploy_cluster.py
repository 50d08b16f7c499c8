"""The deployment's own Postgres cluster keeps data and lets in only who proves a password.

A real cluster per module (Debian's server, deploy/pg_cluster.py) started as `deploy up` starts
it: durable (fsync, full-page writes, synchronous commit at Postgres's defaults), scram-sha-256 on
the socket and loopback, then the logins of warehouse/postgres/roles.py. No Docker: seconds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nb_assets.deploy.pg_cluster import Cluster, find_binaries, start_cluster
from nb_assets.deploy.secrets import load_secrets, split_password, with_password
from nb_assets.warehouse.backends import provision_deployment

psycopg = pytest.importorskip("psycopg")

SCHEMAS = ["raw", "mart"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, dict[str, str]]]:
    if find_binaries() is None:
        pytest.skip("no PostgreSQL server is installed (make system-deps installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="nb-assets-deploy-pg-"))  # not under pytest's 0700 root: see warehouses.py
    secrets = load_secrets(folder / "state")
    pg = start_cluster(folder / "postgres", superuser_password=secrets["postgres"])
    try:
        provision_deployment(pg.dsn(password=secrets["postgres"]), storage=("dagster", "dagster", secrets["dagster"]),
                             warehouse=("warehouse", "nb_assets_owner", secrets["warehouse"]),
                             reader=("nb_assets_reader", secrets["reader"]), reader_schemas=SCHEMAS)
        yield pg, secrets
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def connect(pg: Cluster, database: str, user: str, password: str | None) -> Any:
    return psycopg.connect(pg.dsn(database, user=user, password=password), autocommit=True, connect_timeout=10)


def test_the_cluster_is_durable_by_default(cluster: tuple[Cluster, dict[str, str]]) -> None:
    pg, secrets = cluster
    with connect(pg, "postgres", "postgres", secrets["postgres"]) as con:
        settings = {name: con.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("fsync", "full_page_writes", "synchronous_commit", "password_encryption")}
    assert settings == {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on",
                        "password_encryption": "scram-sha-256"}


def test_every_connection_proves_its_password(cluster: tuple[Cluster, dict[str, str]]) -> None:
    pg, secrets = cluster
    for password in (None, "wrong-password"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            connect(pg, "postgres", "postgres", password)
    # The unix socket too: no local process gets in as the superuser without the password.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=str(pg.folder), port=pg.port, user="postgres", dbname="postgres", connect_timeout=10)
    assert "scram-sha-256" in (pg.folder / "data" / "pg_hba.conf").read_text()
    assert "trust" not in [line.split()[-1] for line in (pg.folder / "data" / "pg_hba.conf").read_text().splitlines()
                           if line.strip() and not line.startswith("#")]
    with connect(pg, "postgres", "postgres", secrets["postgres"]) as con:
        stored = {r[0]: r[1] for r in con.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolcanlogin")}
    assert all(v.startswith("SCRAM-SHA-256$") for v in stored.values()), stored
    assert not any(p in v for v in stored.values() for p in secrets.values())


def test_each_login_reaches_its_own_database_only(cluster: tuple[Cluster, dict[str, str]]) -> None:
    pg, secrets = cluster
    with connect(pg, "dagster", "dagster", secrets["dagster"]) as con:
        con.execute("CREATE TABLE IF NOT EXISTS runs_probe (id int)")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        connect(pg, "dagster", "nb_assets_owner", secrets["warehouse"])
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        connect(pg, "dagster", "nb_assets_reader", secrets["reader"])
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        connect(pg, "warehouse", "dagster", secrets["dagster"])


def test_the_reader_selects_from_the_schemas_notebooks_read_and_nothing_else(cluster: tuple[Cluster, dict[str, str]]) -> None:
    pg, secrets = cluster
    with connect(pg, "warehouse", "nb_assets_owner", secrets["warehouse"]) as owner:
        # Made after the grants, as a seed or a load makes them: the default privileges cover them.
        owner.execute("DROP TABLE IF EXISTS raw.orders; CREATE TABLE raw.orders AS SELECT 1 AS id")
        owner.execute("CREATE SCHEMA IF NOT EXISTS hr; DROP TABLE IF EXISTS hr.salaries; CREATE TABLE hr.salaries AS SELECT 1 AS pay")
        owner.execute("CREATE TABLE IF NOT EXISTS public.notes AS SELECT 1 AS n")
    with connect(pg, "warehouse", "nb_assets_reader", secrets["reader"]) as reader:
        assert reader.execute("SELECT count(*) FROM raw.orders").fetchone()[0] == 1
        for forbidden in ("SELECT * FROM hr.salaries", "SELECT * FROM public.notes"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(forbidden)
        with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
            reader.execute("INSERT INTO raw.orders VALUES (2)")
        with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
            reader.execute("CREATE TABLE raw.mine (x int)")
        member = reader.execute("SELECT pg_has_role('nb_assets_reader', 'pg_read_all_data', 'MEMBER')").fetchone()[0]
        assert member is False  # not the cluster-wide reader of warehouse/postgres/warehouse.py


def test_provisioning_again_is_harmless_and_sets_new_passwords(cluster: tuple[Cluster, dict[str, str]]) -> None:
    pg, secrets = cluster
    with connect(pg, "warehouse", "nb_assets_owner", secrets["warehouse"]) as owner:  # its own table: any order, any worker
        owner.execute("DROP TABLE IF EXISTS raw.orders; CREATE TABLE raw.orders AS SELECT 1 AS id")
    rotated = {**secrets, "reader": "a-new-reader-password-0123"}
    provision_deployment(pg.dsn(password=secrets["postgres"]), storage=("dagster", "dagster", rotated["dagster"]),
                         warehouse=("warehouse", "nb_assets_owner", rotated["warehouse"]),
                         reader=("nb_assets_reader", rotated["reader"]), reader_schemas=SCHEMAS)
    with pytest.raises(psycopg.OperationalError, match="password"):
        connect(pg, "warehouse", "nb_assets_reader", secrets["reader"])
    with connect(pg, "warehouse", "nb_assets_reader", rotated["reader"]) as reader:
        assert reader.execute("SELECT count(*) FROM raw.orders").fetchone()[0] == 1
    provision_deployment(pg.dsn(password=secrets["postgres"]), storage=("dagster", "dagster", secrets["dagster"]),
                         warehouse=("warehouse", "nb_assets_owner", secrets["warehouse"]),
                         reader=("nb_assets_reader", secrets["reader"]), reader_schemas=SCHEMAS)


def test_a_cluster_made_with_trust_gets_its_password_on_the_next_start(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A state folder from before: initdb with trust. Started with a password, it asks for it."""
    if find_binaries() is None:
        pytest.skip("no PostgreSQL server is installed")
    folder = Path(tempfile.mkdtemp(prefix="nb-assets-deploy-pg-old-"))
    try:
        old = start_cluster(folder, unsafe_fast=True)
        with psycopg.connect(old.dsn(), autocommit=True) as con:
            con.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        old.stop()
        new = start_cluster(folder, old.port, superuser_password="now-with-a-password-1")
        try:
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(new.dsn(), connect_timeout=10)
            with psycopg.connect(new.dsn(password="now-with-a-password-1")) as con:
                assert con.execute("SELECT answer FROM kept").fetchone()[0] == 42
                assert con.execute("SHOW fsync").fetchone()[0] == "on"
        finally:
            new.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_secrets_file_is_private_and_urls_split_around_their_password(tmp_path: Path) -> None:
    values = load_secrets(tmp_path / "state")
    path = tmp_path / "state" / "secrets.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert set(values) >= {"postgres", "dagster", "warehouse", "reader"} and len(set(values.values())) == len(values)
    assert load_secrets(tmp_path / "state") == values  # generated once, then kept
    path.chmod(0o644)
    load_secrets(tmp_path / "state")
    assert path.stat().st_mode & 0o777 == 0o600
    url = "postgresql://dagster:p%40ss@db.example.invalid:5432/dagster"
    assert split_password(url) == ("postgresql://dagster@db.example.invalid:5432/dagster", "p@ss")
    assert with_password(*split_password(url)) == url
    assert split_password("postgresql://dagster@db.example.invalid/dagster")[1] is None
    assert split_password("/tmp/warehouse.duckdb") == ("/tmp/warehouse.duckdb", None)
