"""Where the time of `dagster asset materialize` goes: one notebook vs Dagster's no-op asset.

Runs each variant as a whole process (interleaved, after 1 warm-up), then reads
the run's event log from the Dagster instance and prints, per variant, the
median time from the process start to each event (run start, step worker
starting/started, step start, materialization, step success, run success) and
to the process's exit. Variants: the notebook and the no-op, with the
definitions' own executor (nb_assets: a one-step run executes in the run's
process; the no-op: Dagster's default, which spawns a step process), the
multiprocess executor with a forkserver (nb_assets' choice for runs that can
run steps at once, with its preload; the no-op's server preloads Dagster), with
spawn (Dagster's default start method), and the in-process executor.

    python benchmarks/run_path.py [--quick] [--runs N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from run_overhead import DEFS, NOOP_DEFS, nb_assets_notebook  # noqa: E402

C.ensure_venv()
from nb_assets.defs.executor import PRELOAD_MODULES  # noqa: E402

def _multiprocess(start_method: dict) -> dict:
    return {"execution": {"config": {"multiprocess": {"start_method": start_method}}}}


EXECUTORS = {
    "default": {},  # the definitions' own: nb_assets runs one step in the run's process; plain Dagster spawns
    "forkserver": {"notebook": _multiprocess({"forkserver": {"preload_modules": list(PRELOAD_MODULES)}}),
                   "noop": _multiprocess({"forkserver": {"preload_modules": ["dagster"]}})},
    "spawn": _multiprocess({"spawn": {}}),  # Dagster's default start method
    "in_process": {"execution": {"config": {"in_process": {}}}},
}


def _config(executor: str, what: str) -> dict | None:
    config = EXECUTORS[executor]
    return (config.get(what) if executor == "forkserver" else config) or None
# Events in the order a run emits them; the first of each kind is kept.
MARKS = ("RUN_STARTING", "RUN_START", "STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "RESOURCE_INIT_SUCCESS",
         "STEP_START", "ASSET_MATERIALIZATION", "STEP_SUCCESS", "RUN_SUCCESS")


def one_run(defs: Path, home: Path, config: dict | None, cwd: Path) -> dict[str, float]:
    """Seconds from process start to each mark of the run it made, and to its exit."""
    import dagster as dg

    argv = [C.bin_path("dagster"), "asset", "materialize", "-f", str(defs), "--select", "*"]
    if config:
        argv += ["--config-json", json.dumps(config)]
    started = time.time()
    C.time_process(argv, env={"DAGSTER_HOME": str(home)}, cwd=cwd)
    marks = {"exit": time.time() - started}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        for entry in instance.all_logs(run.run_id):
            kind = entry.dagster_event.event_type.name if entry.dagster_event else None  # RUN_START, not PIPELINE_START
            if kind in MARKS and kind not in marks:
                marks[kind] = entry.timestamp - started
    return marks


def main() -> None:
    args = C.parse_args(__doc__, lambda p: p.add_argument("--runs", type=int, default=None))
    runs = args.runs or (1 if args.quick else 5)
    C.print_machine("dagster", "papermill")
    with C.temp_dir("runpath") as tmp:
        wh = C.seed_duckdb(tmp / "warehouse.duckdb", ["CREATE TABLE main.nums AS SELECT range::INTEGER AS i FROM range(10)"])
        nb = nb_assets_notebook(tmp / "doubled.ipynb")
        (tmp / "defs.py").write_text(DEFS.format(nb=str(nb), wh=str(wh)))
        (tmp / "noop_defs.py").write_text(NOOP_DEFS)
        home = tmp / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        variants = {
            f"{what}/{executor}": (lambda defs=defs, config=_config(executor, what): one_run(defs, home, config, tmp))
            for what, defs in (("notebook", tmp / "defs.py"), ("noop", tmp / "noop_defs.py"))
            for executor in EXECUTORS
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        for _ in range(1):  # warm-up: parse cache, .pyc files
            for fn in variants.values():
                fn()
        for _ in range(runs):
            for name, fn in variants.items():
                results[name].append(fn())
    print(f"\nmedian seconds from process start to each event, {runs} interleaved runs after 1 warm-up "
          f"(exit = the whole process)\n")
    names = list(results)
    print(f"{'event':22s}" + "".join(f"{n:>22s}" for n in names))
    for mark in (*MARKS, "exit"):
        cells = []
        for name in names:
            values = [r[mark] for r in results[name] if mark in r]
            cells.append(f"{statistics.median(values):22.2f}" if values else f"{'-':>22s}")
        print(f"{mark:22s}" + "".join(cells))
    for executor in EXECUTORS:
        nb_exit = statistics.median(r["exit"] for r in results[f"notebook/{executor}"])
        noop_exit = statistics.median(r["exit"] for r in results[f"noop/{executor}"])
        print(f"{executor:12s} notebook {nb_exit:.2f} s, no-op {noop_exit:.2f} s, notebook minus no-op {nb_exit - noop_exit:.2f} s")
    print("all exits: " + "; ".join(f"{n}=" + ",".join(f"{r['exit']:.2f}" for r in rs) for n, rs in results.items()))
    print(f"(PYTHONPATH={os.environ.get('PYTHONPATH', '')})")


if __name__ == "__main__":
    main()
