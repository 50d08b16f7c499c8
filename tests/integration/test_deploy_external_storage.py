"""`deploy up --storage postgresql://...`: Dagster's storage in an existing Postgres server.

The parts that matter, without a stack (a stack costs minutes): a real cluster with password
authentication stands in for the existing server; the state folder is prepared as `deploy up`
prepares it (the URL's password moved to secrets.json, dagster.yaml and workspace.yaml written);
`dagster instance migrate` runs through the code path `up` uses on an upgrade (stack.migrate_if_needed);
then a DagsterInstance built from that dagster.yaml, the password in its environment only, records a
real run in the external database and reads it back. About 20 s.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nb_assets.deploy.config import DeploySettings, dagster_version, dagster_yaml, workspace_yaml
from nb_assets.deploy.pg_cluster import Cluster, find_binaries, start_cluster
from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, load_secrets, save_secrets
from nb_assets.deploy.stack import migrate_if_needed

psycopg = pytest.importorskip("psycopg")

STORAGE_PASSWORD = "st0rage-password-0123456789"
ADMIN_PASSWORD = "server-admin-password-0123"


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    """The existing server: scram-sha-256 on every connection, a login `runs` owning database `dagster_runs`."""
    if find_binaries() is None:
        pytest.skip("no PostgreSQL server is installed (make system-deps installs Debian's postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="nb-assets-storage-"))  # not under pytest's 0700 root: see warehouses.py
    cluster = start_cluster(folder, superuser_password=ADMIN_PASSWORD, unsafe_fast=True)  # thrown away at the end
    try:
        with psycopg.connect(cluster.dsn(password=ADMIN_PASSWORD), autocommit=True) as con:
            con.execute(f"CREATE ROLE runs LOGIN PASSWORD '{STORAGE_PASSWORD}'")
            con.execute("CREATE DATABASE dagster_runs OWNER runs")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def state(server: Cluster, tmp_path: Path) -> tuple[DeploySettings, dict[str, str]]:
    """A state folder as `deploy up --storage postgresql://runs:PASSWORD@...` leaves it before starting processes."""
    settings = DeploySettings(state_dir=tmp_path / "state", storage=server.dsn("dagster_runs", "runs", STORAGE_PASSWORD),
                              warehouse=str(tmp_path / "warehouse.duckdb"))
    secrets = load_secrets(settings.state_dir)
    settings.take_passwords(secrets)
    save_secrets(settings.state_dir, secrets)
    settings.dagster_home.mkdir(parents=True)
    settings.save()
    (settings.dagster_home / "dagster.yaml").write_text(dagster_yaml(settings))
    (settings.dagster_home / "workspace.yaml").write_text(workspace_yaml(settings))
    return settings, secrets


def test_dagster_yaml_names_the_server_and_takes_the_password_from_the_environment(
        server: Cluster, state: tuple[DeploySettings, dict[str, str]]) -> None:
    settings, secrets = state
    config = yaml.safe_load((settings.dagster_home / "dagster.yaml").read_text())["storage"]["postgres"]["postgres_db"]
    assert config == {"username": "runs", "password": {"env": DAGSTER_PASSWORD_ENV}, "hostname": "127.0.0.1",
                      "db_name": "dagster_runs", "port": server.port, "scheme": "postgresql+psycopg2"}
    assert DAGSTER_PASSWORD_ENV in yaml.safe_load((settings.dagster_home / "dagster.yaml").read_text())[
        "run_launcher"]["config"]["env_vars"]  # passed on to each run worker by name
    assert secrets["storage_url"] == STORAGE_PASSWORD
    holding = [p for p in settings.state_dir.rglob("*") if p.is_file() and STORAGE_PASSWORD in p.read_text(errors="replace")]
    assert holding == [settings.state_dir / "secrets.json"]
    assert (settings.state_dir / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_the_storage_migrates_into_the_existing_database_and_records_a_run(
        server: Cluster, state: tuple[DeploySettings, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster import DagsterInstance, DagsterRunStatus, asset, materialize

    settings, secrets = state
    settings.dagster_version = "1.12.0"  # an older Dagster ran this state folder: `up` migrates
    said = migrate_if_needed(settings, secrets)
    assert said == (f"migrated Dagster's storage (postgresql://runs@127.0.0.1:{server.port}/dagster_runs) "
                    f"from Dagster 1.12.0 to {dagster_version()}")
    with psycopg.connect(server.dsn("dagster_runs", "runs", STORAGE_PASSWORD)) as con:
        tables = {t for (t,) in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs", "alembic_version"} <= tables

    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    monkeypatch.delenv(DAGSTER_PASSWORD_ENV, raising=False)
    with pytest.raises(Exception, match=DAGSTER_PASSWORD_ENV):  # dagster.yaml holds no password to fall back on
        DagsterInstance.get()
    monkeypatch.setenv(DAGSTER_PASSWORD_ENV, settings.storage_password(secrets))

    @asset
    def answer() -> int:
        return 42

    with DagsterInstance.get() as instance:
        result = materialize([answer], instance=instance)
        assert result.success
    with DagsterInstance.get() as reader:  # a second instance (another process would do the same) reads it back
        records = reader.get_run_records()
        assert [r.dagster_run.run_id for r in records] == [result.run_id]
        assert records[0].dagster_run.status == DagsterRunStatus.SUCCESS
        assert reader.get_latest_materialization_event(answer.key) is not None
    with psycopg.connect(server.dsn("dagster_runs", "runs", STORAGE_PASSWORD)) as con:
        assert con.execute("SELECT run_id FROM runs").fetchall() == [(result.run_id,)]
