"""Does a dg project load, as `dg check defs` loads it, with a defs.yaml that is not written yet?

`nb-assets schedule` asks (`components_load`) before it writes or rewrites a
component: the file is written into a copy of the project (its code, notebooks
and configuration; not its git history, virtualenvs, warehouse files or
nb-assets records), where `dg check defs` runs in a child process, with the
project's own warehouse and policy named in the environment. The project
itself is not touched until the answer is yes, so a running `dg dev` never sees
a component that would not load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from nb_assets.locations import is_postgres_url
from nb_assets.project.component_files import DgProject, project_settings
from nb_assets.project.project_settings import POLICY_ENV, WAREHOUSE_ENV

LOAD_TIMEOUT_S = 600  # as project/load_check.py: parsing every notebook and reading the warehouse's catalog
# Not needed to load the definitions, and large or holding warehouse data: never copied.
_NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "venv", ".nb_assets", "__pycache__", ".ipynb_checkpoints",
                                     "*.duckdb", "*.duckdb.wal", ".dagster_home", "node_modules")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # dagster's log colours, which it writes whatever NO_COLOR says


def components_load(project: DgProject, files: Mapping[Path, str], work_dir: Path) -> str | None:
    """None when `dg check defs` accepts the project with `files` (defs.yaml path → its text), else what it said."""
    copy = work_dir / "project"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project.root, copy, ignore=_NOT_COPIED, symlinks=True)
    for defs_yaml, text in files.items():
        candidate = copy / defs_yaml.resolve().relative_to(project.root.resolve())
        candidate.parent.mkdir(parents=True, exist_ok=True)
        candidate.write_text(text, encoding="utf-8")
    warehouse, policy, _ = project_settings(project)  # the project's, not the copy's (which has no warehouse)
    env = dict(os.environ, DAGSTER_DG_UPDATE_CHECK_ENABLED="0", NO_COLOR="1", COLUMNS="200")
    env[WAREHOUSE_ENV] = warehouse if is_postgres_url(warehouse) else str(Path(warehouse).resolve())
    if policy is not None:
        env[POLICY_ENV] = str(policy.resolve())
    # The copy's package first, so that what loads is the copy, not an installed original.
    source = copy / "src" if (copy / "src").is_dir() else copy
    env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    dg = shutil.which("dg", path=env["PATH"])
    if dg is None:
        return "`dg` is not installed in this environment (it comes with dagster-dg-cli), so the project cannot be checked"
    try:
        proc = subprocess.run([dg, "check", "defs"], cwd=copy, env=env, capture_output=True, text=True, timeout=LOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"`dg check defs` did not finish within {LOAD_TIMEOUT_S} s"
    if proc.returncode == 0:
        return None
    said = _ANSI.sub("", proc.stderr.strip() or proc.stdout.strip()).replace(str(copy.resolve()), str(project.root.resolve()))
    return "`dg check defs` refused it:\n" + "\n".join(said.splitlines()[-40:])
