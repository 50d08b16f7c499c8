"""The runtime inside a notebook, interactively: a real kernel through papermill, no sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import papermill
import pytest

from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.warehouses import warehouse_snapshot


def test_interactive_sql_queries_the_warehouse_and_output_only_previews(warehouse: Path, tmp_path: Path) -> None:
    path = write_notebook(
        tmp_path / "explore.ipynb",
        code(RUNTIME),
        params("min_amount = 20.0"),
        code("%%sql orders\nSELECT order_id, amount, order_date FROM raw.orders WHERE amount >= $min_amount"),
        code("assert len(orders) == 6, len(orders)\nassert str(orders.amount.dtype) == 'float64'\n"
             "import datetime\nassert isinstance(orders.order_date[0], datetime.date)"),
        code("output('mart.preview', orders)"),
    )
    before = warehouse_snapshot(warehouse)
    env = {k: os.environ.get(k) for k in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_MODE")}
    os.environ["NB_ASSETS_WAREHOUSE"] = str(warehouse)  # the kernel inherits this process's environment
    os.environ.pop("NB_ASSETS_MODE", None)
    try:
        executed = papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                              progress_bar=False, cwd=str(tmp_path))
    finally:
        for key, value in env.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    printed = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "output mart.preview: 6 rows (preview; nothing is written" in printed
    assert warehouse_snapshot(warehouse) == before


def test_interactive_sql_queries_a_postgres_warehouse(pg_warehouse: str, tmp_path: Path) -> None:
    from support.warehouses import pg_snapshot

    path = write_notebook(
        tmp_path / "explore.ipynb",
        code(RUNTIME),
        params("min_amount = 20.0\nday = '2026-11-02'"),
        code("%%sql orders\nSELECT order_id, amount, order_date FROM raw.orders\n"
             "WHERE amount >= $min_amount AND order_date >= $day::date"),
        code("assert len(orders) == 5, len(orders)\nassert str(orders.amount.dtype) == 'float64'\n"
             "import datetime\nassert isinstance(orders.order_date[0], datetime.date)"),
        code("%%sql smuggled\nWITH d AS (DELETE FROM raw.orders RETURNING *) SELECT * FROM d"),
    )
    before = pg_snapshot(pg_warehouse)
    env = {k: os.environ.get(k) for k in ("NB_ASSETS_WAREHOUSE", "NB_ASSETS_MODE")}
    os.environ["NB_ASSETS_WAREHOUSE"] = pg_warehouse
    os.environ.pop("NB_ASSETS_MODE", None)
    try:
        with pytest.raises(papermill.PapermillExecutionError, match="read-only transaction"):
            papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                       progress_bar=False, cwd=str(tmp_path))
    finally:
        for key, value in env.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    executed = (tmp_path / "out.ipynb").read_text()
    assert "SQL input 'smuggled' failed" in executed  # the cells before it ran: the query above returned its 5 rows
    assert pg_snapshot(pg_warehouse) == before
