"""Throughput of the deployment: 32 small notebooks through the deployed queue against the
same 32 through `nb-assets run`, one after another, on the same Postgres warehouse (issue 27, target 4).

  sequential  `nb-assets run NB --warehouse postgresql://... --sandbox docker` for each
              notebook in turn (warm spares on, as the CLI runs by default); in each deployment
  before      `nb-assets deploy up` on a generated project of the 32 without issue 27's cuts
              (DeploySettings(warm_spares=False), NB_ASSETS_USR_VOLUME=0 for the code image),
              then one run per notebook launched at once through the webserver's GraphQL API,
              the queue starting --max-runs at a time; timed from the first launch to the last
              run's end
  after       the same with the cuts: a spare per run slot left by each run worker for the next,
              and the code image's Python trees mounted from read-only volumes
Not interleaved (one deployment, then the next): read small differences with care.

Where the deployed time goes, per run (means), from Dagster's events and the records:
  queue wait         created -> dequeued (RUN_STARTING)
  run worker start   dequeued -> RUN_START: container create/start, Python, Dagster and the
                     project imported, the run loaded from Postgres
  step start         RUN_START -> STEP_START
  notebook pipeline  the record's duration: prefetch, sandbox, load
    sandbox          of which the sandbox container (create or claim, copy in, boot, run, copy out)
  run end            STEP_SUCCESS -> RUN_SUCCESS
  warm spare         the share of runs whose sandbox was a claimed spare

    python benchmarks/deploy_throughput.py [--quick] [--max-runs N]
The code image for the generated project is built before anything is timed.
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

C.ensure_venv()

COUNT = 32
# Issue 27's cuts off, then on (the project's executor either way: a one-notebook run steps in its own process).
VARIANTS = {"before": {"warm_spares": False, "python_trees": False}, "after": {"warm_spares": True, "python_trees": True}}
DEFINITIONS = '''import os
from pathlib import Path
from nb_assets import NotebookAsset, notebook_definitions
BASE_DIR = Path(__file__).parent
NOTEBOOKS = [NotebookAsset(f"notebooks/small_{i:02d}.ipynb", owners=["bench@example.invalid"]) for i in range({count})]
defs = notebook_definitions(NOTEBOOKS, warehouse=os.environ["NB_ASSETS_WAREHOUSE"], base_dir=BASE_DIR,
                            sandbox=os.environ.get("NB_ASSETS_SANDBOX", "docker"))
'''


def make_project(folder: Path, count: int) -> list[Path]:
    (folder / "notebooks").mkdir(parents=True)
    (folder / "seed.py").write_text(C.PG_SEED)
    (folder / "definitions.py").write_text(DEFINITIONS.replace("{count}", str(count)))
    paths = []
    for i in range(count):
        paths.append(C.write_notebook(folder / "notebooks" / f"small_{i:02d}.ipynb", [
            ("code", C.SETUP_SOURCE),
            ("code", "n = 100", ["parameters"]),
            ("code", "%%sql nums\nSELECT i FROM raw.nums WHERE i < $n"),
            ("code", f'output("mart.small_{i:02d}", nums.assign(j=nums["i"] * 2))'),
        ]))
    return paths


def sequential(paths: list[Path], warehouse: str) -> float:
    started = time.perf_counter()
    for path in paths:
        C.time_process([sys.executable, "-m", "nb_assets.cli", "run", str(path), "--warehouse", warehouse, "--sandbox", "docker"],
                       cwd=path.parent.parent, env={"NB_ASSETS_WAREHOUSE": warehouse,
                                                    "NB_ASSETS_READ_DSN": os.environ.get("NB_ASSETS_READ_DSN", "")})
    return time.perf_counter() - started


def deployed(url: str, instance, count: int) -> tuple[float, list[str]]:  # noqa: ANN001
    from nb_assets.deploy.config import LOCATION
    from nb_assets.deploy.webserver_client import graphql

    launch = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
      ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    started = time.perf_counter()
    run_ids = []
    for i in range(count):
        params = {"mode": "default", "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__",
                  "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["mart", f"small_{i:02d}"]}]}}
        answer = graphql(url, launch, {"p": params})["launchRun"]
        assert answer["__typename"] == "LaunchRunSuccess", answer
        run_ids.append(answer["run"]["runId"])
    done = {"SUCCESS", "FAILURE", "CANCELED"}
    deadline = time.monotonic() + 60 * count
    while time.monotonic() < deadline:
        statuses = [instance.get_run_by_id(r).status.value for r in run_ids]
        if all(s in done for s in statuses):
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    assert statuses.count("SUCCESS") == count, statuses
    return elapsed, run_ids


def breakdown(instance, run_ids: list[str], records_root: Path) -> dict[str, float]:  # noqa: ANN001
    import dagster as dg

    from nb_assets.runs.history import find_runs

    T = dg.DagsterEventType
    parts: dict[str, list[float]] = {k: [] for k in ("queue wait", "run worker start", "step start", "notebook pipeline",
                                                    "  sandbox", "run end", "whole run", "warm spare")}
    records = {r.run_id: r for r in find_runs([records_root])}
    for run_id in run_ids:
        created = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))[0].create_timestamp.timestamp()
        at: dict[object, float] = {}
        for entry in instance.all_logs(run_id):
            if entry.dagster_event is not None:
                at.setdefault(entry.dagster_event.event_type, entry.timestamp)
        parts["queue wait"].append(at[T.RUN_STARTING] - created)
        parts["run worker start"].append(at[T.RUN_START] - at[T.RUN_STARTING])
        parts["step start"].append(at[T.STEP_START] - at[T.RUN_START])
        parts["run end"].append(at[T.RUN_SUCCESS] - at[T.STEP_SUCCESS])
        parts["whole run"].append(at[T.RUN_SUCCESS] - at[T.RUN_STARTING])
        summary = records[run_id].summary
        parts["notebook pipeline"].append(float(summary["duration_s"]))
        parts["  sandbox"].append(float(summary["sandbox"]["duration_s"]))
        parts["warm spare"].append(1.0 if summary["sandbox"].get("warm_spare") else 0.0)
    return {k: statistics.mean(v) for k, v in parts.items()}


def main() -> int:
    args = C.parse_args(__doc__, lambda p: p.add_argument("--max-runs", type=int, default=2))
    count = 8 if args.quick else COUNT
    C.print_machine("dagster", "dagster-docker", "dagster-postgres")
    from nb_assets.deploy.code_image import build_code_image
    from nb_assets.runs.history import DAGSTER_RECORDS

    with C.temp_dir("deploy") as tmp:
        project = tmp / "project"
        paths = make_project(project, count)
        tag = build_code_image(project)  # untimed
        seq: dict[str, float] = {}
        results = {}
        try:
            for name, cuts in VARIANTS.items():
                with C.deployed_stack(project, max_concurrent_runs=args.max_runs, **cuts) as stack:
                    seq[name] = sequential(paths, stack.warehouse)
                    elapsed, run_ids = deployed(stack.url, stack.instance, count)
                    results[name] = (elapsed, breakdown(stack.instance, run_ids, stack.settings.dagster_home / DAGSTER_RECORDS))
        finally:
            from nb_assets.sandbox.image import docker_client

            docker_client().images.remove(tag)  # ~1 GB, of a project that is gone (`up` found it built)
    base = statistics.mean(seq.values())
    print(f"\n{count} small notebooks, Postgres warehouse, Docker sandbox")
    print(f"  sequential nb-assets run        : {base:7.1f} s  ({base / count:.2f} s per notebook; "
          + ", ".join(f"{v:.1f} s beside {k}" for k, v in seq.items()) + ")")
    for name, (elapsed, _) in results.items():
        print(f"  deployed, {args.max_runs} at once, {name:<6}: {elapsed:7.1f} s  ({elapsed / count:.2f} s per notebook, "
              f"{60 * count / elapsed:.1f} notebooks/min)  {elapsed / seq[name]:.2f}x the sequential time beside it")
    print(f"  after / before: {results['after'][0] / results['before'][0]:.2f}x")
    print("\nwhere a deployed run's time goes (mean per run, s):")
    print(f"  {'':<18} " + " ".join(f"{name:>11}" for name in results))
    for part in next(iter(results.values()))[1]:
        print(f"  {part:<18} " + " ".join(f"{parts[part]:11.2f}" for _, parts in results.values()))
    print(json.dumps({"count": count, "max_runs": args.max_runs, "sequential_s": {k: round(v, 2) for k, v in seq.items()}, **{
        name: {"s": round(elapsed, 2), "ratio": round(elapsed / seq[name], 3), "parts": {k.strip(): round(v, 3) for k, v in parts.items()}}
        for name, (elapsed, parts) in results.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
