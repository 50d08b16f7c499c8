"""The notebook as `nb-assets schedule --git` commits it: every output and execution count stripped.

A notebook saved after running in Jupyter shows what it read (table rows, a
customer's address), and git would keep that for good. So the commit takes a
copy without outputs, and the author's file keeps them: nobody has to clear
the form they just filled in. The Schedule form's own cell (`%nb_schedule`)
and `%nb_context` cells show the project, not the warehouse, so the warning
for a dry run does not count them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat

# A cell that only loads the runtime and shows the form or the context pane.
_TOOL_LINE = re.compile(r"^\s*(%nb_schedule|%nb_context|%load_ext\s+nb_assets\.notebook)\b")


def is_tool_cell(source: str) -> bool:
    """True for a cell of `%nb_schedule` / `%nb_context` lines (and the `%load_ext` they need)."""
    lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and all(_TOOL_LINE.match(line) for line in lines) and any("%nb_" in line for line in lines)


def saved_output_cells(notebook: Path) -> list[int]:
    """The cells (numbered from 1, as findings number them) whose saved outputs may show data:
    every code cell with outputs except the form's and the context pane's."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    return [n for n, cell in enumerate(cells, start=1)
            if isinstance(cell, dict) and cell.get("outputs") and not is_tool_cell(_source(cell))]


def without_outputs(notebook: Path) -> str | None:
    """The notebook's text with every output, execution count and saved widget state removed,
    or None when it has none of them (then the file itself is committed, byte for byte)."""
    doc = nbformat.read(str(notebook), as_version=nbformat.NO_CONVERT)
    stripped = False
    for cell in doc.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            cell["outputs"], cell["execution_count"], stripped = [], None, True
    if "widgets" in doc.get("metadata", {}):  # ipywidgets' saved state: the form's fields and results
        del doc["metadata"]["widgets"]
        stripped = True
    return nbformat.writes(doc) + "\n" if stripped else None


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
