"""Warehouses for a test: a small DuckDB file, a throwaway PostgreSQL cluster and its databases, snapshots."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A real DuckDB file with a small raw table."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.orders AS SELECT range AS order_id, range % 3 AS customer_id, "
            "(range * 1.5)::DOUBLE AS amount, DATE '2026-11-01' + (range % 5)::INTEGER AS order_date FROM range(20)"
        )
    return path


def warehouse_snapshot(path: Path) -> dict[str, list[tuple]]:
    """Every table's full contents, to prove a failed run changed nothing."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
        ).fetchall()
        return {f"{s}.{t}": con.execute(f'SELECT * FROM "{s}"."{t}" ORDER BY ALL').fetchall() for s, t in tables}


@pytest.fixture(scope="session")
def pg_cluster() -> Any:
    """A real, throwaway PostgreSQL cluster for the whole session (nb_assets.deploy.pg_cluster), stopped at the end."""
    from nb_assets.deploy.pg_cluster import find_binaries, start_cluster
    from support.needs import skip_missing

    if find_binaries() is None:
        skip_missing("postgres", "no PostgreSQL server is installed (make system-deps installs Debian's postgresql)")
    # Not under pytest's temporary root: another pytest session on the machine resets that
    # root to 0700 (the server, running as `postgres`, would lose its folder) and prunes old runs.
    folder = Path(tempfile.mkdtemp(prefix="nb-assets-pg-"))
    cluster = start_cluster(folder, unsafe_fast=True)  # thrown away at the end: speed over durability
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


_database_numbers = itertools.count(1)


def new_pg_database(cluster: Any) -> str:
    """A fresh, empty database in the session's cluster; its owner's URL."""
    import psycopg

    name = f"wh{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return cluster.dsn(name)


@pytest.fixture
def pg_warehouse(pg_cluster: Any) -> str:
    """A fresh database with the same small raw.orders as `warehouse`; the owner's URL."""
    import psycopg

    dsn = new_pg_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw.orders AS SELECT g::bigint AS order_id, (g % 3)::bigint AS customer_id, "
            "(g * 1.5)::float8 AS amount, DATE '2026-11-01' + (g % 5) AS order_date FROM generate_series(0, 19) g"
        )
    return dsn


def pg_snapshot(dsn: str) -> dict[str, list[tuple]]:
    """Every user table's full contents, to prove a failed run changed nothing."""
    import psycopg

    with psycopg.connect(dsn) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        return {
            f"{s}.{t}": sorted(con.execute(f'SELECT * FROM "{s}"."{t}"').fetchall(), key=repr) for s, t in tables
        }


def pg_execute(dsn: str, *statements: str) -> None:
    """Run each statement in autocommit, as a user's psql session would."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as con:
        for statement in statements:
            con.execute(statement)


def parquet_file(folder: Path, name: str, df: Any) -> Path:
    """`df` as the Parquet file `folder/<name>.parquet`, as a run's outputs folder holds it."""
    path = folder / f"{name}.parquet"
    df.to_parquet(path, index=False)
    return path
