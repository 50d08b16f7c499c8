"""The cold Docker run: a container made for the run, no spare anywhere (issue 27).

Whole processes, interleaved round by round after one warm-up, medians with min and max:
  papermill        plain `papermill in.ipynb out.ipynb -k python3` on the same work without
                   nb_assets cells (1,000 rows of Parquet in, pandas, Parquet out): the baseline
  run-docker-cold  `nb-assets run NB --sandbox docker` with NB_ASSETS_DOCKER_SPARES=0
  cold-no-volume   the same with NB_ASSETS_USR_VOLUME=0: the image's Python trees read through
                   the storage driver (fuse-overlayfs here), not from their volumes
  cold-before      the same with another tree's nb_assets (--before TREE, e.g. `git archive`
                   of the branch point): a before/after ratio from one session
  floor            the engine's own floor, timed in this process through the SDK: create, start,
                   wait for and remove a container of the sandbox image running `python3 -c pass`
  floor-sandbox    the same with the run container's exact settings (read-only root, tmpfs,
                   volumes, limits, init), still `python3 -c pass`

Then the timeline: `--timeline N` runs of the host pipeline in this process with
DockerSandbox(spares=False) on the same notebook, and the median of each stage, from
the marks the host (DockerSandbox.last_timeline), the in-box supervisor and runner, and
papermill's per-cell times in the executed notebook leave.

    python benchmarks/cold_docker.py [--quick] [--runs N] [--timeline N] [--before TREE]

Target: run-docker-cold / papermill <= 1.3x; if the floor alone makes that impossible,
(run-docker-cold - floor) - papermill <= 0.3 s.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

ROWS = 1000
SETTLE_S = 1.0  # untimed after each Docker variant: the auto-removal's disk work settles


def nb_assets_notebook(path: Path) -> Path:
    return C.write_notebook(path, [
        ("markdown", "# Doubled\n\nA small notebook for measuring the cold Docker run."),
        ("code", C.SETUP_SOURCE),
        ("code", f"n = {ROWS}", ["parameters"]),
        ("code", "%%sql nums\nSELECT i FROM main.nums WHERE i < $n"),
        ("code", "doubled = nums.assign(j=nums['i'] * 2)"),
        ("code", 'output("mart.doubled", doubled)'),
    ])


def papermill_notebook(path: Path, data: Path) -> Path:
    return C.write_notebook(path, [
        ("markdown", "# Doubled\n\nA small notebook for measuring the cold Docker run."),
        ("code", "import pandas as pd"),
        ("code", f"n = {ROWS}", ["parameters"]),
        ("code", f"nums = pd.read_parquet({str(data / 'nums.parquet')!r})\nnums = nums[nums['i'] < n]"),
        ("code", "doubled = nums.assign(j=nums['i'] * 2)"),
        ("code", f"doubled.to_parquet({str(data / 'doubled.parquet')!r}, index=False)"),
    ])


def floor(image: str, settings: dict[str, Any] | None) -> float:
    """create + start + wait + remove of `python3 -c pass`, through the SDK (one client, made before)."""
    from nb_assets.sandbox.image import docker_client

    client = docker_client()
    config = dict(settings or {"image": image})
    config["command"] = ["python3", "-c", "pass"]
    config.pop("auto_remove", None)  # removed below, by us, as the run's host does
    for key in ("labels",):
        config.pop(key, None)
    started = time.perf_counter()
    container_id = client.containers.create(**config).id
    client.api.start(container_id)
    client.api.wait(container_id)
    client.api.remove_container(container_id, force=True, v=True)
    return time.perf_counter() - started


# What happened by each mark (the stage that ends there); printed in the order the marks came.
MARKS = {
    "host.run": "DockerSandbox.run called",
    "host.swept": "host: image checked, abandoned containers swept",
    "host.created": "host: runtime packed, container created",
    "host.started": "host: (runtime copied in,) container started (API)",
    "host.copied_in": "host: attached, job copied in (one tar)",
    "box.supervisor": "box: engine start, the supervisor's Python up",
    "box.boot": "box: supervisor saw the boot/go file",
    "box.runner.runner": "box: the runner's Python up",
    "box.runner.kernel_launched": "box: jupyter_client imported, kernel launched",
    "box.runner.papermill_imported": "box: papermill imported (the kernel boots meanwhile)",
    "box.go": "box: supervisor saw the go",
    "box.runner.go": "box: runner got the go",
    "cell.first": "box: notebook read, kernel ready, first cell started",
    "cell.last": "box: the notebook's cells ran",
    "box.runner.executed": "box: papermill's last save, verdict",
    "box.runner_exit": "box: runner exited",
    "box.ship": "box: the rest killed, copy-out starts",
    "host.collected": "host: copy-out received, container exited",
    "host.removed": "host: container removed",
}


def cell_marks(executed: Path) -> dict[str, float]:
    from datetime import datetime

    import nbformat

    nb = nbformat.read(executed, as_version=4)
    times = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("start_time") and meta.get("end_time"):
            times.append((meta["start_time"], meta["end_time"]))
    if not times:
        return {}

    def epoch(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    return {"cell.first": epoch(times[0][0]), "cell.last": epoch(times[-1][1])}


def one_timeline(nb: Path, wh: Path, run_dir: Path) -> dict[str, float]:
    """One cold run of the host pipeline in this process (DockerSandbox, no spares): its marks."""
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.runs.pipeline import run_pipeline
    from nb_assets.sandbox.container import DockerSandbox
    from nb_assets.warehouse.backends import open_warehouse

    spec = parse_notebook(nb)
    sandbox = DockerSandbox(spares=False)
    warehouse = open_warehouse(wh)
    started = time.time()
    run = run_pipeline(spec, warehouse=warehouse, sandbox=sandbox, run_dir=run_dir)
    ended = time.time()
    if run.error is not None:
        raise RuntimeError(f"timeline run failed: {run.error}")
    marks = dict(getattr(sandbox, "last_timeline", {}))
    if run.executed_notebook.exists():
        marks.update(cell_marks(run.executed_notebook))
    marks["pipeline.start"], marks["pipeline.end"] = started, ended
    import nb_assets

    print(f"nb_assets from {Path(nb_assets.__file__).parent}", file=sys.stderr)
    shutil.rmtree(run_dir, ignore_errors=True)
    return marks


def timelines(trees: dict[str, tuple[Path | None, dict[str, str]]], nb: Path, wh: Path, runs: int,
              tmp: Path) -> dict[str, list[dict[str, float]]]:
    """`runs` timelines per (tree, environment), each in a fresh process (PYTHONPATH=tree), interleaved
    after a warm-up round."""
    import os
    import subprocess

    out: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for i in range(runs + 1):
        for name, (tree, extra) in trees.items():
            env = {**os.environ, **({"PYTHONPATH": str(tree.resolve())} if tree else {}), **extra}
            proc = subprocess.run([sys.executable, __file__, "--one-timeline", str(nb), str(wh), str(tmp / f"tl-{name}-{i}")],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"timeline run ({name}) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            if i:
                out[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            time.sleep(SETTLE_S)
    return out


def print_timeline(name: str, runs: list[dict[str, float]]) -> None:
    print(f"\ntimeline of a cold DockerSandbox run, {name} (median of {len(runs)}; seconds after DockerSandbox.run)")
    offsets = {m: [r[m] - r["host.run"] for r in runs if m in r] for m in MARKS}
    ordered = sorted(((C.median(v), m) for m, v in offsets.items() if v), key=lambda x: x[0])
    print(f"{'mark':60s} {'at':>6s} {'stage':>6s}")
    previous = 0.0
    for at, m in ordered:
        print(f"{MARKS[m]:60s} {at:6.3f} {at - previous:6.3f}")
        previous = at
    cpu = [r["box.cpu_s"] for r in runs if "box.cpu_s" in r]
    if cpu:
        print(f"{'CPU used in the box (its cgroup; the limit is 1 CPU)':60s} {C.median(cpu):6.3f}  (min {min(cpu):.3f}, max {max(cpu):.3f})")
    whole = [r["pipeline.end"] - r["pipeline.start"] for r in runs]
    print(f"{'host pipeline in all (prefetch, sandbox, load)':60s} {C.median(whole):6.3f}  (min {min(whole):.3f}, max {max(whole):.3f})")


def main() -> None:
    if sys.argv[1:2] == ["--one-timeline"]:
        import os

        # ensure_venv put this checkout first; another tree (PYTHONPATH) must win
        sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        nb, wh, run_dir = sys.argv[2:5]
        print(json.dumps(one_timeline(Path(nb), Path(wh), Path(run_dir))))
        return

    def options(p: Any) -> None:
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--timeline", type=int, default=None, help="in-process runs for the timeline (0: none)")
        p.add_argument("--before", type=Path, default=None, help="an nb_assets source tree timed as cold-before")

    args = C.parse_args(__doc__, options)
    runs = args.runs or (3 if args.quick else 7)
    timeline_runs = args.timeline if args.timeline is not None else (2 if args.quick else 5)
    C.print_machine("papermill", "docker", "pandas", "ipykernel", "jupyter_client")
    reason = C.docker_reason()
    if reason is not None:
        print(f"cold_docker: skipped: {reason}")
        return
    from nb_assets.sandbox.base import SandboxLimits
    from nb_assets.sandbox.container import DockerSandbox
    from nb_assets.sandbox.image import image_tag

    image = image_tag()
    settings = DockerSandbox(spares=False)._settings(SandboxLimits())
    print(f"image: {image}")
    with C.temp_dir("cold_docker") as tmp:
        wh = C.seed_duckdb(tmp / "warehouse.duckdb", [
            f"CREATE TABLE main.nums AS SELECT range::INTEGER AS i FROM range({ROWS})",
            f"COPY main.nums TO '{tmp / 'nums.parquet'}' (FORMAT parquet)",
        ])
        nb = nb_assets_notebook(tmp / "doubled.ipynb")
        plain = papermill_notebook(tmp / "plain.ipynb", tmp)
        records = tmp / "records"
        run_argv = [C.bin_path("nb-assets"), "run", str(nb), "--warehouse", str(wh), "--records", str(records),
                    "--sandbox", "docker"]

        def cold(env: dict[str, str]) -> float:
            took = C.time_process(run_argv, cwd=tmp, env={"NB_ASSETS_DOCKER_SPARES": "0", **env})
            time.sleep(SETTLE_S)
            return took

        variants = {
            "papermill": lambda: C.time_process(
                [C.bin_path("papermill"), str(plain), str(tmp / "plain_out.ipynb"), "-k", "python3"], cwd=tmp),
            "run-docker-cold": lambda: cold({}),
            "cold-no-volume": lambda: cold({"NB_ASSETS_USR_VOLUME": "0"}),  # the Python trees on fuse-overlayfs
        }
        if args.before is not None:
            variants["cold-before"] = lambda: cold({"PYTHONPATH": str(args.before.resolve())})
        variants["floor"] = lambda: floor(image, None)
        variants["floor-sandbox"] = lambda: floor(image, settings)
        print(f"\n{runs} interleaved rounds after 1 warm-up; wall time")
        times = C.time_round_robin(variants, runs)
        base = C.median(times["papermill"])
        print()
        for name, values in times.items():
            print(f"{name:16s} {C.fmt_times(values)}  ratio {C.median(values) / base:5.2f}x")
        for name in ("run-docker-cold", "cold-no-volume", "cold-before"):
            if name in times:
                ratios = [t / b for t, b in zip(times[name], times["papermill"])]
                print(f"{name:16s} per-round ratio to papermill: median {C.median(ratios):.2f}x "
                      f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
        if "cold-before" in times:
            print(f"after/before: {C.median(times['run-docker-cold']) / C.median(times['cold-before']):.2f}x")
        cold_s, floor_s = C.median(times["run-docker-cold"]), C.median(times["floor"])
        print(f"run-docker-cold minus the floor, minus papermill: {cold_s - floor_s - base:+.3f} s "
              f"(the floor alone is {floor_s / base:.2f}x papermill)")
        print("all times: " + "; ".join(f"{n}=" + ",".join(f"{v:.2f}" for v in vs) for n, vs in times.items()))
        if timeline_runs:
            trees: dict[str, tuple[Path | None, dict[str, str]]] = {
                "this tree": (None, {}), "this tree, /usr volume off": (None, {"NB_ASSETS_USR_VOLUME": "0"})}
            if args.before is not None:
                trees["before"] = (args.before, {})
            for name, runs_marks in timelines(trees, nb, wh, timeline_runs, tmp).items():
                print_timeline(name, runs_marks)
    C.summary("cold_docker", cold_s / base, 1.3)


if __name__ == "__main__":
    main()
