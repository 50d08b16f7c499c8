"""`nb-assets lineage TABLE` shows the table's columns from the warehouse, with who writes and reads it:
a real process, a real DuckDB file and a real Postgres database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from support.notebook_factory import RUNTIME, code, write_notebook

DEFINITIONS = (
    "import os\nfrom pathlib import Path\nfrom nb_assets import NotebookAsset, notebook_definitions\n"
    "defs = notebook_definitions([NotebookAsset('totals.ipynb')], warehouse=os.environ['TEST_WH'], base_dir=Path(__file__).parent)\n"
)


def _project(root: Path) -> Path:
    write_notebook(root / "totals.ipynb", code(RUNTIME),
                   code("%%sql rows\nSELECT customer_id, sum(amount) AS total FROM raw.orders GROUP BY customer_id"),
                   code("output('mart.totals', rows)"))
    (root / "definitions.py").write_text(DEFINITIONS)
    return root


def _lineage(root: Path, warehouse: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEST_WH": warehouse}
    return subprocess.run([sys.executable, "-m", "nb_assets.cli", "lineage", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_source_tables_columns_writers_and_readers_on_duckdb(tmp_path: Path, warehouse: Path) -> None:
    root = _project(tmp_path)
    proc = _lineage(root, str(warehouse), "raw.orders", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["columns"] == [{"name": "order_id", "type": "BIGINT"}, {"name": "customer_id", "type": "BIGINT"},
                                 {"name": "amount", "type": "DOUBLE"}, {"name": "order_date", "type": "DATE"}]
    assert (report["written_by"], report["read_by"]) == ([], ["totals"])

    text = _lineage(root, str(warehouse), "raw.orders").stdout
    assert "  written by: no notebook (a source table: it lands)\n  read by:    totals\n" in text
    assert f"  columns (in {warehouse}):\n    order_id     BIGINT\n    customer_id  BIGINT\n" in text
    assert "→ totals (purpose: -) via raw.orders" in text  # the lineage itself is still there


def test_an_output_not_loaded_yet_a_table_no_notebook_reads_and_a_typo(tmp_path: Path, warehouse: Path) -> None:
    root = _project(tmp_path)
    text = _lineage(root, str(warehouse), "mart.totals", "--upstream").stdout
    assert "  written by: totals\n" in text and f"columns:    not shown: mart.totals is not in {warehouse} (yet)" in text

    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE raw.returns (order_id BIGINT, reason VARCHAR)")
    proc = _lineage(root, str(warehouse), "raw.returns")
    assert proc.returncode == 0, proc.stderr  # no notebook reads it, but it is there: its columns still help
    assert "no declared notebook reads or writes it" in proc.stdout and "    reason    VARCHAR" in proc.stdout

    typo = _lineage(root, str(warehouse), "raw.order")
    assert typo.returncode == 1
    assert f"no declared notebook reads or writes raw.order and {warehouse} has no such table (did you mean raw.orders?)" in typo.stderr


def test_a_warehouse_that_cannot_be_opened_still_gets_the_lineage(tmp_path: Path) -> None:
    root = _project(tmp_path)
    missing = tmp_path / "gone.duckdb"
    proc = _lineage(root, str(missing), "raw.orders")
    assert proc.returncode == 0, proc.stderr
    assert f"  columns:    not shown: warehouse {missing} does not exist" in proc.stdout and "read by:    totals" in proc.stdout


def test_columns_on_postgres_with_its_own_type_names(tmp_path: Path, pg_warehouse: str) -> None:
    import psycopg

    with psycopg.connect(pg_warehouse, autocommit=True) as con:
        con.execute("ALTER TABLE raw.orders ADD COLUMN note varchar(40), ADD COLUMN price numeric(10, 2)")
    root = _project(tmp_path)
    proc = _lineage(root, pg_warehouse, "raw.orders", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(c["name"], c["type"]) for c in report["columns"]] == [
        ("order_id", "bigint"), ("customer_id", "bigint"), ("amount", "double precision"), ("order_date", "date"),
        ("note", "character varying(40)"), ("price", "numeric(10,2)"),
    ]
    assert report["read_by"] == ["totals"]
