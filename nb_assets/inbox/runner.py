"""Runs inside the sandbox: papermill on the prepared notebook, a bounded record, then a verdict file.

Standalone on purpose (stdlib + papermill only): it is copied into each run
folder and executed by the sandbox's own Python, which has no nb_assets,
Dagster or warehouse driver installed.

    python inbox_papermill.py [--wait] PARAMETERIZED.ipynb PARAMETERS.json EXECUTED.ipynb RESULT.json

It starts the kernel first and imports papermill while the kernel boots.
With --wait (the Docker sandbox, whose container boots before its job is
there) it does that, then waits for a line on stdin (the supervisor's "go",
sent once the job is copied in), so that boot is off the run's critical path. Without a "go" (stdin closed) it
leaves without running anything.

The record is bounded here, before anything is written, so neither the box
nor the host ever holds an unbounded executed notebook: each cell keeps at
most CELL_OUTPUT_CHARS of output and the notebook NOTEBOOK_OUTPUT_CHARS in
all. Past that, outputs are dropped and one visible marker in the cell says
how much was left out, as Jupyter front ends do for large outputs. Error
outputs are always kept (shortened), because they carry the verdict.

The verdict is final once result.json is renamed into place; the process then
leaves with os._exit. Interpreter teardown is skipped on purpose: native
thread pools (Arrow's, which papermill imports) can abort at exit, and that
noise must not turn a finished run into a crash.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

CELL_OUTPUT_CHARS = 2 * 1024 * 1024  # per cell: text, data and tracebacks, counted in characters
NOTEBOOK_OUTPUT_CHARS = 16 * 1024 * 1024  # per notebook
ERROR_TEXT_CHARS = 16 * 1024  # an error's message, and each line of its traceback
ERROR_TRACEBACK_LINES = 200
OUTPUT_OVERHEAD = 64  # counted per output, so a flood of empty outputs is bounded too
FINAL_PASS_SLACK = 64 * 1024  # the last pass measures whole outputs, a little more than messages
TRUNCATED = "[nb_assets] output truncated"
ENGINE = "nb_assets_bounded"
IOPUB_DRAIN_S = 120
RUNNER_ERROR = "runner-error"

_NOT_AUTHORED = ("injected-parameters", "papermill-error-cell-tag")
# Wall-clock marks of the runner's stages: where a Docker run's time went (benchmarks/cold_docker.py).
TIMELINE: dict[str, float] = {"runner": round(time.time(), 4)}
TIMELINE_FILE = "timeline.json"  # next to the verdict; the Docker supervisor reads it (inbox/supervisor.py)


def mark(name: str) -> None:
    TIMELINE[name] = round(time.time(), 4)


def write_timeline(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(TIMELINE, f)
    except OSError:  # the notebook put something there: no timeline, nothing else lost
        pass


def authored_cells(cells: list) -> Iterator[tuple[int, dict]]:
    """(1-based number in the author's file, cell) for each cell the author wrote.

    papermill adds an `injected-parameters` cell and, on error, marker cells;
    none of them are the author's, so they are not counted.
    """
    number = 0
    for cell in cells:
        if any(t in _NOT_AUTHORED for t in cell.get("metadata", {}).get("tags", [])):
            continue
        number += 1
        yield number, cell


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


def _original_cell_number(executed_path: str, cell_index: int) -> int:
    """The failing cell's 1-based number in the author's file."""
    try:
        with open(executed_path, encoding="utf-8") as f:
            cells = json.load(f)["cells"]
    except (OSError, ValueError, KeyError):
        return cell_index + 1
    for number, cell in authored_cells(cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return number
    return cell_index + 1


def kernel_name() -> str:
    return os.environ.get("NB_ASSETS_KERNEL", "python3")


def start_kernel() -> Any:
    """A started kernel for papermill to use (it skips its own start when given one), or None.

    Started as nbclient would: an async manager on this thread's loop, history
    in memory, in the notebook's working folder. The kernel is fresh: no job
    has been seen yet, and nothing runs in it before the notebook.
    """
    try:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = AsyncKernelManager(kernel_name=kernel_name())
        run_sync(km.start_kernel)(
            extra_arguments=["--HistoryManager.hist_file=:memory:"],
            cwd=os.environ.get("NB_ASSETS_WORKDIR") or None,
        )
        return km
    except Exception as exc:  # papermill starts one itself then, and says what failed if that fails too
        print(f"[nb_assets runner] no kernel started ahead: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


# What `import papermill` loads only for I/O handlers this runner never uses: its paths are local
# files (the box has no network). pyarrow (with numpy) is for hdfs:// paths, which papermill imports
# under `except ImportError`; requests for http:// paths, imported unconditionally but called only
# when such a path is read or written. Together ~40 % of papermill's import: on the Docker box's one
# CPU that is CPU the booting kernel does not get. Only this process is concerned: the kernel, where
# the notebook runs, imports what it likes.
UNUSED_IMPORTS = ("pyarrow", "requests")


def skip_unused_imports() -> None:
    """Make papermill's imports of UNUSED_IMPORTS cheap: pyarrow raises ImportError (papermill's
    HDFS handler then says it is missing), requests is a stub that refuses to be used."""
    import types

    if "pyarrow" not in sys.modules:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]  # the import system's "not available"
    if "requests" not in sys.modules:
        stub = types.ModuleType("requests", "nb_assets runner: no HTTP from inside the sandbox")

        def refuse(*_: Any, **__: Any) -> Any:
            raise RuntimeError("the nb_assets runner reads and writes local notebooks only")

        stub.get = stub.put = refuse  # type: ignore[attr-defined]  # what papermill's HttpHandler calls
        sys.modules["requests"] = stub


def boot() -> Any:
    """Start the kernel, then import papermill while it boots (its own process, so on a
    second core); returns the kernel manager. About 0.3 s sooner than papermill alone."""
    km = start_kernel()
    mark("kernel_launched")
    skip_unused_imports()
    try:
        import papermill  # noqa: F401  (the heavy import)

        register_bounded_engine()
    except Exception:  # noqa: BLE001 - run() imports it again and writes why it failed into the verdict
        pass
    mark("papermill_imported")
    return km


def stop_kernel(km: Any) -> None:
    """Shut down the kernel started ahead. papermill never stops a kernel it was handed
    (nbclient owns only the managers it makes), and where no PID namespace ends it with
    the runner (LocalSandbox with allow_network) it would outlive the run."""
    try:
        if km is not None and km.has_kernel:
            from jupyter_core.utils import run_sync

            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001 - best effort; the verdict is written already
        pass


def boot_and_wait() -> tuple[bool, Any]:
    """Boot before the job is there, then wait for the go line: (go, kernel manager)."""
    km = boot()
    go = bool(sys.stdin.readline().strip())
    mark("go")
    return go, km


def run(parameterized: str, params_path: str, executed: str, km: Any = None) -> dict:
    """Execute the notebook; the verdict as a dict, whatever went wrong."""
    try:
        with open(params_path, encoding="utf-8") as f:
            parameters = json.load(f)
        import papermill

        register_bounded_engine()
        extra = {"km": km} if km is not None else {}
        papermill.execute_notebook(
            parameterized,
            executed,
            parameters=parameters,
            engine_name=ENGINE,
            kernel_name=kernel_name(),
            # The kernel is always the project's (Python); say so, or papermill refuses a
            # notebook saved without kernelspec metadata ("No language found in notebook").
            language="python",
            cwd=os.environ.get("NB_ASSETS_WORKDIR") or None,
            progress_bar=False,
            log_output=False,
            # The default graceful shutdown stalls ~3.5 s in a share of runs (a kernel it
            # started itself; one handed in as km is stopped by stop_kernel).
            shutdown_kernel="immediate",
            # After a cell's reply, how long the output still queued may take to drain. The default
            # (4 s) fails a chatty cell whose backlog is merely slow to decode on a busy or small box.
            iopub_timeout=IOPUB_DRAIN_S,
            **extra,
        )
    except Exception as exc:  # the verdict must be written whatever went wrong
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        cell_index = getattr(exc, "cell_index", None)
        # Without a cell, papermill or nbclient failed outside the notebook's code: the runner's fault.
        kind = "cell-error" if cell_index is not None else RUNNER_ERROR
        if type(exc).__name__ == "DeadKernelError":
            kind = "dead-kernel"
        return {
            "status": "failed",
            "error": {
                "kind": kind,
                "cell": _original_cell_number(executed, cell_index) if cell_index is not None else None,
                "ename": ename,
                "evalue": str(evalue)[:2000],
                "traceback": _tail(traceback.format_exc(), 4000),
            },
        }
    return {"status": "success", "error": None}


def _tail(text: str, chars: int) -> str:
    """The last `chars` characters, from a line's start: where it ended is what matters."""
    if len(text) <= chars:
        return text
    tail = text[-chars:]
    return tail.partition("\n")[2] or tail


def write_verdict(result_path: str, result: dict) -> None:
    """Complete or absent, never half-written; never through a link planted by the notebook."""
    tmp = result_path + ".tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(tmp, result_path)


def main(argv: list[str]) -> int:
    km = None
    wait = argv[:1] == ["--wait"]  # the Docker sandbox's runner
    # Whatever the notebook left running ends with this runner in a container (the
    # supervisor kills it) or as PID 1 of a PID namespace (LocalSandbox); only without
    # either must the kernel be stopped here, which would otherwise keep the exit waiting.
    kernel_ends_with_runner = wait or os.getpid() == 1
    if wait:
        argv = argv[1:]
        go, km = boot_and_wait()
        if not go:
            return 3  # never claimed: nothing ran, no verdict
    else:
        km = boot()
    parameterized, params_path, executed, result_path = argv
    result = run(parameterized, params_path, executed, km)
    mark("executed")
    write_verdict(result_path, result)
    if wait:  # the supervisor sends it with its facts; nothing reads it otherwise
        write_timeline(os.path.join(os.path.dirname(result_path), TIMELINE_FILE))
    if not kernel_ends_with_runner:
        stop_kernel(km)
    return 0 if result["status"] == "success" else 1


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the verdict is written: skip teardown (see the module docstring)
