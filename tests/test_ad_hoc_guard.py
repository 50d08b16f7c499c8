"""An ad hoc `nb-assets run` replaces only its own tables (issue 19, point 1).

The issue's reproduction: in a copy of the demo project, a notebook calling
output("raw.customers", df) and output("mart.orders_clean", df), run with
`--warehouse <copy of the demo warehouse>`, replaced the 250-row pii customers
table. Each test runs the real CLI against a real DuckDB file.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, warehouse_snapshot
from notebook_factory import RUNTIME, code, write_notebook
from test_cli import nb_assets

PAGES = "import pandas as pd\npages = pd.DataFrame({'page': list('abcdefg'), 'views': range(7)})"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's warehouse, seeded once (250 customers)."""
    path = tmp_path_factory.mktemp("seed") / "warehouse.duckdb"
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def demo(tmp_path: Path, seeded: Path) -> Path:
    """A copy of the demo project, and beside it a copy of its warehouse (`copy.duckdb`)."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, project / name)
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, project / "notebooks" / notebook.name)
    shutil.copy(seeded, tmp_path / "copy.duckdb")
    return project


def _clobber(project: Path) -> Path:
    return write_notebook(project / "notebooks" / "clobber.ipynb", code(RUNTIME), code(PAGES),
                          code("output('raw.customers', pages)"), code("output('mart.orders_clean', pages)"))


def _run(notebook: Path, warehouse: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return nb_assets("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local",
                     "--records", str(cwd / "records"), *extra, cwd=cwd)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_source_and_another_notebooks_table_are_refused_before_anything_runs(demo: Path) -> None:
    copy = demo.parent / "copy.duckdb"
    before, digest = warehouse_snapshot(copy), _digest(copy)
    proc = _run(_clobber(demo), copy, cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert "nb-assets run: " in proc.stderr and "would replace tables that are not its own; nothing ran" in proc.stderr
    assert "- raw.customers (250 rows now): a source read by customer_revenue (definitions.py)" in proc.stderr
    assert "- mart.orders_clean: written by notebook clean_orders (definitions.py); one table, one writer" in proc.stderr
    assert 'write a new table instead (e.g. output("mart.clobber", df)), or pass --force' in proc.stderr
    assert warehouse_snapshot(copy) == before and _digest(copy) == digest  # byte for byte
    assert not (demo / "records").exists()  # nothing ran, so nothing was recorded


def test_force_replaces_them_after_saying_what_it_replaces(demo: Path) -> None:
    copy = demo.parent / "copy.duckdb"
    proc = _run(_clobber(demo), copy, "--force", cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0
    assert "--force: " in proc.stderr and "will replace tables that are not its own" in proc.stderr
    assert "- raw.customers (250 rows now): a source read by customer_revenue" in proc.stderr
    assert "replaced raw.customers (250 rows before): a source read by customer_revenue (definitions.py)" in proc.stdout
    assert "wrote mart.orders_clean: written by notebook clean_orders" in proc.stdout  # it did not exist in the copy
    tables = warehouse_snapshot(copy)
    assert len(tables["raw.customers"]) == 7 and len(tables["mart.orders_clean"]) == 7


def test_a_declared_notebook_replaces_its_own_table_ad_hoc(demo: Path) -> None:
    copy = demo.parent / "copy.duckdb"
    proc = _run(demo / "notebooks" / "clean_orders.ipynb", copy, cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loaded mart.orders_clean" in proc.stdout


def test_without_a_project_only_the_notebook_that_loaded_a_table_replaces_it(tmp_path: Path, warehouse: Path) -> None:
    """No definitions.py: the warehouse says whose a table is (each load records it in the table's comment)."""
    first = write_notebook(tmp_path / "first.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    second = write_notebook(tmp_path / "second.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    by_hand = write_notebook(tmp_path / "by_hand.ipynb", code(RUNTIME), code(PAGES), code("output('raw.orders', pages)"))
    for attempt in (1, 2):  # its own table, again and again
        proc = _run(first, warehouse, cwd=tmp_path)
        assert proc.returncode == 0, f"run {attempt}: {proc.stdout}{proc.stderr}"
    before = warehouse_snapshot(warehouse)
    proc = _run(second, warehouse, cwd=tmp_path)
    assert proc.returncode == 1
    assert f"- mart.pages (7 rows now): already in {warehouse}, loaded by notebook first" in proc.stderr, proc.stderr
    proc = _run(by_hand, warehouse, cwd=tmp_path)
    assert proc.returncode == 1
    assert "- raw.orders (20 rows now): already in" in proc.stderr and "not loaded by a notebook" in proc.stderr, proc.stderr
    assert warehouse_snapshot(warehouse) == before
    with duckdb.connect(str(warehouse), read_only=True) as con:
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'pages'").fetchone()[0]
    assert comment == "nb-assets: written by notebook first"


def test_a_notebook_declared_with_mapped_outputs_runs_only_as_declared(tmp_path: Path, warehouse: Path) -> None:
    (tmp_path / "definitions.py").write_text(textwrap.dedent(f"""\
        from pathlib import Path
        from nb_assets import NotebookAsset, notebook_definitions

        defs = notebook_definitions([NotebookAsset("pages.ipynb", outputs={{"mart.pages": "mart.pages_eu"}})],
                                    warehouse={str(warehouse)!r}, base_dir=Path(__file__).parent)
        """))
    notebook = write_notebook(tmp_path / "pages.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    before = warehouse_snapshot(warehouse)
    proc = _run(notebook, warehouse, cwd=tmp_path)
    assert proc.returncode == 1
    assert "is declared with outputs= in" in proc.stderr and "run it as declared with --definitions" in proc.stderr, proc.stderr
    assert warehouse_snapshot(warehouse) == before
