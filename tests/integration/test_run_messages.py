"""What `nb-assets run` and `check` tell a newcomer (issue 19): a failure's cell, traceback and
run id; a misspelled table as "no such table ... (did you mean ...?)" wherever it is met;
an unreadable file as unreadable; `error.type` the exception; every message prefixed
with its command. Real CLI processes, real DuckDB, a real kernel in the local sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

from support.warehouses import warehouse_snapshot
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.analysis.parser import parse_notebook
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.warehouse.backends import open_warehouse
from support.cli import NB_ASSETS
from support.notebook_factory import RUNTIME, code, params, write_notebook

MISSPELLED = "no such table raw.order (did you mean raw.orders?)"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NB_ASSETS, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_failed_run_shows_the_cell_the_traceback_and_how_to_see_more(tmp_path: Path, warehouse: Path) -> None:
    notebook = write_notebook(tmp_path / "ratio.ipynb", code(RUNTIME), params("d = 0"), code("x = 1\ny = x / d\nprint(y)"))
    proc = cli("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", cwd=tmp_path)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"nb-assets run: {notebook}: cell 3 raised ZeroDivisionError: division by zero")
    assert f"{notebook}, cell 3, line 2:\n  1 | x = 1\n> 2 | y = x / d\n  3 | print(y)" in proc.stderr
    assert "Traceback (colour codes stripped):" in proc.stderr and "----> 2 y = x / d" in proc.stderr
    (details,) = [line for line in proc.stderr.splitlines() if line.startswith("details: ")]
    shown = cli(*details.removeprefix("details: nb-assets ").split(), cwd=tmp_path)  # the command, as printed
    assert shown.returncode == 0, shown.stderr
    assert "ratio failed (cli run)" in shown.stdout and "> 2 | y = x / d" in shown.stdout
    report = json.loads(cli("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", "--json", cwd=tmp_path).stdout)
    assert report["error"] | {"message": ""} == {"cell": 3, "kind": "cell-error", "type": "ZeroDivisionError", "message": ""}


def test_a_misspelled_table_is_no_such_table_in_run_and_check(tmp_path: Path, warehouse: Path) -> None:
    notebook = write_notebook(tmp_path / "typo.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM raw.order"),
                              code("output('mart.typo', o)"))
    proc = cli("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", cwd=tmp_path)
    print(proc.stderr)
    assert proc.returncode == 1 and f"cell 2: SQL input 'o': {MISSPELLED}" in proc.stderr
    checked = cli("check", str(notebook), "--json", cwd=tmp_path, env={"NB_ASSETS_WAREHOUSE": str(warehouse)})
    (finding,) = json.loads(checked.stdout)["notebooks"][0]["findings"]
    assert (finding["rule"], finding["severity"], finding["cell"]) == ("no-such-table", "warning", 2)
    assert MISSPELLED in finding["message"]
    assert checked.returncode == 0  # a warning: the table may be another notebook's output, not run yet


def test_a_misspelled_column_keeps_the_engines_candidates(tmp_path: Path, warehouse: Path) -> None:
    notebook = write_notebook(tmp_path / "col.ipynb", code(RUNTIME), code("%%sql o\nSELECT amont FROM raw.orders"))
    proc = cli("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", cwd=tmp_path)
    assert proc.returncode == 1
    assert 'Referenced column "amont" not found in FROM clause! Candidate bindings: "amount"' in proc.stderr, proc.stderr


def test_the_policy_gate_says_no_such_table_not_label_it(tmp_path: Path, warehouse: Path) -> None:
    """Without a label for the name the policy would say "add it under 'tables:'": no advice for a typo."""
    (tmp_path / "policy.yaml").write_text("zones:\n  finance: {mode: enforce}\npurposes:\n  reporting: [finance]\n"
                                          "tables:\n  raw.orders: [finance]\n")
    (tmp_path / "definitions.py").write_text(textwrap.dedent(f"""\
        from pathlib import Path
        from nb_assets import NotebookAsset, notebook_definitions

        BASE = Path(__file__).parent
        defs = notebook_definitions([NotebookAsset("typo.ipynb", purpose="reporting")], warehouse={str(warehouse)!r},
                                    base_dir=BASE, policy=BASE / "policy.yaml", sandbox="local")
        """))
    notebook = write_notebook(tmp_path / "typo.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM raw.order"))
    before = warehouse_snapshot(warehouse)
    proc = cli("run", str(notebook), "--definitions", str(tmp_path / "definitions.py"), "--json", cwd=tmp_path)
    error = json.loads(proc.stdout)["error"]
    assert MISSPELLED in error["message"] and "tables:" not in error["message"], error
    assert warehouse_snapshot(warehouse) == before


def test_postgres_says_no_such_table_with_the_closest_name(tmp_path: Path, pg_warehouse: str) -> None:
    """Postgres itself suggests nothing for a missing relation; the catalog read before the queries does."""
    notebook = write_notebook(tmp_path / "typo.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM raw.order"))
    run = run_pipeline(parse_notebook(notebook, "postgres"), warehouse=open_warehouse(pg_warehouse), sandbox=LocalSandbox(),
                       run_dir=tmp_path / "run")
    assert run.status == "failed" and MISSPELLED in str(run.error), run.error
    assert run.error.cell == 2


def test_check_says_an_unreadable_file_could_not_be_read(tmp_path: Path) -> None:
    (tmp_path / "broken.ipynb").write_text("{nope")
    proc = cli("check", str(tmp_path / "broken.ipynb"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "error: could not be read [invalid-notebook]:" in proc.stdout and "invalid JSON" in proc.stdout
    assert "(report)" not in proc.stdout and "writes:" not in proc.stdout


def test_every_error_names_its_command(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "p.ipynb", code(RUNTIME), params("n = 1"))
    for command in (["schedule", "p.ipynb", "--owner", "a@example.com"], ["lineage", "raw.x"], ["land", "raw.x"]):
        proc = cli(*command, "--definitions", str(tmp_path / "missing.py"), cwd=tmp_path)
        assert proc.stderr.startswith(f"nb-assets {command[0]}: definitions file not found"), proc.stderr
    proc = cli("run", str(notebook), "--param", "m=2", "--warehouse", str(tmp_path / "w.duckdb"), cwd=tmp_path)
    assert proc.stderr.startswith("nb-assets run: ") and "unknown parameter 'm'" in proc.stderr
