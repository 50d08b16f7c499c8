"""The findings of a notebook as saved, one row per offending cell, as HTML.

Shared by the context pane's Check and the Schedule form's: both read the file
(what a scheduled run would run), not the kernel's state. The findings are
`nb-assets check`'s own (its `--json`, run as a command like the form's other
buttons), so the editor and the terminal say the same of a notebook: the
static rules, a literal read of a file a declared source holds, an undeclared
source, and a table the project's warehouse lacks (`no-such-table`).
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from nb_assets.jupyter.schedule_runner import command_env
from nb_assets.spec import Cell, Finding

BAD = "color:#c33"
CHECK_TIMEOUT_S = 300


def check_findings(notebook: Path) -> list[Finding] | str:
    """What `nb-assets check --json NOTEBOOK` finds in the notebook, or why it did not answer."""
    env = command_env()
    argv = [sys.executable, "-m", "nb_assets.cli", "check", "--json", str(notebook.resolve())]
    try:
        done = subprocess.run(argv, cwd=notebook.parent, env=env, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nb-assets check did not answer ({exc})"
    try:
        [report] = json.loads(done.stdout)["notebooks"]
    except (ValueError, KeyError, TypeError):
        said = done.stderr.strip().splitlines()
        return f"nb-assets check did not answer ({said[-1] if said else f'exit code {done.returncode}'})"
    return [Finding(f["rule"], f["severity"], f["message"], f["cell"], f["line"]) for f in report["findings"]]


def findings_html(notebook: Path, findings: Sequence[Finding] | str | None = None) -> str:
    """A table of (cell, severity, rule and message): `findings`, else `nb-assets check`'s. When
    check does not answer, the notebook's own static findings, and why the rest are missing."""
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.errors import NbAssetsError
    from nb_assets.jupyter.cell_links import finding_where

    found = check_findings(notebook) if findings is None else findings
    note = ""
    try:
        spec = parse_notebook(notebook)
    except (NbAssetsError, OSError, ValueError) as exc:
        if isinstance(found, str):
            return f"<p style='{BAD}'>{html.escape(str(exc))}</p>"
        spec = None
    if isinstance(found, str):
        note = f"<p style='{BAD}'>{html.escape(found)}: only the notebook's own static findings are shown.</p>"
        found = list(spec.findings) if spec is not None else []
    if not found:
        return note + "<p class='nb-findings-none'>Static checks: no findings in any cell.</p>"
    cells: Sequence[Cell] = spec.cells if spec is not None else ()
    rows = "".join(
        f"<tr class='nb-finding'><td>{html.escape(finding_where(f, cells))}</td>"
        f"<td style='{BAD if f.severity == 'error' else ''}'>{html.escape(f.severity)}</td>"
        f"<td><code>{html.escape(f.rule)}</code> {html.escape(f.message)}</td></tr>" for f in found)
    return (f"{note}<table class='nb-findings'><tr><th style='text-align:left'>where</th><th></th>"
            f"<th style='text-align:left'>finding</th></tr>{rows}</table>")

