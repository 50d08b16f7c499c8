"""The CLI against a Postgres warehouse: `run --warehouse postgresql://…`, `check --dialect postgres`,
and `schedule`'s trial, which reads the real tables and rolls its loads back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.cli import NB_ASSETS
from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.paths import REPO
from support.warehouses import new_pg_database, pg_snapshot

pytestmark = pytest.mark.slow


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NB_ASSETS, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_run_loads_into_postgres_and_a_bad_query_changes_nothing(pg_warehouse: str, tmp_path: Path) -> None:
    good = write_notebook(tmp_path / "big.ipynb", code(RUNTIME), params("ds = '2026-11-02'"),
                          code("%%sql rows\nSELECT * FROM raw.orders WHERE order_date >= $ds::date"),
                          code("output('mart.big', rows)"))
    proc = _cli("run", str(good), "--warehouse", pg_warehouse, "--sandbox", "local", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["outputs"] == [{"table": "mart.big", "rows": 16}]
    assert len(pg_snapshot(pg_warehouse)["mart.big"]) == 16

    before = pg_snapshot(pg_warehouse)
    bad = write_notebook(tmp_path / "bad.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.nope"),
                         code("output('mart.bad', rows)"))
    proc = _cli("run", str(bad), "--warehouse", pg_warehouse, "--sandbox", "local", "--json", cwd=tmp_path)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["cell"] == 2 and "no such table raw.nope" in error["message"]
    assert pg_snapshot(pg_warehouse) == before

    # Another notebook's table: the warehouse records who loaded it, and refuses it to anyone else.
    rival = write_notebook(tmp_path / "rival.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"),
                           code("output('mart.big', rows)"))
    proc = _cli("run", str(rival), "--warehouse", pg_warehouse, "--sandbox", "local", cwd=tmp_path)
    assert proc.returncode == 1 and "- mart.big (16 rows now): already in" in proc.stderr, proc.stderr
    assert "loaded by notebook big" in proc.stderr
    assert pg_snapshot(pg_warehouse) == before


def test_check_reads_sql_in_the_warehouse_dialect(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "files.ipynb", code(RUNTIME), code("%%sql x\nSELECT pg_read_file('/etc/passwd')"))
    duck = _cli("check", str(nb), "--json", cwd=tmp_path, env={"NB_ASSETS_WAREHOUSE": ""})
    pg = _cli("check", str(nb), "--json", cwd=tmp_path, env={"NB_ASSETS_WAREHOUSE": "postgresql://u@example.invalid/w"})
    assert "sql-server-access" not in duck.stdout
    assert pg.returncode == 1
    (finding,) = json.loads(pg.stdout)["notebooks"][0]["findings"]
    assert finding["rule"] == "sql-server-access" and finding["cell"] == 2


def test_schedule_trial_on_postgres_rolls_its_loads_back(tmp_path: Path, pg_cluster: Any) -> None:
    root = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, root / name)
    url = new_pg_database(pg_cluster)
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", url], check=True, capture_output=True)
    notebook = write_notebook(
        root / "notebooks" / "order_kpis.ipynb", md("# Order KPIs"), code(RUNTIME), params('ds = "2026-11-25"'),
        code("%%sql orders\nSELECT status, CAST(amount AS DOUBLE PRECISION) AS amount FROM raw.orders "
             "WHERE order_date <= CAST($ds AS DATE)"),
        code("kpis = orders.groupby('status', as_index=False).amount.sum()"),
        code("output('mart.order_kpis', kpis)"),
    )
    before = pg_snapshot(url)
    proc = _cli("schedule", str(notebook), "--owner", "a@example.com", "--cron", "0 6 * * *",
                "--purpose", "finance_reporting", cwd=root, env={"NB_ASSETS_WAREHOUSE": url, "NB_ASSETS_SANDBOX": "local"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = (root / "plans" / "order_kpis.md").read_text()
    assert "- status: **success**" in plan and "- output `mart.order_kpis`: " in plan
    assert pg_snapshot(url) == before  # loaded in full inside the trial's transaction, then rolled back


def test_lineage_sees_through_a_postgres_view(pg_warehouse: str, tmp_path: Path) -> None:
    with __import__("psycopg").connect(pg_warehouse, autocommit=True) as con:
        con.execute("CREATE SCHEMA shared")
        con.execute("CREATE VIEW shared.big_orders AS SELECT order_id, amount FROM raw.orders WHERE amount > 10")
    write_notebook(tmp_path / "big.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM shared.big_orders"),
                   code("output('mart.big', rows)"))
    (tmp_path / "definitions.py").write_text(
        "import os\nfrom pathlib import Path\nfrom nb_assets import NotebookAsset, notebook_definitions\n"
        "defs = notebook_definitions([NotebookAsset('big.ipynb')], warehouse=os.environ['TEST_WH'], base_dir=Path(__file__).parent)\n"
    )
    proc = _cli("lineage", "raw.orders", "--definitions", str(tmp_path / "definitions.py"), "--warehouse", pg_warehouse,
                cwd=tmp_path, env={"TEST_WH": pg_warehouse})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "big" in proc.stdout and "shared.big_orders (view)" in proc.stdout


def test_land_reads_the_notebooks_in_the_projects_dialect(pg_warehouse: str, tmp_path: Path) -> None:
    """A Postgres project's notebook may use SQL DuckDB cannot parse (full-text `@@`): read as DuckDB,
    it would read no table, and its source would be refused as one no notebook reads."""
    query = "SELECT * FROM raw.orders WHERE to_tsvector('simple', order_id::text) @@ to_tsquery('simple', '7')"
    write_notebook(tmp_path / "search.ipynb", code(RUNTIME), code(f"%%sql rows\n{query}"), code("output('mart.search', rows)"))
    (tmp_path / "definitions.py").write_text(
        "import os\nfrom pathlib import Path\nfrom nb_assets import NotebookAsset, notebook_definitions\n"
        "defs = notebook_definitions([NotebookAsset('search.ipynb', on_inputs_landed=True)], warehouse=os.environ['TEST_WH'],"
        " base_dir=Path(__file__).parent)\n"
    )
    (tmp_path / "new.csv").write_text("order_id,customer_id,amount,order_date\n100,1,2.5,2026-11-06\n")
    proc = _cli("land", "raw.orders", "--from", str(tmp_path / "new.csv"), "--definitions", str(tmp_path / "definitions.py"),
                cwd=tmp_path, env={"TEST_WH": pg_warehouse})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "raw.orders landed (landing 1): 1 rows appended from " + str(tmp_path / "new.csv") + "\n"
    assert len(pg_snapshot(pg_warehouse)["raw.orders"]) == 21
