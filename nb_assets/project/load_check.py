"""Does the project load as Dagster loads it, with a declarations file that is not written yet?

`nb-assets schedule` asks (`project_loads`) before it writes a declaration: a
declaration Dagster refuses would take every asset and sensor of the project
down. The answer comes from a child process (nb_assets.defs.load_check) that
imports the definitions file and resolves its Definitions, which imports
Dagster, so the CLI never does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOAD_TIMEOUT_S = 600  # a generous bound on parsing every notebook and reading the warehouse's catalog


def project_loads(definitions: Path, declarations: Path, text: str, work_dir: Path) -> str | None:
    """None when the project at `definitions` loads with `text` as its `declarations` file,
    else the error the load gives."""
    work_dir.mkdir(parents=True, exist_ok=True)
    candidate, result = work_dir / "candidate_declarations.yaml", work_dir / "load_check.json"
    candidate.write_text(text, encoding="utf-8")
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", "nb_assets.defs.load_check", str(definitions.resolve()),
               "--declarations", str(declarations.resolve()), "--candidate", str(candidate), "--result", str(result)]
    try:
        proc = subprocess.run(command, cwd=definitions.resolve().parent, capture_output=True, text=True, timeout=LOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"loading {definitions} did not finish within {LOAD_TIMEOUT_S} s"
    if not result.exists():
        said = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return f"loading {definitions} stopped (exit code {proc.returncode}) before giving a verdict: {said or 'no output'}"
    verdict = json.loads(result.read_text(encoding="utf-8"))
    return None if verdict["ok"] else str(verdict["error"])
