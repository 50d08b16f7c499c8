"""Whether the notebook the magics read is empty as saved, and what to tell its author then.

JupyterLab creates a new notebook on disk with no cells and no metadata, and writes
what was typed only when it is saved: until then `nb-assets check` finds nothing but
`no-kernelspec`, which is true of the empty file and useless to its author. The form
and the pane read the notebook as saved, so they say "save it first" instead.
"""

from __future__ import annotations

import json
from pathlib import Path

SAVE_FIRST = "save the notebook first (File → Save Notebook), then press the button again"


def never_saved(notebook: Path) -> bool:
    """Whether the saved file has no cell with any source (a new notebook, never saved since
    its first cell was typed). A file that is not a notebook is not this case: check says why."""
    try:
        doc = json.loads(notebook.read_bytes())
    except (OSError, ValueError):
        return False
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, list):
        return False
    return not any(_source(cell).strip() for cell in cells if isinstance(cell, dict))


def save_first(notebook: Path, then: str = "press the button again") -> str:
    """`x.ipynb is empty as saved: save the notebook first (File → Save Notebook), then ...`."""
    return f"{notebook.name} is empty as saved: " + SAVE_FIRST.replace("press the button again", then)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)
