"""One deployed run of a small notebook against a cold `nb-assets run --sandbox docker` of the same
notebook and a no-op asset through the same deployment (Dagster's floor): issue 27, target 3.

  deployed   launched through the webserver's GraphQL API, timed from the launch to the run's end
             as the instance records them (created -> RUN_SUCCESS)
  noop       a plain Dagster asset whose body is `pass`, in the same code location, launched and
             timed the same way: the queue, a run worker, a step, and nothing else
  cold       `nb-assets run NB --warehouse <the deployment's Postgres> --sandbox docker` with
             NB_ASSETS_DOCKER_SPARES=0: no spare anywhere, the image built; a whole process
Interleaved, one round = deployed, noop, cold (after a warm-up round), medians with min and max.

Where a deployed run's time goes, from the run's event timestamps (medians):
  queue dequeue     created -> RUN_STARTING (the daemon's queue coordinator picks it up)
  run-worker start  RUN_STARTING -> RUN_START (container create and start, Python, Dagster and the
                    project imported, the run loaded)
  step start        RUN_START -> STEP_START (the executor's step process)
  step              STEP_START -> STEP_SUCCESS
    pipeline        of which the notebook's host pipeline (the record: prefetch, sandbox, load)
    sandbox         of which the sandbox container (create, copy in, boot, run, copy out)
  run end           STEP_SUCCESS -> RUN_SUCCESS

    python benchmarks/deployed_run.py [--quick] [--runs N] [--before]

--before deploys without issue 27's cuts (no spare per run slot, the code image's Python read through
the storage driver), for the figure they are measured against.
The project is generated (one notebook, one no-op asset); its code image is built before anything
is timed; it is left in place, and the next run of this script prunes it (one image at most).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

DEFINITIONS = '''import os
from pathlib import Path
import dagster as dg
from nb_assets import NotebookAsset, notebook_definitions
BASE_DIR = Path(__file__).parent


@dg.asset(key=["bench", "noop"])
def noop() -> None:
    """Dagster's floor: a run of an asset that does nothing."""


# One Definitions object at module scope: Dagster refuses a module with two.
defs = dg.Definitions.merge(
    notebook_definitions([NotebookAsset("notebooks/small.ipynb", owners=["bench@example.invalid"])],
                         warehouse=os.environ["NB_ASSETS_WAREHOUSE"], base_dir=BASE_DIR,
                         sandbox=os.environ.get("NB_ASSETS_SANDBOX", "docker")),
    dg.Definitions(assets=[noop]),
)
'''
NOTEBOOK_KEY = ["mart", "small"]
NOOP_KEY = ["bench", "noop"]
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message } } }"""
PARTS = ("queue dequeue", "run-worker start", "step start", "step", "  pipeline", "  sandbox", "run end")


def make_project(folder: Path) -> Path:
    (folder / "notebooks").mkdir(parents=True)
    (folder / "seed.py").write_text(C.PG_SEED)
    (folder / "definitions.py").write_text(DEFINITIONS)
    return C.write_notebook(folder / "notebooks" / "small.ipynb", [
        ("code", C.SETUP_SOURCE),
        ("code", "n = 100", ["parameters"]),
        ("code", "%%sql nums\nSELECT i FROM raw.nums WHERE i < $n"),
        ("code", 'output("mart.small", nums.assign(j=nums["i"] * 2))'),
    ])


def launch_and_wait(url: str, instance: Any, key: list[str]) -> str:
    import dagster as dg

    from nb_assets.deploy.config import LOCATION
    from nb_assets.deploy.webserver_client import graphql

    params = {"mode": "default", "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
              "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": key}]}}
    answer = graphql(url, LAUNCH, {"p": params})["launchRun"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launch of {key} refused: {answer}")
    run_id = str(answer["run"]["runId"])
    done = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in done:
            if run.status != dg.DagsterRunStatus.SUCCESS:
                raise RuntimeError(f"run {run_id} of {key} ended {run.status.value}")
            return run_id
        time.sleep(0.2)
    raise RuntimeError(f"run {run_id} of {key} did not finish within 900 s")


def timeline(instance: Any, run_id: str, records: dict[str, Any]) -> dict[str, float]:
    """The run's whole time and its parts, from the instance's events (and the record, for notebooks)."""
    import dagster as dg

    T = dg.DagsterEventType
    created = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))[0].create_timestamp.timestamp()
    at: dict[Any, float] = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is not None:
            at.setdefault(entry.dagster_event.event_type, entry.timestamp)
    parts = {
        "whole": at[T.RUN_SUCCESS] - created,
        "queue dequeue": at[T.RUN_STARTING] - created,
        "run-worker start": at[T.RUN_START] - at[T.RUN_STARTING],
        "step start": at[T.STEP_START] - at[T.RUN_START],
        "step": at[T.STEP_SUCCESS] - at[T.STEP_START],
        "run end": at[T.RUN_SUCCESS] - at[T.STEP_SUCCESS],
    }
    record = records.get(run_id)
    if record is not None:
        parts["  pipeline"] = float(record.summary["duration_s"])
        sandbox = record.summary.get("sandbox") or {}
        parts["  sandbox"] = float(sandbox.get("duration_s", float("nan")))
        parts["warm spare"] = float(bool((sandbox.get("facts") or sandbox).get("warm_spare")))
    return parts


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> int:
    def options(p: Any) -> None:
        p.add_argument("--runs", type=int, default=5)
        p.add_argument("--before", action="store_true",
                       help="deploy without issue 27's cuts (spares per run slot, the code image's Python trees from volumes)")

    args = C.parse_args(__doc__, options)
    runs = 2 if args.quick else args.runs
    C.print_machine("dagster", "dagster-docker", "dagster-postgres")
    print(f"load average at start: {os.getloadavg()}")
    import dagster as dg

    from nb_assets.deploy.code_image import build_code_image
    from nb_assets.runs.history import DAGSTER_RECORDS, find_runs

    times: dict[str, list[float]] = {"deployed": [], "noop": [], "cold": []}
    parts: dict[str, list[dict[str, float]]] = {"deployed": [], "noop": []}
    # Always the same folder: a code image is labelled with its project's folder, and the next build
    # for that folder prunes the previous one (deploy/code_image.py), so reruns leave one image, not many.
    project = Path(tempfile.gettempdir()) / "nb_bench_deployed_run_project"
    shutil.rmtree(project, ignore_errors=True)
    notebook = make_project(project)
    try:
        build_code_image(project)  # untimed
        with C.deployed_stack(project, max_concurrent_runs=2, warm_spares=not args.before,
                              python_trees=not args.before) as stack:
            settings, instance, url, warehouse = stack.settings, stack.instance, stack.url, stack.warehouse
            cold_env = {"NB_ASSETS_WAREHOUSE": warehouse, "NB_ASSETS_READ_DSN": os.environ["NB_ASSETS_READ_DSN"],
                        "NB_ASSETS_DOCKER_SPARES": "0"}
            cold_argv = [sys.executable, "-m", "nb_assets.cli", "run", str(notebook), "--warehouse", warehouse,
                         "--sandbox", "docker"]
            run_ids: dict[str, list[str]] = {"deployed": [], "noop": []}
            for round_ in range(runs + 1):  # round 0 warms up: the code server, the images' pages, the warehouse
                for name, key in (("deployed", NOTEBOOK_KEY), ("noop", NOOP_KEY)):
                    started = time.perf_counter()
                    run_id = launch_and_wait(url, instance, key)
                    if round_:
                        run_ids[name].append(run_id)
                        times[name].append(time.perf_counter() - started)
                cold = C.time_process(cold_argv, cwd=project, env=cold_env)
                if round_:
                    times["cold"].append(cold)
                print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items() if v and round_))
            records = {r.run_id: r for r in find_runs([settings.dagster_home / DAGSTER_RECORDS])}
            for name, ids in run_ids.items():
                parts[name] = [timeline(instance, run_id, records) for run_id in ids]
    finally:
        shutil.rmtree(project, ignore_errors=True)
    load = os.getloadavg()
    deployed, noop, cold = (statistics.median(times[k]) for k in ("deployed", "noop", "cold"))
    print(f"\nOne small notebook (100 of 1,000 rows, Postgres warehouse, Docker sandbox), {runs} interleaved rounds;"
          f" load average at the end {load[0]:.1f} on {os.cpu_count()} cores (a shared, busy machine)")
    print(f"  deployed notebook run (launch -> end, client side) : {spread(times['deployed'])}")
    print(f"  no-op asset, same deployment (Dagster's floor)      : {spread(times['noop'])}")
    print(f"  cold nb-assets run --sandbox docker (no spare)      : {spread(times['cold'])}")
    print(f"  deployed / cold = {deployed / cold:.2f}x (target <= 2x); noop / cold = {noop / cold:.2f}x;"
          f" (deployed - noop) / cold = {(deployed - noop) / cold:.2f}x")
    print("\nwhere the time goes, from the runs' events (median s):")
    print(f"  {'':<18} {'deployed':>9} {'noop':>9}")
    for part in ("whole", *PARTS, "warm spare"):
        cells = []
        for name in ("deployed", "noop"):
            values = [p[part] for p in parts[name] if part in p]
            cells.append(f"{statistics.median(values):9.2f}" if values else f"{'-':>9}")
        print(f"  {part:<18} " + " ".join(cells))
    print(json.dumps({"runs": runs, "load_end": load, "times": {k: [round(v, 3) for v in vs] for k, vs in times.items()},
                      "parts": {name: [{k: round(v, 3) for k, v in p.items()} for p in ps] for name, ps in parts.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
