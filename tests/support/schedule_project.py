"""The demo project as a fresh git repository, for `nb-assets schedule`, and a notebook to schedule in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from support.paths import REPO


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The demo project as a fresh git repository with a seeded warehouse (ignored by git)."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, root / name)
    (root / ".gitignore").write_text("*.duckdb\n*.duckdb.wal\n.nb_assets/\n__pycache__/\n")
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(root / "warehouse.duckdb")],
                   check=True, capture_output=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "demo")
    git(root, "config", "user.name", "Scheduler Test")
    git(root, "config", "user.email", "scheduler@example.com")
    return root


def kpis_notebook(project: Path, body: str = "kpis = orders.groupby('status', as_index=False).amount.sum()") -> Path:
    return write_notebook(
        project / "notebooks" / "order_kpis.ipynb",
        md("# Order KPIs\nRevenue by status."),
        code(RUNTIME),
        params('ds = "2026-11-25"'),
        code("%%sql orders\nSELECT status, CAST(amount AS DOUBLE) AS amount FROM raw.orders WHERE order_date <= CAST($ds AS DATE)"),
        code(body),
        code("output('mart.order_kpis', kpis)"),
    )
