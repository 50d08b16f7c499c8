"""`nb-assets` as a user runs it: a fresh interpreter, its output captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.paths import REPO

NB_ASSETS = [sys.executable, "-m", "nb_assets.cli"]


def nb_assets(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NB_ASSETS, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
