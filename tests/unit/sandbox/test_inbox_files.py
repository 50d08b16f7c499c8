"""The in-box runner imports only what is copied into the box next to it (sandbox/base.py RUNTIME_FILES)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nb_assets.sandbox.base import RUNNER_FILE, RunFolder


def test_the_runner_imports_from_its_copied_runtime_alone(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run").create()
    folder.install_inbox_files()
    # -S: no site-packages, so not the nb_assets installed on this host: only the copies can answer.
    probe = (f"import sys; sys.path.insert(0, {str(folder.runtime_dir)!r}); import {Path(RUNNER_FILE).stem} as r; "
             "import nb_assets.inbox.record_bounds as b; print(b.__file__); print(r.ENGINE)")
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    where, engine = done.stdout.split()
    assert Path(where).is_relative_to(folder.runtime_dir) and engine == "nb_assets_bounded"
