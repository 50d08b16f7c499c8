"""Running `dg` and `create-dagster` on a project made in a test, in the active environment.

The project uses this environment rather than a second one (`--no-uv-sync`): its `src/` and the
repository are put on PYTHONPATH (what `pip install -e .` would do, without touching the environment).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.paths import REPO

BIN = Path(sys.executable).parent


def env(project: Path) -> dict[str, str]:
    """The active environment: its `dg` first on PATH, the project's package importable, no PyPI update
    check, the local sandbox, and none of the settings a developer's shell may hold."""
    kept = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY")}
    paths = [str(project / "src"), str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    kept.update(
        PATH=f"{BIN}{os.pathsep}{kept.get('PATH', '')}", PYTHONPATH=os.pathsep.join(paths),
        DAGSTER_DG_UPDATE_CHECK_ENABLED="0", NB_ASSETS_SANDBOX="local", COLUMNS="200", NO_COLOR="1",
    )
    return kept


def run(words: list[str], cwd: Path, project: Path, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(words, cwd=cwd, env=env(project), capture_output=True, text=True, timeout=timeout)


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"`{shlex.join(done.args)}` exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


@contextmanager
def forgetting_package(package: str) -> Iterator[None]:
    """Loading a project in this process imports its package: forget it afterwards, so that the next
    copy of the project (same package name) loads its own."""
    try:
        yield
    finally:
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[name]
