from __future__ import annotations

import sys
from pathlib import Path

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
def docker_image() -> str:
    """The sandbox image tag, built if missing; skips (saying why) only when no engine answers."""
    from nb_assets.docker_sandbox import docker_available
    from nb_assets.image import build_image, image_exists, image_tag

    if not docker_available():
        pytest.skip("no Docker engine answers (is dockerd running? DOCKER_HOST?)")
    if not image_exists():
        build_image()
    return image_tag()
