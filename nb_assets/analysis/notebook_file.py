"""The `.ipynb` file itself: its cells and metadata, and the kernel it names. JSON only, no analysis."""

from __future__ import annotations

import json
from typing import Iterator

from nb_assets.errors import NotebookParseError
from nb_assets.spec import Cell, Finding

PROJECT_KERNEL = "python3"  # what the runner starts (inbox_papermill.kernel_name)


def read_cells(path: str, raw: bytes) -> tuple[Cell, ...]:
    """Structural checks only; full JSON-schema validation is slow and not needed."""
    return read_notebook(path, raw)[0]


def read_notebook(path: str, raw: bytes) -> tuple[tuple[Cell, ...], dict]:
    """The cells (read_cells) and the notebook's metadata."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookParseError(f"{path}: not a notebook: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise NotebookParseError(f"{path}: not a Jupyter notebook (no 'cells' list)")
    if doc.get("nbformat") != 4:
        raise NotebookParseError(f"{path}: nbformat {doc.get('nbformat')!r} is not supported; save it as nbformat 4")
    cells = []
    for number, cell in enumerate(doc["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise NotebookParseError(f"{path}: cell {number} is not a valid notebook cell")
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = cell.get("metadata", {}).get("tags", [])
        cells.append(Cell(number, cell["cell_type"], source, tuple(str(t) for t in tags)))
    metadata = doc.get("metadata")
    return tuple(cells), metadata if isinstance(metadata, dict) else {}


def kernel_findings(metadata: dict) -> Iterator[Finding]:
    """Every notebook runs in the project's Python kernel (the runner tells papermill so);
    say so where the file names no kernel, or another language."""
    kernelspec = metadata.get("kernelspec")
    if not isinstance(kernelspec, dict) or not kernelspec.get("name"):
        yield Finding(
            "no-kernelspec", "warning",
            f"the notebook has no kernelspec metadata; it runs in the project's Python kernel ({PROJECT_KERNEL}). "
            "To record that in the file, open it in Jupyter, pick that kernel and save",
        )
    elif str(kernelspec.get("language") or "python").lower() != "python":
        yield Finding(
            "no-kernelspec", "warning",
            f"the notebook names a {kernelspec.get('language')} kernel ({kernelspec.get('name')}); "
            f"nb-assets runs every notebook in the project's Python kernel ({PROJECT_KERNEL})",
        )
