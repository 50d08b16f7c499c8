"""Runs inside the sandbox: the record's bounds, kept while outputs arrive and once more at the end.

Copied into the box next to the runner (sandbox/base.py RUNTIME_FILES), which
imports it; stdlib only at import time, nbformat and papermill inside functions.

Neither the box nor the host ever holds an unbounded executed notebook: each
cell keeps at most CELL_OUTPUT_CHARS of output and the notebook
NOTEBOOK_OUTPUT_CHARS in all. Past that, outputs are dropped and one visible
marker in the cell says how much was left out, as Jupyter front ends do for
large outputs. Error outputs are always kept (shortened), because they carry
the verdict.
"""

from __future__ import annotations

from typing import Any

CELL_OUTPUT_CHARS = 2 * 1024 * 1024  # per cell: text, data and tracebacks, counted in characters
NOTEBOOK_OUTPUT_CHARS = 16 * 1024 * 1024  # per notebook
ERROR_TEXT_CHARS = 16 * 1024  # an error's message, and each line of its traceback
ERROR_TRACEBACK_LINES = 200
OUTPUT_OVERHEAD = 64  # counted per output, so a flood of empty outputs is bounded too
FINAL_PASS_SLACK = 64 * 1024  # the last pass measures whole outputs, a little more than messages
TRUNCATED = "[nb_assets] output truncated"
ENGINE = "nb_assets_bounded"  # the papermill engine registered by register_bounded_engine


def output_chars(value: Any) -> int:
    """What an output costs in the record: the characters of its strings, plus a fixed overhead."""
    total = OUTPUT_OVERHEAD
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
            total += sum(len(k) for k in item if isinstance(k, str))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            total += 8
    return total


def shorten_error(content: dict) -> None:
    """An error output stays, but a hostile or runaway one cannot flood the record."""
    content["evalue"] = _shorten(str(content.get("evalue", "")))
    lines = [_shorten(str(line)) for line in (content.get("traceback") or [])]
    if len(lines) > ERROR_TRACEBACK_LINES:
        lines = [*lines[: ERROR_TRACEBACK_LINES // 2], f"{TRUNCATED}: {len(lines) - ERROR_TRACEBACK_LINES} lines",
                 *lines[-ERROR_TRACEBACK_LINES // 2:]]
    content["traceback"] = lines


def _shorten(text: str) -> str:
    if len(text) <= ERROR_TEXT_CHARS:
        return text
    return text[:ERROR_TEXT_CHARS] + f"... [{TRUNCATED}: {len(text) - ERROR_TEXT_CHARS} more characters]"


def marker_text(dropped: int) -> str:
    return (
        f"\n{TRUNCATED}: the record keeps {CELL_OUTPUT_CHARS // 1024 // 1024} MB of output per cell and "
        f"{NOTEBOOK_OUTPUT_CHARS // 1024 // 1024} MB per notebook; {dropped} more characters of this cell's "
        "output were not kept.\n"
    )


class OutputBudget:
    """Characters kept per cell and in all; what was dropped, and the marker that says so."""

    def __init__(self) -> None:
        self.kept: dict[int, int] = {}
        self.total = 0
        self.dropped: dict[int, int] = {}
        self.markers: dict[int, dict] = {}

    def room(self, cell: int) -> int:
        return max(0, min(CELL_OUTPUT_CHARS - self.kept.get(cell, 0), NOTEBOOK_OUTPUT_CHARS - self.total))

    def keep(self, cell: int, chars: int) -> None:
        self.kept[cell] = self.kept.get(cell, 0) + chars
        self.total += chars

    def cleared(self, cell: int) -> None:
        """The cell's outputs were cleared (clear_output): their room is free again."""
        self.total -= self.kept.pop(cell, 0)
        self.markers.pop(cell, None)

    def drop(self, outs: list, cell: int, chars: int, new_marker: Any) -> None:
        self.dropped[cell] = self.dropped.get(cell, 0) + chars
        marker = self.markers.get(cell)
        if marker is None:
            marker = self.markers[cell] = new_marker(marker_text(self.dropped[cell]))
            outs.append(marker)
        else:
            marker["text"] = marker_text(self.dropped[cell])


def bound_notebook(nb: Any) -> None:
    """The final guarantee, whatever path outputs took (display updates, widgets): trim in place.

    Outputs that arrived as messages are already within the budget; the slack
    keeps this pass from trimming them again for the few characters by which
    an output node is larger than its message.
    """
    from nbformat.v4 import new_output

    cell_cap, notebook_cap = CELL_OUTPUT_CHARS + FINAL_PASS_SLACK, NOTEBOOK_OUTPUT_CHARS + FINAL_PASS_SLACK
    total = 0
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs")
        if not outputs:
            continue
        kept_here, dropped, kept = 0, 0, []
        for out in outputs:
            size = output_chars(out)
            is_marker = out.get("output_type") == "stream" and str(out.get("text", "")).startswith(f"\n{TRUNCATED}")
            if out.get("output_type") == "error" or is_marker:
                kept.append(out)
            elif kept_here + size <= cell_cap and total + size <= notebook_cap:
                kept.append(out)
                kept_here += size
                total += size
            else:
                dropped += size
        if dropped:
            kept.append(new_output("stream", name="stderr", text=marker_text(dropped)))
        cell["outputs"] = kept
    widgets = nb.get("metadata", {}).get("widgets")
    if widgets is not None and output_chars(widgets) > cell_cap:
        del nb["metadata"]["widgets"]  # widget state is a view cache; the record does not need it


def register_bounded_engine() -> None:
    """A papermill engine whose client keeps each cell's outputs within the budget as they arrive."""
    from nbformat.v4 import new_output
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    def new_marker(text: str) -> Any:
        return new_output("stream", name="stderr", text=text)

    class BoundedClient(PapermillNotebookClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.budget = OutputBudget()

        def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
            if self.clear_before_next_output and not self.output_hook_stack[msg["parent_header"].get("msg_id")]:
                # nbclient would clear on the next kept output; clear now, so a dropped one cannot skip it
                outs[:] = []
                self.clear_display_id_mapping(cell_index)
                self.clear_before_next_output = False
                self.budget.cleared(cell_index)
            content = msg["content"]
            if msg["msg_type"] == "error":
                shorten_error(content)
                return super().output(outs, msg, display_id, cell_index)
            size = output_chars(content)
            room = self.budget.room(cell_index)
            if size <= room:
                self.budget.keep(cell_index, size)
                return super().output(outs, msg, display_id, cell_index)
            out = None
            if msg["msg_type"] == "stream" and room > OUTPUT_OVERHEAD:
                kept = room - OUTPUT_OVERHEAD
                content["text"] = str(content.get("text", ""))[:kept]
                self.budget.keep(cell_index, room)
                out = super().output(outs, msg, display_id, cell_index)
                size -= kept
            self.budget.drop(outs, cell_index, size, new_marker)
            return out

        def clear_output(self, outs: list, msg: dict, cell_index: int) -> None:
            if not msg["content"].get("wait"):
                self.budget.cleared(cell_index)
            super().clear_output(outs, msg, cell_index)

        def _update_display_id(self, display_id: str, msg: dict) -> None:
            if output_chars(msg["content"].get("data", {})) > CELL_OUTPUT_CHARS:
                msg["content"]["data"] = {"text/plain": f"{TRUNCATED}: a display update was too large to keep"}
            super()._update_display_id(display_id, msg)

    class BoundedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                     stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                     execution_timeout: Any = None, **kwargs: Any) -> Any:
            # The same argument handling as papermill's NBClientEngine, with our client.
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            try:
                return BoundedClient(nb_man, **final_kwargs).execute()
            finally:
                bound_notebook(nb_man.nb)  # before papermill's last save

    papermill_engines.register(ENGINE, BoundedEngine)
