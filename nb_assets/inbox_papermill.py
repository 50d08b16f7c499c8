"""Runs inside the sandbox: papermill on the prepared notebook, then a verdict file.

Standalone on purpose (stdlib + papermill only): it is copied into each run
folder and executed by the sandbox's own Python, which has no nb_assets,
Dagster or warehouse driver installed.

    python inbox_papermill.py PARAMETERIZED.ipynb EXECUTED.ipynb RESULT.json
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator


_NOT_AUTHORED = ("injected-parameters", "papermill-error-cell-tag")


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


def main(argv: list[str]) -> int:
    parameterized, executed, result_path = argv
    result: dict = {"status": "success", "error": None}
    # The host writes the resolved parameters next to the verdict file; papermill injects them.
    params_path = os.path.join(os.path.dirname(result_path), "parameters.json")
    try:
        with open(params_path, encoding="utf-8") as f:
            parameters = json.load(f)
        import papermill

        papermill.execute_notebook(
            parameterized,
            executed,
            parameters=parameters,
            kernel_name=os.environ.get("NB_ASSETS_KERNEL", "python3"),
            cwd=os.environ.get("NB_ASSETS_WORKDIR") or None,
            progress_bar=False,
            log_output=False,
            # The default graceful shutdown stalls ~3.5 s in a share of runs.
            shutdown_kernel="immediate",
        )
    except Exception as exc:  # the verdict must be written whatever went wrong
        ename = getattr(exc, "ename", type(exc).__name__)
        evalue = getattr(exc, "evalue", str(exc))
        cell_index = getattr(exc, "cell_index", None)
        kind = "cell-error" if cell_index is not None else "kernel-error"
        if type(exc).__name__ == "DeadKernelError":
            kind = "dead-kernel"
        result = {
            "status": "failed",
            "error": {
                "kind": kind,
                "cell": _original_cell_number(executed, cell_index) if cell_index is not None else None,
                "ename": ename,
                "evalue": str(evalue)[:2000],
                "traceback": traceback.format_exc()[-4000:],
            },
        }
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0 if result["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
