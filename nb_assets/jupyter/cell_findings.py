"""The static findings of a notebook as saved, one row per offending cell, as HTML.

Shared by the context pane's Check and the Schedule form's: both read the
file (what a scheduled run would run), not the kernel's state.
"""

from __future__ import annotations

import html
from pathlib import Path

BAD = "color:#c33"


def findings_html(notebook: Path) -> str:
    """A table of (cell, severity, rule and message); a parse error is said instead."""
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.errors import NbAssetsError
    from nb_assets.jupyter.cell_links import spec_cell_label

    try:
        spec = parse_notebook(notebook)
    except (NbAssetsError, OSError, ValueError) as exc:
        return f"<p style='{BAD}'>{html.escape(str(exc))}</p>"
    if not spec.findings:
        return "<p class='nb-findings-none'>Static checks: no findings in any cell.</p>"
    rows = "".join(
        f"<tr class='nb-finding'><td>{html.escape(spec_cell_label(spec.cells, f.cell)) if f.cell is not None else 'notebook'}"
        f"{'' if f.line is None else f', line {f.line}'}</td>"
        f"<td style='{BAD if f.severity == 'error' else ''}'>{html.escape(f.severity)}</td>"
        f"<td><code>{html.escape(f.rule)}</code> {html.escape(f.message)}</td></tr>" for f in spec.findings)
    return (f"<table class='nb-findings'><tr><th style='text-align:left'>where</th><th></th>"
            f"<th style='text-align:left'>finding</th></tr>{rows}</table>")
