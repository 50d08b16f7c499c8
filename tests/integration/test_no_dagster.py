"""The CLI and Jupyter never load Dagster: each command, run for real on a copy of the demo project in
a fresh interpreter, ends with no `dagster*` module loaded. Only `schedule`'s load check loads Dagster,
in its child process (nb_assets.defs.load_check). And no import the CLI or the runtime can make, even
one on a path these runs do not take, leads to Dagster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from support.paths import REPO
from support.notebook_factory import RUNTIME, code, md, params, write_notebook

# Runs before the command: records which nb_assets frames first asked for Dagster, for the failure message.
_TRACE = """
import json, sys, traceback
first = []
class _Tracer:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("dagster") and not first:
            first.append(" <- ".join(f"{f.filename.rpartition('nb_assets/')[2]}:{f.lineno}" for f in
                                     reversed(traceback.extract_stack()) if "/nb_assets/" in f.filename))
sys.meta_path.insert(0, _Tracer())
"""
_REPORT = """
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith("dagster"))
print("\\n" + json.dumps({"rc": rc, "dagster": loaded[:5], "first": first}))
"""


def _fresh(body: str, cwd: Path) -> tuple[int, str, dict]:
    """`body` (which sets `rc`) in a new interpreter; its exit code, stdout, and what it loaded of Dagster."""
    env = {k: v for k, v in os.environ.items() if k != "NB_ASSETS_WAREHOUSE"} | {"NB_ASSETS_SANDBOX": "local"}
    proc = subprocess.run([sys.executable, "-c", _TRACE + textwrap.dedent(body) + _REPORT], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out, _, last = proc.stdout.rstrip().rpartition("\n")
    report = json.loads(last)
    return report["rc"], out + proc.stderr, report


def _cli(cwd: Path, *args: str) -> tuple[int, str, dict]:
    return _fresh(f"from nb_assets.cli.main import main\nrc = main({list(args)!r})\n", cwd)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project (its notebooks, definitions.py, policy) over a freshly seeded DuckDB warehouse."""
    root = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, root / name)
    seed = [sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(root / "warehouse.duckdb")]
    subprocess.run(seed, check=True, capture_output=True)
    subprocess.run([*seed, "--new-orders", str(root / "new_orders.csv")], check=True, capture_output=True)
    return root


def _big_orders(path: Path) -> Path:
    return write_notebook(path, md("# Big orders"), code(RUNTIME), params("min_amount = 10.0"),
                          code("%%sql orders\nSELECT order_id, amount FROM raw.orders WHERE amount >= $min_amount"),
                          code("output('mart.big_orders', orders)"))


def _no_dagster(loaded: dict) -> None:
    assert loaded["dagster"] == [], f"loaded {loaded['dagster']}; first asked for by {loaded['first']}"


def test_check(demo: Path) -> None:
    rc, out, loaded = _cli(demo, "check", "notebooks")
    assert rc == 0 and "clean_orders" in out, out
    _no_dagster(loaded)


def test_run_ad_hoc(demo: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.orders AS SELECT range AS order_id, range * 1.5 AS amount FROM range(20)")
    notebook = _big_orders(tmp_path / "big_orders.ipynb")
    rc, out, loaded = _cli(tmp_path, "run", str(notebook), "--warehouse", str(tmp_path / "warehouse.duckdb"),
                           "--sandbox", "local", "--records", str(tmp_path / "records"))
    assert rc == 0 and "loaded mart.big_orders (13 rows)" in out, out
    _no_dagster(loaded)


def test_run_as_declared(demo: Path) -> None:
    rc, out, loaded = _cli(demo, "run", "notebooks/clean_orders.ipynb", "--definitions", "definitions.py", "--sandbox", "local")
    assert rc == 0 and "success" in out and "loaded mart.orders_clean" in out, out
    _no_dagster(loaded)


def test_lineage(demo: Path) -> None:
    rc, out, loaded = _cli(demo, "lineage", "raw.orders")
    assert rc == 0 and "clean_orders" in out, out
    _no_dagster(loaded)


def test_land(demo: Path) -> None:
    rc, out, loaded = _cli(demo, "land", "raw.orders", "--from", "new_orders.csv")
    assert rc == 0 and "rows appended from new_orders.csv" in out, out
    _no_dagster(loaded)


def test_backfill(demo: Path) -> None:
    rc, out, loaded = _cli(demo, "backfill", "notebooks/daily_orders.ipynb", "--from", "2026-11-20", "--to", "2026-11-21",
                           "--sandbox", "local")
    assert rc == 0 and "2026-11-20" in out and "2026-11-21" in out, out
    _no_dagster(loaded)


def test_schedule_loads_dagster_only_in_its_load_check_child(demo: Path) -> None:
    """Checks, preview and the trial run in the CLI's process; step 4 asks the child, which loads the project
    as Dagster does (a project Dagster would refuse is refused there: test_schedule_refusals)."""
    _big_orders(demo / "notebooks" / "big_orders.ipynb")
    rc, out, loaded = _cli(demo, "schedule", "notebooks/big_orders.ipynb", "--owner", "a@example.com",
                           "--purpose", "finance_reporting")
    assert rc == 0, out
    assert "3/6 trial" in out and "notebooks/big_orders.ipynb: success" in out, out
    assert "4/6 load" in out and "6/6 dry run" in out, out
    verdict = next((demo / ".nb_assets" / "schedule" / "big_orders").glob("*/load/load_check.json"))
    assert json.loads(verdict.read_text()) == {"ok": True}  # the child's: it loaded the project with Dagster
    _no_dagster(loaded)


def test_jupyter_sql_and_nb_context(demo: Path) -> None:
    rc, out, loaded = _fresh("""
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.extension_manager.load_extension("nb_assets.notebook")
        shell.user_ns["least"] = 1000
        shell.run_cell_magic("sql", "orders", "SELECT * FROM raw.orders WHERE amount > $least")  # the warehouse, read-only
        print("rows", len(shell.user_ns["orders"]))
        shell.run_line_magic("nb_context", "notebooks/clean_orders.ipynb")
        rc = 0
    """, demo)
    assert rc == 0 and "rows " in out and "owners: data-eng@example.com" in out, out
    _no_dagster(loaded)


def test_no_cli_or_jupyter_module_imports_dagster_even_inside_a_function() -> None:
    """The runs above cannot see an import that a code path they did not take makes (the public
    notebook_definitions builds only when no CLI captures the call): the import graph can."""
    import grimp

    graph = grimp.build_graph("nb_assets", include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None)
    for entry in ("nb_assets.cli.main", "nb_assets.notebook"):
        chain = graph.find_shortest_chain(importer=entry, imported="dagster")
        assert chain is None, " -> ".join(chain)
