"""A link that jumps to one cell of a notebook in JupyterLab, without an extension; a cell's name.

JupyterLab 4 opens a local link `NAME.ipynb#cell-id=ID` in the notebook (revealing it
when it is open) and scrolls to the cell whose id is ID; it selects the cell only when the cell
is not attached yet (Notebook.setFragment tests `cell.inViewport`, which stays true for every
attached cell outside the "full" windowing mode): in a notebook already open, a cell far from
the pane is brought into view but not selected. Cell ids are in every nbformat 4.5 file; an older file has
none, and then there is no link to make.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from nb_assets.inbox.runner import authored_cells
from nb_assets.runs.failure import cell_source, notebook_cells
from nb_assets.spec import Cell, Finding

FIRST_LINE_CHARS = 40  # enough to tell `%%sql events` from `output('mart.x', df)`


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


def cell_label(number: int, source: str | None) -> str:
    """`cell 6 (`%%sql events`)`: our numbers count markdown cells and JupyterLab's prompts do
    not, so the cell's first line is what finds it."""
    first = next((line.strip() for line in (source or "").splitlines() if line.strip()), "")
    if len(first) > FIRST_LINE_CHARS:
        first = first[: FIRST_LINE_CHARS - 1] + "…"
    return f"cell {number}" + (f" (`{first}`)" if first else "")


def spec_cell_label(cells: Iterable[Cell], number: int) -> str:
    """`cell_label` for cell `number` of a parsed notebook (spec.cells: the same numbering as findings)."""
    return cell_label(number, next((c.source for c in cells if c.number == number), None))


def finding_where(finding: Finding, cells: Iterable[Cell]) -> str:
    """`cell 4 (`import socket`), line 1`, or `notebook` for a finding of no cell."""
    where = "notebook" if finding.cell is None else spec_cell_label(cells, finding.cell)
    return where + ("" if finding.line is None else f", line {finding.line}")


def describe_finding(notebook: str, finding: Finding, cells: Iterable[Cell]) -> str:
    """Finding.describe, its cell named with its first line: `draft (cell 4 (`import socket`), line 1): [rule] ...`."""
    return f"{notebook} ({finding_where(finding, cells)}): [{finding.rule}] {finding.message}"


def cell_label_in(notebook: Path, number: int) -> str:
    """`cell_label` for the author's cell `number` of the notebook as saved now ('cell N' when unreadable)."""
    cells = dict(authored_cells(notebook_cells(notebook) or []))
    return cell_label(number, cell_source(cells[number]) if number in cells else None)


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
    first = cell_label_in(notebook, cell).removeprefix(f"cell {cell}")  # " (`%%sql events`)", or ''
    return (f"<p><a class='nb-context-cell-link' href='{href}'>go to cell {cell} in {html.escape(notebook.name)}</a>"
            f"{html.escape(first)}</p>")
