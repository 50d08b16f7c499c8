"""`deploy up --warehouse postgresql://...`: the reader it makes reads that warehouse database's
schemas that notebooks read, and nothing else on the server.

A real cluster (tests/support/warehouses.py) stands in for the existing server: two warehouse
databases of two deployments, each owned by its own login with CREATEROLE (what a server's admin
hands a deployment), and a third database of somebody else's. The reader is made as `deploy up`
makes it (DeploySettings + warehouse.backends.provision_warehouse_reader); no stack. Seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from nb_assets.deploy.config import DeploySettings
from nb_assets.errors import WarehouseError
from nb_assets.warehouse.backends import provision_warehouse_reader

psycopg = pytest.importorskip("psycopg")

SCHEMAS = ["mart", "raw"]  # what the notebooks read
_numbers = count(1)


def admin(pg_cluster: Any, database: str = "postgres") -> Any:
    return psycopg.connect(pg_cluster.dsn(database), autocommit=True)


def new_warehouse(pg_cluster: Any) -> str:
    """A database owned by a login of its own with CREATEROLE, holding raw, mart and hr; that login's URL."""
    n = f"{os.getpid()}_{next(_numbers)}"
    login, database = f"etl_{n}", f"analytics_{n}"
    with admin(pg_cluster) as con:
        con.execute(f"CREATE ROLE {login} LOGIN CREATEROLE PASSWORD 'etl-password-{n}'")
        con.execute(f"CREATE DATABASE {database} OWNER {login}")
    url = pg_cluster.dsn(database, user=login, password=f"etl-password-{n}")
    with psycopg.connect(url, autocommit=True) as con:
        for schema in ("raw", "mart", "hr"):
            con.execute(f"CREATE SCHEMA {schema}")
        con.execute("CREATE TABLE raw.orders AS SELECT 1 AS order_id")
        con.execute("CREATE TABLE hr.salaries AS SELECT 100 AS pay")
        con.execute("CREATE TABLE public.notes AS SELECT 'n' AS note")
    return url


def deploy_reader(state: Path, warehouse_url: str) -> tuple[DeploySettings, str]:
    """As `deploy up` does it: the URL's password moved to secrets, the reader made; the reader's URL."""
    settings = DeploySettings(state_dir=state, warehouse=warehouse_url, reader_schemas=SCHEMAS)
    secrets = {"reader": f"reader-password-{state.name}"}
    settings.take_passwords(secrets)
    reader = settings.external_reader()
    assert reader is not None
    provision_warehouse_reader(settings.warehouse_url(secrets), (reader, secrets["reader"]), settings.reader_schemas)
    url = settings.reader_url(secrets)
    assert url is not None and f"{reader}:" in url and settings.project_env(secrets)["NB_ASSETS_READ_DSN"] == url
    return settings, url


@pytest.fixture
def two_warehouses(pg_cluster: Any, tmp_path: Path) -> Iterator[tuple[str, str, str, str]]:
    """(warehouse A's owner URL, A's reader URL, warehouse B's owner URL, B's reader URL)."""
    a, b = new_warehouse(pg_cluster), new_warehouse(pg_cluster)
    _, reader_a = deploy_reader(tmp_path / "a", a)
    _, reader_b = deploy_reader(tmp_path / "b", b)
    yield a, reader_a, b, reader_b


def test_the_reader_reads_the_schemas_notebooks_read_in_its_own_database(two_warehouses: tuple[str, str, str, str]) -> None:
    owner_a, reader_a, _, _ = two_warehouses
    with psycopg.connect(owner_a, autocommit=True) as owner:
        owner.execute("CREATE TABLE mart.daily AS SELECT 2 AS n")  # made after the grants, as a load makes it
    with psycopg.connect(reader_a, autocommit=True) as reader:
        assert reader.execute("SELECT order_id FROM raw.orders").fetchone() == (1,)
        assert reader.execute("SELECT n FROM mart.daily").fetchone() == (2,)
        for other_schema in ("SELECT * FROM hr.salaries", "SELECT * FROM public.notes"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(other_schema)
        with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
            reader.execute("INSERT INTO raw.orders VALUES (2)")
        member_of = reader.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                                   "WHERE r.rolname = current_user").fetchone()[0]
        assert member_of == 0  # not pg_read_all_data, which reads every database of the server


def test_the_reader_is_refused_on_the_other_databases_of_the_server(
        pg_cluster: Any, two_warehouses: tuple[str, str, str, str]) -> None:
    owner_a, reader_a, owner_b, reader_b = two_warehouses
    database_a, database_b = owner_a.rsplit("/", 1)[1], owner_b.rsplit("/", 1)[1]
    login_a, login_b = (psycopg.conninfo.conninfo_to_dict(u)["user"] for u in (reader_a, reader_b))
    assert login_a != login_b  # one reader per warehouse database: neither resets the other's password
    # Granted CONNECT on its own database, named in no other database's grants.
    with admin(pg_cluster) as con:
        named_in = {d for d, acl in con.execute("SELECT datname, datacl::text FROM pg_database") if acl and login_a in acl}
    assert named_in == {database_a}
    # Another deployment's warehouse (Postgres lets PUBLIC connect to a new database): nothing to read
    # there, although it has the same schema names.
    with psycopg.connect(reader_a.replace(f"/{database_a}", f"/{database_b}"), autocommit=True) as reader:
        for query in ("SELECT * FROM raw.orders", "SELECT * FROM hr.salaries", "SELECT * FROM public.notes"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(query)
    # Where the database's owner closed it to PUBLIC (as the deployment's own cluster does), not even a connection.
    with psycopg.connect(owner_b, autocommit=True) as con:
        con.execute(f"REVOKE CONNECT ON DATABASE {database_b} FROM PUBLIC")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(reader_a.replace(f"/{database_a}", f"/{database_b}"), connect_timeout=10)
    with psycopg.connect(reader_b, autocommit=True) as reader:  # B's own reader still reads B
        assert reader.execute("SELECT order_id FROM raw.orders").fetchone() == (1,)


def test_a_reader_given_more_is_put_back_to_reading(pg_cluster: Any, tmp_path: Path) -> None:
    """An older version's reader, or a hand-made one, that is a member of pg_read_all_data (or a superuser)."""
    owner = new_warehouse(pg_cluster)
    settings, reader_url = deploy_reader(tmp_path / "first", owner)
    other = new_warehouse(pg_cluster)
    login = settings.external_reader()
    with admin(pg_cluster) as con:
        con.execute(f"GRANT pg_read_all_data TO {login}")
    with psycopg.connect(reader_url.rsplit("/", 1)[0] + "/" + other.rsplit("/", 1)[1], autocommit=True) as reader:
        assert reader.execute("SELECT pay FROM hr.salaries").fetchone() == (100,)  # what a cluster-wide reader reads
    deploy_reader(tmp_path / "first", owner)  # the next `deploy up`
    with psycopg.connect(reader_url.rsplit("/", 1)[0] + "/" + other.rsplit("/", 1)[1], autocommit=True) as reader:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT pay FROM hr.salaries")
    with admin(pg_cluster) as con:
        con.execute(f"ALTER ROLE {login} CREATEDB")
    with pytest.raises(WarehouseError, match="powers beyond reading"):
        deploy_reader(tmp_path / "first", owner)
