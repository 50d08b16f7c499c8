"""`nb-assets migrate-to-components`: a definitions.py + declarations.yaml project's notebooks become
NotebookComponent defs.yaml files in the dg project around it, which `dg` loads; what a component
cannot say is refused, naming the line, before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from support.paths import REPO

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

DEFINITIONS = """from pathlib import Path

from nb_assets import load_declarations_yaml, notebook_definitions

BASE_DIR = Path(__file__).parent
defs = notebook_definitions(
    load_declarations_yaml(BASE_DIR / "declarations.yaml"),
    warehouse=str(BASE_DIR / "warehouse.duckdb"),
    base_dir=BASE_DIR,
)
"""
DECLARATIONS = """notebooks:
  - path: notebooks/weekly_kpis.ipynb
    owners: [a@example.com]
    cron: 0 6 * * 1
    limits: {timeout_s: 300}
    checks:
      mart.weekly_kpis:
        - row_count: {min: 1}
"""


def _run(project: Path, *words: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY")}
    paths = [str(project / "src"), str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=os.pathsep.join(paths),
               DAGSTER_DG_UPDATE_CHECK_ENABLED="0", NB_ASSETS_SANDBOX="local", NO_COLOR="1", COLUMNS="200")
    return subprocess.run(list(words), cwd=cwd or project, env=env, capture_output=True, text=True, timeout=600)


def _migrate(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(project, sys.executable, "-m", "nb_assets.cli", "migrate-to-components", *args)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project dg made, holding a definitions.py project: its definitions, declarations, notebook, warehouse."""
    made = _run(tmp_path, str(BIN / "create-dagster"), "project", "--no-uv-sync", "weekly", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    root = tmp_path / "weekly"
    from nb_assets.project.starter import write_starter

    write_starter(root / "notebooks" / "weekly_kpis.ipynb", table="raw.orders", output=None)
    (root / "definitions.py").write_text(DEFINITIONS)
    (root / "declarations.yaml").write_text(DECLARATIONS)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT * FROM (VALUES (1, 10.5), (2, 20.0)) t(id, amount)")
    return root


def test_each_notebook_becomes_a_component_dg_loads(project: Path) -> None:
    done = _migrate(project)
    assert done.returncode == 0, done.stdout + done.stderr
    component = project / "src" / "weekly" / "defs" / "notebooks" / "weekly_kpis" / "defs.yaml"
    assert "wrote src/weekly/defs/notebooks/weekly_kpis/defs.yaml" in done.stdout, done.stdout
    assert "still declares these notebooks" in done.stdout
    written = yaml.safe_load(component.read_text())
    assert written == {"type": "nb_assets.NotebookComponent", "attributes": {
        "path": "../../../../../notebooks/weekly_kpis.ipynb", "owners": ["a@example.com"], "cron": "0 6 * * 1",
        "limits": {"timeout_s": 300}, "checks": {"mart.weekly_kpis": [{"row_count": {"min": 1}}]}}}
    listed = _run(project, "dg", "list", "defs")
    assert listed.returncode == 0 and "mart/weekly_kpis" in listed.stdout, listed.stdout + listed.stderr
    assert (project / "declarations.yaml").read_text() == DECLARATIONS  # never rewritten: the user retires it
    again = _migrate(project)
    assert again.returncode == 2 and f"{component}: declares notebooks/weekly_kpis.ipynb already" in again.stderr, again.stderr


def test_what_a_component_cannot_say_is_refused_and_nothing_is_written(project: Path) -> None:
    (project / "definitions.py").write_text(DEFINITIONS.replace("    base_dir=BASE_DIR,\n",
                                                                "    base_dir=BASE_DIR,\n    sensor_interval_s=30,\n"))
    refused = _migrate(project)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "1 thing(s) a component cannot say yet; nothing written" in refused.stderr
    assert f"{project / 'definitions.py'}:10: notebook_definitions(sensor_interval_s=...) has no component attribute" \
        in refused.stderr, refused.stderr
    assert not (project / "src" / "weekly" / "defs" / "notebooks").exists()

    plain = project.parent / "plain"
    plain.mkdir()
    (plain / "definitions.py").write_text(DEFINITIONS)
    refused = _migrate(project, str(plain))
    assert refused.returncode == 2 and "is not in a project dg made" in refused.stderr, refused.stderr
