"""In Jupyter (a real kernel through papermill, no sandbox): jupysql's forms run on the runtime against
the warehouse, and a notebook that loads jupysql itself keeps working beside the runtime."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import papermill
import pytest

from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.warehouses import warehouse_snapshot


@pytest.fixture
def jupyter_env(warehouse: Path) -> Iterator[Path]:
    """The kernel inherits this process's environment: the warehouse, interactive mode, no telemetry."""
    keys = ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_MODE", "PLOOMBER_STATS_ENABLED", "PLOOMBER_VERSION_CHECK_DISABLED")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["NB_ASSETS_WAREHOUSE"] = str(warehouse)
    # jupysql's ploomber-core would report usage and look for a newer version over the network
    os.environ["PLOOMBER_STATS_ENABLED"] = "false"
    os.environ["PLOOMBER_VERSION_CHECK_DISABLED"] = "true"
    os.environ.pop("NB_ASSETS_MODE", None)
    try:
        yield warehouse
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _execute(path: Path, tmp_path: Path) -> object:
    return papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                      progress_bar=False, cwd=str(tmp_path))


def test_jupysql_forms_query_the_warehouse_through_the_runtime(jupyter_env: Path, tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "explore.ipynb",
        code(RUNTIME + "\n%config SqlMagic.displaylimit = 3\n%sql duckdb:///somewhere-else.db"),
        params("low = 20.0"),
        code("%%sql --save big --no-execute\nSELECT * FROM raw.orders WHERE amount >= {{low}};"),
        code("%%sql top <<\nSELECT count(*) AS n FROM big"),
        code("assert int(top.n[0]) == 6, top"),
        code("customer = 1\nshown = %sql SELECT count(*) AS n FROM raw.orders WHERE customer_id = {{customer}}\n"
             "assert int(shown.n[0]) == 7, shown"),
        code("%%sql\nSELECT max(amount) AS most FROM big"),
    )
    before = warehouse_snapshot(jupyter_env)
    executed = _execute(path, tmp_path)
    shown = executed.cells[-1].outputs[0]["data"]["text/plain"]
    assert "28.5" in shown  # the bare %%sql's DataFrame is displayed, as jupysql displays its result
    assert warehouse_snapshot(jupyter_env) == before
    assert not (tmp_path / "somewhere-else.db").exists()  # the connection line opened nothing


@pytest.mark.skipif(importlib.util.find_spec("sql") is None, reason="jupysql is not installed (pip install -e '.[test]')")
def test_a_notebook_that_loads_jupysql_keeps_working_beside_the_runtime(jupyter_env: Path, tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "theirs.ipynb",
        code(RUNTIME),
        code("%load_ext sql\nimport duckdb\nconn = duckdb.connect()\n%sql conn"),
        code("result = %sql SELECT 42 AS answer\nassert result.DataFrame().answer[0] == 42  # jupysql's ResultSet"),
        code("%config SqlMagic.displaylimit = 3"),
        code("%%sql\nSELECT 7 AS seven"),
    )
    executed = _execute(path, tmp_path)
    assert "seven" in str(executed.cells[-1].outputs)
