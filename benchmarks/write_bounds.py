"""What a notebook's writing costs the host: a 300 MB stdout flood, and a notebook filling its outputs folder.

For each case and sandbox, one run through the same path as `nb-assets run` (static checks cleared,
as a notebook that evaded them would be), in its own process, measuring:
  host peak RSS   that host process's own peak resident memory (HTML rendering included)
  disk peak       the most bytes its run folder held on the host during the run
  record          bytes of the record folder it kept
  verdict         success, or the error's first line
Run it against another checkout to compare (e.g. `git archive <commit> | tar -x -C /tmp/base`):

    python benchmarks/write_bounds.py [--tree PATH] [--sandbox local docker] [--flood-mb 300] [--fill-mb 2048]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

# What `nb-assets run` does, with static analysis cleared (the filler is a notebook that evaded it,
# as in tests/integration/test_sandbox_adversarial.py), then the host process's own peak RSS.
HOST = """
import dataclasses, json, resource, sys
from pathlib import Path
from nb_assets.sandbox.choose import choose_sandbox
from nb_assets.runs.pipeline import discard_data, run_pipeline
from nb_assets.analysis.parser import parse_notebook
from nb_assets.runs.record import keep_record
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
notebook, warehouse, sandbox, run_dir = sys.argv[1:]
spec = dataclasses.replace(parse_notebook(notebook), findings=())
run = run_pipeline(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=choose_sandbox(sandbox), run_dir=Path(run_dir))
keep_record(run)
discard_data(run.folder)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "status": run.status, "error": str(run.error) if run.error else None,
                  "executed_notebook": str(run.executed_notebook)}))
"""


def notebooks(tmp: Path, flood_mb: int, fill_mb: int) -> dict[str, Path]:
    head = [("code", C.SETUP_SOURCE), ("code", "%%sql nums\nSELECT i FROM main.nums")]
    tail = [("code", 'output("mart.nums", nums)')]
    return {
        "stdout flood": C.write_notebook(tmp / "flood.ipynb", [
            *head, ("code", f"for _ in range({flood_mb}):\n    print('z' * 1_000_000)"), *tail]),
        "outputs filler": C.write_notebook(tmp / "filler.ipynb", [
            *head, ("code", "import os\nwith open(os.path.join(os.environ['NB_ASSETS_OUTPUT_DIR'], 'junk.bin'), 'wb') as f:\n"
                            f"    for _ in range({fill_mb}):\n        f.write(b'x' * (1 << 20))"), *tail]),
    }


def folder_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def measure(tree: Path, notebook: Path, warehouse: Path, sandbox: str, records: Path) -> dict:
    peak = {"disk": 0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak["disk"] = max(peak["disk"], folder_bytes(records))
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", HOST, str(notebook), str(warehouse), sandbox, str(records / "run")],
        env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, capture_output=True, text=True,
    )
    done.set()
    watcher.join()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    record = Path(report["executed_notebook"]).parent
    error = (report.get("error") or "").replace(str(notebook), notebook.name)
    return {
        "peak_rss_mb": report["peak_rss_mb"],
        "disk_peak_mb": round(max(peak["disk"], folder_bytes(records)) / 1e6, 1),
        "record_mb": round(folder_bytes(record) / 1e6, 2) if record.exists() else None,
        "verdict": report["status"] if not error else f"failed: {error.splitlines()[0][:120]}",
        "seconds": round(seconds, 1),
    }


def main() -> None:
    def extra(p):
        p.add_argument("--tree", type=Path, default=C.REPO, help="the nb_assets checkout to measure")
        p.add_argument("--sandbox", nargs="+", default=["local", "docker"])
        p.add_argument("--flood-mb", type=int, default=300)
        p.add_argument("--fill-mb", type=int, default=2048)

    args = C.parse_args(__doc__, extra)
    C.print_machine("papermill", "duckdb", "pyarrow")
    print(f"tree: {args.tree}")
    with C.temp_dir("write_bounds") as tmp:
        wh = C.seed_duckdb(tmp / "warehouse.duckdb", ["CREATE TABLE main.nums AS SELECT range::INTEGER AS i FROM range(10)"])
        cases = notebooks(tmp, args.flood_mb, args.fill_mb)
        print(f"\n{'case':15s} {'sandbox':8s} {'host peak RSS':>13s} {'disk peak':>10s} {'record':>9s} {'time':>7s}  verdict")
        for case, notebook in cases.items():
            for sandbox in args.sandbox:
                r = measure(args.tree.resolve(), notebook, wh, sandbox, tmp / "records" / f"{notebook.stem}-{sandbox}")
                print(f"{case:15s} {sandbox:8s} {r['peak_rss_mb']:10d} MB {r['disk_peak_mb']:7.1f} MB "
                      f"{r['record_mb'] if r['record_mb'] is not None else '-':>6} MB {r['seconds']:6.1f}s  {r['verdict']}",
                      flush=True)


if __name__ == "__main__":
    main()
