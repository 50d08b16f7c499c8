"""What a notebook writes is bounded: cell outputs in the record, the outputs folder, the record folder.

Each case runs in both sandboxes against a real DuckDB file. A run that goes
over a limit fails naming the notebook and the limit, loads nothing, and the
host never holds more than the limit.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO
from support.warehouses import warehouse_snapshot
from nb_assets.runs.pipeline import NotebookRun, run_pipeline
from nb_assets.inbox.record_bounds import CELL_OUTPUT_CHARS, TRUNCATED
from nb_assets.inbox.runner import authored_cells
from nb_assets.analysis.parser import parse_notebook
from nb_assets.runs.record import keep_record
from nb_assets.sandbox.base import RECORD_MB, Sandbox, SandboxLimits
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.notebook_factory import RUNTIME, code, params, write_notebook

MB = 1 << 20
LIMITS = SandboxLimits(timeout_s=300, memory_mb=1024, pids=128, tmp_mb=64, output_mb=32)


def _run(sandbox: Sandbox, tmp_path: Path, warehouse: Path, *cells: str) -> NotebookRun:
    path = write_notebook(
        tmp_path / "writer.ipynb",
        code(RUNTIME),
        params("n = 1"),
        code("%%sql orders\nSELECT order_id FROM raw.orders"),
        *(code(c) for c in cells),
        code("output('mart.result', orders)"),
    )
    # Static analysis would refuse the file writes; the bounds must hold when it is evaded.
    spec = dataclasses.replace(parse_notebook(path), findings=())
    return run_pipeline(
        spec, warehouse=DuckDBWarehouse(warehouse), sandbox=sandbox, run_dir=tmp_path / "run", limits=LIMITS,
    )


def _stream_text(output: dict) -> str:
    text = output.get("text", "")
    return "".join(text) if isinstance(text, list) else text


def test_a_stdout_flood_is_kept_truncated_with_a_visible_marker(
    each_sandbox: Sandbox, tmp_path: Path, warehouse: Path
) -> None:
    run = _run(
        each_sandbox, tmp_path, warehouse,
        "for i in range(150_000):\n    print('flood line', i, 'x' * 100)",  # ~17 MB in many small messages
        "import sys\nfor i in range(6):\n    sys.stdout.write('y' * 4_000_000)",  # 24 MB in a few large ones
        "print('still here')",
    )
    record = keep_record(run)

    assert run.status == "success", run.error
    assert run.loaded_rows == {"mart.result": 20}
    executed = json.loads(run.executed_notebook.read_text())
    cells = dict(authored_cells(executed["cells"]))  # by number in the author's file
    for flooded in (cells[4], cells[5]):
        texts = [_stream_text(o) for o in flooded["outputs"]]
        kept = sum(len(t) for t in texts if not t.lstrip().startswith(TRUNCATED))
        assert kept <= CELL_OUTPUT_CHARS
        assert kept > CELL_OUTPUT_CHARS // 2  # the head of the output is there, not nothing
        assert any(t.lstrip().startswith(TRUNCATED) and "more characters" in t for t in texts)
    assert _stream_text(cells[6]["outputs"][0]) == "still here\n"  # later cells keep their own budget
    assert run.executed_notebook.stat().st_size < 3 * CELL_OUTPUT_CHARS
    assert record["html"].stat().st_size < 10 * MB
    assert sum(p.stat().st_size for p in run.folder.record_dir.iterdir()) < RECORD_MB * MB


@pytest.mark.docker
def test_the_host_stays_small_while_a_notebook_prints_300_mb(tmp_path: Path, warehouse: Path, docker_image: str) -> None:
    """`nb-assets run` in Docker, measured as a user runs it: its own peak memory, with and without a flood."""

    def peak_rss_mb(notebook: Path) -> tuple[int, dict]:
        measure = (
            "import json, resource, sys\n"
            "from nb_assets.cli.main import main\n"
            "code = main(sys.argv[1:])\n"
            "print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), file=sys.stderr)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", measure, "run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "docker",
             "--records", str(tmp_path / "records"), "--html", "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stderr.strip().splitlines()[-1])["peak_rss_mb"], json.loads(proc.stdout)

    def notebook(name: str, body: str) -> Path:
        return write_notebook(
            tmp_path / f"{name}.ipynb", code(RUNTIME), code("%%sql orders\nSELECT order_id FROM raw.orders"),
            code(body), code(f"output('mart.{name}', orders)"),  # one table each: a run replaces only its own
        )

    quiet, _ = peak_rss_mb(notebook("quiet", "x = 1"))
    flood, report = peak_rss_mb(notebook("flood", "for _ in range(300):\n    print('z' * 1_000_000)"))

    assert report["status"] == "success"
    assert Path(report["executed_notebook"]).stat().st_size < 3 * CELL_OUTPUT_CHARS
    # Before the record was bounded, this run's host held the whole 300 MB notebook (~725 MB resident).
    assert flood < quiet + 100, (quiet, flood)


@pytest.mark.parametrize(
    "writer",
    [
        "f = open(os.path.join(out, 'junk.bin'), 'wb')\nfor _ in range(200):\n    f.write(b'x' * (1 << 20))\n    f.flush()",
        "for i in range(48):\n    with open(os.path.join(out, f'junk{i}.bin'), 'wb') as f:\n        f.write(b'x' * (1 << 20))",
    ],
    ids=["one-big-file", "many-files"],
)
def test_filling_the_outputs_folder_fails_naming_the_limit(
    writer: str, each_sandbox: Sandbox, tmp_path: Path, warehouse: Path
) -> None:
    before = warehouse_snapshot(warehouse)

    run = _run(each_sandbox, tmp_path, warehouse, "import os\nout = os.environ['NB_ASSETS_OUTPUT_DIR']\n" + writer)

    assert run.status == "failed"
    message = str(run.error)
    assert "writer.ipynb: the outputs folder reached its limit of 32 MB" in message, message
    assert run.error.kind == "output-limit" and "nothing loaded" in message
    assert warehouse_snapshot(warehouse) == before
    if each_sandbox.kind == "docker":  # Local cannot stop many files while the run lasts, only refuse them after
        assert sum(p.stat().st_size for p in run.folder.output_dir.iterdir()) <= LIMITS.output_mb * MB


def test_a_record_filled_by_the_notebook_is_refused_unread(each_sandbox: Sandbox, tmp_path: Path, warehouse: Path) -> None:
    """Only the runner writes the record. A notebook that stuffs it, then kills the runner so that nothing
    overwrites the junk, fails clearly in Docker. In LocalSandbox the runner is its namespace's PID 1 and
    cannot be killed from inside: it survives and overwrites the junk, and the run must still be legitimate."""
    before = warehouse_snapshot(warehouse)
    run = _run(
        each_sandbox, tmp_path, warehouse,
        "import os, signal\nrecord = os.path.join(os.path.dirname(os.environ['NB_ASSETS_OUTPUT_DIR']), 'record')\n"
        "try:\n    with open(os.path.join(record, 'executed.ipynb'), 'wb') as f:\n"
        "        for _ in range(80):\n            f.write(b'x' * (1 << 20))\n            f.flush()\n"
        "except OSError:\n    pass\nos.kill(os.getppid(), signal.SIGKILL)",
    )

    if run.status == "success":
        assert each_sandbox.kind == "local", "the Docker runner was killed: it cannot have succeeded"
        assert run.executed_notebook.stat().st_size < CELL_OUTPUT_CHARS
        assert json.loads(run.executed_notebook.read_text())["cells"]  # the runner's notebook, not the junk
        return
    assert f"writer.ipynb: the record folder reached its limit of {RECORD_MB} MB" in str(run.error), run.error
    assert not run.executed_notebook.exists()  # never read, never kept
    assert warehouse_snapshot(warehouse) == before
