"""`nb-assets schedule` in a project `dg` made: it declares the notebook as a NotebookComponent.

The project is made as docs/components.md makes one (`create-dagster project --no-uv-sync`,
offline), with a notebook in its `notebooks/` folder and `raw.orders` in its warehouse.
`--write` writes `defs/notebooks/<name>/defs.yaml`, which `dg check defs` accepts and `dg list
defs` shows; a second `--write` is refused naming that file; `--update` rewrites it, after the
same checks and `dg check defs` on a copy of the project with the new file.
"""

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


def _env(project: Path) -> dict[str, str]:
    """This environment's `dg` first, the project's package importable (as `pip install -e .` would make it),
    no look for a newer release, the local sandbox."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY")}
    paths = [str(project / "src"), str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=os.pathsep.join(paths),
               DAGSTER_DG_UPDATE_CHECK_ENABLED="0", NB_ASSETS_SANDBOX="local", NO_COLOR="1", COLUMNS="200")
    return env


def _run(project: Path, *words: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(words), cwd=cwd or project, env=_env(project), capture_output=True, text=True, timeout=600)


def _schedule(project: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return _run(project, sys.executable, "-m", "nb_assets.cli", "schedule", "notebooks/weekly_kpis.ipynb",
                "--owner", "a@example.com", *flags)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    made = _run(tmp_path, str(BIN / "create-dagster"), "project", "--no-uv-sync", "weekly", cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    root = tmp_path / "weekly"
    from nb_assets.project.starter import write_starter

    write_starter(root / "notebooks" / "weekly_kpis.ipynb", table="raw.orders", output=None)
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT * FROM (VALUES (1, 10.5), (2, 20.0)) t(id, amount)")
    return root


def test_write_declares_a_component_dg_loads_and_update_rewrites_it(project: Path) -> None:
    component = project / "src" / "weekly" / "defs" / "notebooks" / "weekly_kpis" / "defs.yaml"
    written = _schedule(project, "--cron", "0 6 * * 1", "--write")
    assert written.returncode == 0, written.stdout + written.stderr
    assert "4/6 load" in written.stdout and f"6/6 declared in {component}:4" in written.stdout, written.stdout
    assert component.read_text() == (
        "type: nb_assets.NotebookComponent\n\nattributes:\n  path: ../../../../../notebooks/weekly_kpis.ipynb\n"
        "  owners: [a@example.com]\n  cron: 0 6 * * 1\n")

    checked = _run(project, "dg", "check", "defs")
    assert checked.returncode == 0 and "All definitions loaded successfully" in checked.stdout + checked.stderr, \
        checked.stdout + checked.stderr
    listed = _run(project, "dg", "list", "defs")
    assert listed.returncode == 0 and "mart/weekly_kpis" in listed.stdout and "raw/orders" in listed.stdout, listed.stdout

    again = _schedule(project, "--cron", "0 7 * * 1", "--write")
    assert again.returncode == 2 and f"{component}:4: notebooks/weekly_kpis.ipynb is already declared " \
        "there" in again.stderr and "--update" in again.stderr, again.stderr

    component.write_text(component.read_text().replace("type:", "# reviewed by finance\ntype:"))
    updated = _schedule(project, "--cron", "0 7 * * 1", "--group", "kpis", "--update", "--write")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert f"6/6 updated its declaration in {component}:5" in updated.stdout, updated.stdout
    assert component.read_text().startswith("# reviewed by finance\ntype: nb_assets.NotebookComponent\n\nattributes:\n")
    assert yaml.safe_load(component.read_text())["attributes"] == {
        "path": "../../../../../notebooks/weekly_kpis.ipynb", "owners": ["a@example.com"], "group": "kpis", "cron": "0 7 * * 1"}


def test_update_in_a_dg_project_refuses_what_the_load_refuses_and_leaves_the_file(project: Path) -> None:
    component = project / "src" / "weekly" / "defs" / "notebooks" / "weekly_kpis" / "defs.yaml"
    assert _schedule(project, "--write").returncode == 0
    before = component.read_bytes()
    refused = _schedule(project, "--cron", "0 6 30 2 *", "--update", "--write")
    assert refused.returncode == 2 and "cron='0 6 30 2 *' is not a cron schedule" in refused.stderr, refused.stderr
    assert f"{component}:4: " in refused.stderr and component.read_bytes() == before
    # An asset key a Python file of the defs folder defines: only Dagster's load knows it, checked by
    # `dg check defs` on a copy of the project with the new defs.yaml, after the trial.
    (component.parents[2] / "taken.py").write_text(
        "import dagster as dg\n\n\n@dg.asset(key=['mart', 'taken'])\ndef taken() -> None:\n    pass\n")
    refused = _schedule(project, "--output", "mart.weekly_kpis=mart.taken", "--update", "--write")
    assert refused.returncode == 2 and "3/6 trial" in refused.stdout and "4/6 load" in refused.stdout, refused.stdout
    assert "Dagster would not load the project with this declaration; nothing declared" in refused.stderr
    assert "`dg check defs` refused it" in refused.stderr and "Duplicate asset key: AssetKey(['mart', 'taken'])" in refused.stderr, refused.stderr
    assert "\x1b[" not in refused.stderr
    assert component.read_bytes() == before
