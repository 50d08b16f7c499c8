"""A user's definitions.py type-checks against nb_assets under `mypy --strict`.

The package ships py.typed, and `nb_assets/__init__` names its lazily loaded public
API under TYPE_CHECKING, so a type checker sees `NotebookAsset`, `notebook_definitions`
and the rest with their real types. Only the user's files are checked (the package's
own modules are followed silently), as they would be in a user's project.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.paths import REPO

USER_FILE = '''\
from pathlib import Path

import dagster as dg

from nb_assets import DailyPartitions, NotebookAsset, SandboxLimits, notebook_definitions, parse_notebook

spec = parse_notebook(Path("notebooks/weekly.ipynb"))
name: str = spec.name
weekly = NotebookAsset(
    "notebooks/weekly.ipynb",
    owners=["analytics@example.invalid"],
    cron="0 6 * * 1",
    partitions=DailyPartitions(start="2026-01-01"),
    limits=SandboxLimits(timeout_s=60),
)
defs: dg.Definitions = notebook_definitions([weekly], warehouse="warehouse.duckdb")
'''

# Wrong on purpose: proves the checker sees real types, not Any.
WRONG_FILE = '''\
from nb_assets import NotebookAsset, SandboxLimits

limits = SandboxLimits(timeout_s="an hour")
count: int = NotebookAsset("notebooks/weekly.ipynb")
'''


def _mypy(folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    # MYPYPATH: an editable install is an import hook mypy does not follow; a wheel would be found as is.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(folder / ".mypy_cache"),
         *files],
        cwd=folder, capture_output=True, text=True, timeout=600, env={"MYPYPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_a_users_definitions_type_check_strictly_and_mistakes_are_caught(tmp_path: Path) -> None:
    assert (REPO / "nb_assets" / "py.typed").is_file()
    (tmp_path / "definitions.py").write_text(USER_FILE)
    (tmp_path / "demo_definitions.py").write_text((REPO / "definitions.py").read_text())
    (tmp_path / "wrong.py").write_text(WRONG_FILE)
    result = _mypy(tmp_path, "definitions.py", "demo_definitions.py", "wrong.py")
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if not e.startswith("wrong.py")], result.stdout + result.stderr
    wrong = "\n".join(e for e in errors if e.startswith("wrong.py"))
    assert 'wrong.py:3: error: Argument "timeout_s" to "SandboxLimits" has incompatible type "str"' in wrong, result.stdout
    assert 'wrong.py:4: error: Incompatible types in assignment (expression has type "NotebookAsset"' in wrong, result.stdout
