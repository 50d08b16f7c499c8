"""What a reader needs to see about a failed run, read from its record on the host.

The executed notebook holds the failing cell and IPython's traceback (with
ANSI colours, and `In [N]` counters that count papermill's injected cell).
This module turns them into plain text in the author's terms: the 1-based
cell number of the file they wrote, the cell's source with the failing line
marked, and the traceback without colour codes, trimmed to a readable length.

Pure: reads JSON files only; no Dagster, DuckDB or Docker. Used by the
Dagster failure, the notification, `nb-assets show` and `%nb_context`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb_assets.inbox.runner import authored_cells

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
IPYTHON_FRAME = re.compile(r"Cell In\s?\[(\d+)\], line (\d+)")
NOTEBOOK_FRAME = re.compile(r"(?:Cell In\s?\[\d+\]|cell \d+), line \d+")
CHAINED = re.compile(
    r"\n+(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\n+"
)
TRACEBACK_LINES = 40
TRACEBACK_CHARS = 4000
LINE_CHARS = 300
EXCERPT_LINES = 12


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def compact(traceback: str) -> str:
    """Keep the notebook's own frames whole; shorten library frames to where they are and
    the line they were on (`File .../frame.py:4102, in DataFrame.__getitem__` and `-> 4107 ...`);
    drop chained exceptions raised wholly inside libraries (pandas' KeyError behind KeyError)."""
    parts = CHAINED.split(traceback.strip("\n"))  # section, separator, section, ...
    sections, separators = parts[::2], parts[1::2]
    out: list[str] = []
    dropped = 0
    for i, section in enumerate(sections):
        if i < len(sections) - 1 and not NOTEBOOK_FRAME.search(section):
            dropped += 1
            continue
        out.append(_compact_frames(section))
        if i < len(separators):
            out.append(separators[i].strip())
    note = [f"({dropped} chained exception(s) raised inside libraries omitted)"] if dropped else []
    return "\n\n".join(note + out)


def _compact_frames(traceback: str) -> str:
    blocks = traceback.strip("\n").split("\n\n")
    kept = []
    for i, block in enumerate(blocks):
        lines = block.splitlines()
        library = lines and lines[0].startswith("File ") and 0 < i < len(blocks) - 1
        if library:
            marked = [line for line in lines[1:] if re.match(r"^-+> ", line)]
            kept.append("\n".join(lines[:1] + marked))
        else:
            kept.append(block)
    return "\n\n".join(kept)


def trim(text: str, max_lines: int = TRACEBACK_LINES, max_chars: int = TRACEBACK_CHARS) -> str:
    """Keep the head (where it started) and the tail (where it ended); say what was cut."""
    lines = [line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 3] + "..." for line in text.rstrip().splitlines()]
    if len(lines) > max_lines:
        head = max_lines // 4
        tail = max_lines - head - 1
        lines = [*lines[:head], f"... {len(lines) - head - tail} lines omitted ...", *lines[-tail:]]
    out = "\n".join(lines)
    if len(out) > max_chars:
        out = out[: max_chars // 4] + "\n... (trimmed) ...\n" + out[-(max_chars * 3 // 4):]
    return out


@dataclass(frozen=True)
class FailureContext:
    """The failing cell and traceback of one run, in the author's numbering."""

    notebook: str
    cell: int | None = None
    cell_source: str | None = None
    failing_line: int | None = None  # 1-based within the cell
    ename: str | None = None
    evalue: str | None = None
    traceback: str = ""  # colour codes stripped, trimmed

    def excerpt(self, max_lines: int = EXCERPT_LINES) -> str:
        """Numbered source lines around the failing one, which is marked with `>`."""
        if not self.cell_source:
            return ""
        lines = self.cell_source.splitlines() or [""]
        start = 0
        if self.failing_line and len(lines) > max_lines:
            start = min(max(self.failing_line - max_lines // 2, 1), len(lines) - max_lines + 1) - 1
        shown = lines[start: start + max_lines]
        width = len(str(start + len(shown)))
        out = [
            f"{'>' if start + i + 1 == self.failing_line else ' '} {start + i + 1:>{width}} | {line}"
            for i, line in enumerate(shown)
        ]
        if start > 0:
            out.insert(0, f"  {'.':>{width}} | ({start} line(s) above)")
        if start + len(shown) < len(lines):
            out.append(f"  {'.':>{width}} | ({len(lines) - start - len(shown)} more line(s))")
        return "\n".join(out)

    def heading(self) -> str:
        if self.cell is None:
            return self.notebook
        return f"{self.notebook}, cell {self.cell}" + (f", line {self.failing_line}" if self.failing_line else "")

    def describe(self) -> str:
        """The failing cell and the traceback, as one plain-text block."""
        parts = []
        if self.cell_source is not None:
            parts.append(f"{self.heading()}:\n{self.excerpt()}")
        if self.traceback:
            parts.append(f"Traceback (colour codes stripped):\n{self.traceback}")
        return "\n\n".join(parts)


def failure_context(
    notebook: str,
    cell: int | None,
    executed: Path | None = None,
    *,
    result_file: Path | None = None,
    ename: str | None = None,
    evalue: str | None = None,
) -> FailureContext:
    """Everything known about where `notebook` failed.

    `executed` is the executed notebook (absent when the run failed before the
    sandbox started: then the source comes from the authored file); the
    runner's `result_file` supplies a traceback when the notebook has none
    (the kernel died, papermill itself failed).
    """
    cells = notebook_cells(executed) if executed is not None else None
    authored = cells if cells is not None else notebook_cells(Path(notebook))
    numbered = list(authored_cells(authored or []))
    target = next((c for n, c in numbered if n == cell), None) if cell is not None else None
    error = _error_output(target) if target is not None else None
    if error is None and cells is not None and cell is None:
        cell, target, error = next(((n, c, e) for n, c in numbered if (e := _error_output(c))), (None, None, None))
    raw_traceback = "\n".join(error.get("traceback", [])) if error else _result_traceback(result_file)
    traceback = strip_ansi(raw_traceback)
    failing_line = _failing_line(traceback, target) if target is not None else None
    if cells is not None:
        traceback = _in_authored_terms(traceback, cells)
    return FailureContext(
        notebook=notebook,
        cell=cell,
        cell_source=cell_source(target) if target is not None else None,
        failing_line=failing_line,
        ename=(error or {}).get("ename") or ename,
        evalue=(error or {}).get("evalue") or evalue,
        traceback=trim(compact(traceback)) if traceback.strip() else "",
    )


def notebook_cells(path: Path) -> list[dict[str, Any]] | None:
    """A notebook's cells, or None: the sandbox wrote the executed one, it may be anything."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else None


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _error_output(cell: dict[str, Any]) -> dict[str, Any] | None:
    outputs = cell.get("outputs")
    if not isinstance(outputs, list):
        return None
    error = next((o for o in outputs if isinstance(o, dict) and o.get("output_type") == "error"), None)
    if error is None or not isinstance(error.get("traceback", []), list):
        return None
    return {**error, "traceback": [str(line) for line in error.get("traceback", [])]}


def _result_traceback(result_file: Path | None) -> str:
    if result_file is None:
        return ""
    try:
        error = json.loads(result_file.read_text(encoding="utf-8")).get("error") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    return str(error.get("traceback") or "") if isinstance(error, dict) else ""


def _failing_line(traceback: str, cell: dict[str, Any]) -> int | None:
    """IPython names each notebook frame `Cell In[<execution count>], line <n>`; the
    first frame of the failing cell's own count is the line to mark."""
    count = cell.get("execution_count")
    for match in IPYTHON_FRAME.finditer(traceback):
        if count is not None and int(match.group(1)) == count:
            return int(match.group(2))
    return None


def _in_authored_terms(traceback: str, cells: list[dict[str, Any]]) -> str:
    """`Cell In[7]` counts executions, including papermill's injected cell; say `cell 6`."""
    by_count: dict[int, str] = {}
    for cell in cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []) and cell.get("execution_count"):
            by_count[cell["execution_count"]] = "injected parameters cell"
    for number, cell in authored_cells(cells):
        if isinstance(cell.get("execution_count"), int):
            by_count[cell["execution_count"]] = f"cell {number}"

    def rename(match: re.Match[str]) -> str:
        name = by_count.get(int(match.group(1)))
        return f"{name}, line {match.group(2)}" if name else match.group(0)

    return IPYTHON_FRAME.sub(rename, traceback)
