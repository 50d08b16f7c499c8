"""The Schedule form's four steps on a Postgres warehouse, through the code path its buttons
use (schedule_runner.run_step, which runs `nb-assets schedule` one step further each time),
with NB_ASSETS_WAREHOUSE naming a real Postgres database as `nb-assets lab` sets it.

Check and Preview read the real catalog; Trial run loads into the scratch copy (on Postgres:
the same database, its loads rolled back), so the real database is unchanged after it;
Schedule writes the declaration and the test plan and commits them on a branch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from nb_assets.jupyter.schedule_runner import FormFields, run_step
from nb_assets.project.starter import write_starter
from support.warehouses import pg_snapshot

pytestmark = pytest.mark.slow

POLICY = """\
zones:
  finance: {mode: enforce}
purposes:
  reporting: [finance]
tables:
  raw.orders: [finance]
"""

DEFINITIONS = """\
import os
from pathlib import Path

from nb_assets import load_declarations_yaml, notebook_definitions

BASE_DIR = Path(__file__).parent
defs = notebook_definitions([*load_declarations_yaml(BASE_DIR / "declarations.yaml")],
                            warehouse=os.environ["NB_ASSETS_WAREHOUSE"], base_dir=BASE_DIR,
                            policy=BASE_DIR / "policy.yaml", sandbox="local")
"""


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "policy.yaml").write_text(POLICY)
    (root / "definitions.py").write_text(DEFINITIONS)
    (root / "declarations.yaml").write_text("notebooks: []\n")
    (root / ".gitignore").write_text(".nb_assets/\n__pycache__/\n")
    notebook = write_starter(root / "notebooks" / "top_orders.ipynb")  # reads raw.orders LIMIT $limit
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "project")):
        _git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", *args)
    return notebook


def test_check_preview_trial_and_schedule_on_a_postgres_warehouse(
    tmp_path: Path, pg_warehouse: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "project"
    notebook = _project(root)
    monkeypatch.setenv("NB_ASSETS_WAREHOUSE", pg_warehouse)
    fields = FormFields(owners=["a@example.com"], cron="0 6 * * *", purpose="reporting", params={"limit": "5"})
    before = pg_snapshot(pg_warehouse)
    assert "mart.top_orders" not in before

    check = run_step(notebook, root, "check", fields)
    assert check.ok, check.error
    preview = run_step(notebook, root, "preview", fields)
    assert preview.ok and preview.preview is not None, preview.error
    [drawn] = preview.preview["notebooks"]
    assert drawn["reads"] == [{"table": "raw.orders", "zones": ["finance"], "writer": None}]  # the real catalog's
    assert drawn["writes"] == [{"table": "mart.top_orders", "zones": ["finance"]}]

    progress: list[str] = []
    trial = run_step(notebook, root, "trial", fields, progress.append)
    assert trial.ok, trial.error
    assert "3/6 trial run into a scratch copy of the warehouse" in progress
    facts = trial.trial_lines()
    assert "status: **success**" in facts and any(f.startswith("output `mart.top_orders`: 5 rows") for f in facts), facts
    assert pg_snapshot(pg_warehouse) == before  # 5 rows loaded in the scratch copy's transaction, rolled back
    assert _git(root, "status", "--porcelain", "declarations.yaml") == ""  # the trial declares nothing

    schedule = run_step(notebook, root, "schedule", fields)
    assert schedule.ok, schedule.error
    assert schedule.branch == "schedule/top_orders" == _git(root, "branch", "--show-current").strip()
    committed = set(_git(root, "show", "--name-only", "--format=", "HEAD").split())
    assert committed == {"declarations.yaml", "plans/top_orders.md"}  # the notebook was committed already
    declared = (root / "declarations.yaml").read_text()
    for line in ("path: notebooks/top_orders.ipynb", "a@example.com", "cron: 0 6 * * *", "limit: 5", "purpose: reporting"):
        assert line in declared, declared
    plan = (root / "plans" / "top_orders.md").read_text()
    assert "output `mart.top_orders`: 5 rows" in plan
    assert pg_snapshot(pg_warehouse) == before  # Schedule's own trial was rolled back too
