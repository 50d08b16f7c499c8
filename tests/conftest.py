from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/notebook_factory.py

REPO = Path(__file__).resolve().parents[1]


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
    """A real, throwaway PostgreSQL cluster for the whole session (nb_assets.pg_cluster), stopped at the end."""
    from nb_assets.pg_cluster import find_binaries, start_cluster

    if find_binaries() is None:
        pytest.skip("no PostgreSQL server is installed (make system-deps installs Debian's postgresql)")
    # Not under pytest's temporary root: another pytest session on the machine resets that
    # root to 0700 (the server, running as `postgres`, would lose its folder) and prunes old runs.
    folder = Path(tempfile.mkdtemp(prefix="nb-assets-pg-"))
    cluster = start_cluster(folder)
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


@pytest.fixture(scope="session")
def docker_image() -> str:
    """The sandbox image tag, built if missing; skips (saying why) only when no engine answers."""
    from nb_assets.docker_sandbox import docker_available
    from nb_assets.image import build_image, image_exists, image_tag

    if not docker_available():
        pytest.skip("no Docker engine answers (is dockerd running? DOCKER_HOST?)")
    if not image_exists():
        build_image()
    return image_tag()


@pytest.fixture(params=["local", "docker"])
def each_sandbox(request: pytest.FixtureRequest) -> Any:
    """The test runs once per sandbox; each skips (saying why) only when it truly cannot run here."""
    from nb_assets.sandbox import LocalSandbox, network_namespaces_available

    if request.param == "local":
        if not network_namespaces_available():
            pytest.skip("network namespaces (unshare --net) are unavailable here")
        return LocalSandbox()
    from nb_assets.docker_sandbox import DockerSandbox

    return DockerSandbox(image=request.getfixturevalue("docker_image"))


_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """`make test` reads pytest's exit code. Once pytest has reported, leave
    without interpreter teardown, where the native thread pools of Arrow and
    DuckDB (loaded by the tests) can abort and turn a green run red. Only when
    pytest is the program itself, never when it was called from other code."""
    program = os.path.basename(sys.argv[0]) if sys.argv else ""
    if _exit_status and (program in ("pytest", "py.test") or sys.argv[0].endswith(os.path.join("pytest", "__main__.py"))):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
