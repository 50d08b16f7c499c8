"""A link that jumps to one cell of a notebook in JupyterLab, without an extension.

JupyterLab 4 opens a local link `NAME.ipynb#cell-id=ID` in the notebook (revealing it
when it is open) and selects and scrolls to the cell whose id is ID. Cell ids are in
every nbformat 4.5 file; an older file has none, and then there is no link to make.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from nb_assets.inbox.runner import authored_cells
from nb_assets.runs.failure import notebook_cells


def failed_cell_id(notebook: Path, cell: int, executed: Path | None = None) -> str | None:
    """The id, in the notebook as saved now, of the author's cell number `cell` of a run.

    The executed notebook's cell keeps the id it had when the run started, which still
    finds the cell after cells were added above it; else the saved file's cell `cell`."""
    saved = [c for _, c in authored_cells(notebook_cells(notebook) or [])]
    ids = [c.get("id") for c in saved]
    ran = dict(authored_cells(notebook_cells(executed) or [])) if executed is not None else {}
    kept = ran[cell].get("id") if cell in ran else None
    if isinstance(kept, str) and kept in ids:
        return kept
    here = ids[cell - 1] if 0 < cell <= len(ids) else None
    return here if isinstance(here, str) and here else None


def cell_href(notebook: Path, cell_id: str, relative_to: Path) -> str:
    """The link to the cell, relative to the folder of the notebook that shows it (Jupyter
    resolves an output's links against it)."""
    target = Path(os.path.relpath(notebook, relative_to)).as_posix()
    return f"{quote(target)}#cell-id={quote(cell_id, safe='')}"


def failed_cell_link(notebook: Path, cell: int, executed: Path | None = None) -> str:
    """`go to cell N` as HTML, for the pane shown in `notebook` itself; '' when there is no id."""
    cell_id = failed_cell_id(notebook, cell, executed)
    if cell_id is None:
        return ""
    href = html.escape(cell_href(notebook, cell_id, notebook.parent))
    return f"<p><a class='nb-context-cell-link' href='{href}'>go to cell {cell} in {html.escape(notebook.name)}</a></p>"
