"""`nb-assets check`'s missing-table warning says where the warehouse it compared with came from:
NB_ASSETS_WAREHOUSE when it is set, else the warehouse definitions.py names (never the variable when unset).
Real CLI processes on a real DuckDB file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from support.cli import NB_ASSETS
from support.notebook_factory import RUNTIME, code, write_notebook

DEFINITIONS = """\
from pathlib import Path

from nb_assets import notebook_definitions

HERE = Path(__file__).parent
defs = notebook_definitions([], warehouse=HERE / "warehouse.duckdb", base_dir=HERE)
"""


def _check(notebook: Path, cwd: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "NB_ASSETS_WAREHOUSE"}
    proc = subprocess.run([*NB_ASSETS, "check", str(notebook)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**clean, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a warning, not an error
    return proc.stdout


def test_the_warning_names_where_the_warehouse_came_from(tmp_path: Path, warehouse: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(warehouse, project / "warehouse.duckdb")
    (project / "definitions.py").write_text(DEFINITIONS)
    notebook = write_notebook(project / "typo.ipynb", code(RUNTIME), code("%%sql o\nSELECT * FROM raw.order"))

    shown = _check(notebook, project)
    assert (f"warning: cell 2: [no-such-table] SQL input 'o': no such table raw.order (did you mean raw.orders?) "
            f"in the warehouse definitions.py names ({project / 'warehouse.duckdb'})") in shown, shown
    assert "NB_ASSETS_WAREHOUSE" not in shown, shown

    shown = _check(notebook, project, NB_ASSETS_WAREHOUSE=str(warehouse))
    assert f"(did you mean raw.orders?) in NB_ASSETS_WAREHOUSE ({warehouse})" in shown, shown
