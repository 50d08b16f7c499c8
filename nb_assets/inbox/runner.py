"""Runs inside the sandbox: papermill on the prepared notebook, a bounded record, then a verdict file.

Standalone on purpose (stdlib + papermill, and the in-box modules copied next
to it: inbox/record_bounds.py): it is copied into each run folder and executed
by the sandbox's own Python, which has no nb_assets, Dagster or warehouse
driver installed.

    python inbox_papermill.py [--wait] PARAMETERIZED.ipynb PARAMETERS.json EXECUTED.ipynb RESULT.json

It starts the kernel first and imports papermill while the kernel boots.
With --wait (the Docker sandbox, whose container boots before its job is
there) it does that, then waits for a line on stdin (the supervisor's "go",
sent once the job is copied in), so that boot is off the run's critical path. Without a "go" (stdin closed) it
leaves without running anything.

The record is bounded before anything is written (inbox/record_bounds.py: a
papermill engine whose client trims outputs as they arrive).

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

from nb_assets.inbox.record_bounds import ENGINE, register_bounded_engine

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
