"""Whole-process overhead of running one trivial notebook.

Compares wall-time medians (one warm-up, then N interleaved runs) of:
  papermill   plain `papermill in.ipynb out.ipynb -k python3` on an equivalent
              notebook without nb_assets cells (same pandas work, Parquet in/out)
  run-local   `nb-assets run NB --warehouse W --sandbox local`
  run-docker  `nb-assets run NB --warehouse W --sandbox docker` (when Docker and
              the sandbox image are there): the run claims the warm spare the
              previous one left, and leaves one for the next
  run-docker-cold  the same with NB_ASSETS_DOCKER_SPARES=0: a container made
              for the run (it still boots papermill and the kernel while its
              job is copied in)
  run-docker-before  with --before TREE: the same command with TREE's
              nb_assets (e.g. `git archive` of an older commit), for a
              before/after ratio from one interleaved session
  dagster     `dagster asset materialize -f defs.py --select '*'` on a generated
              definitions file (notebook_definitions, sandbox="local"); a run of one
              step, so nb_assets' executor runs it in the run's process
  dagster-noop  Dagster's own floor: one no-op asset, Dagster's default executor
              (a spawned process per step); dagster-noop-inproc the same no-op with
              `in_process`, the floor of the path nb_assets takes
Targets: run-local and run-docker < 1.25x papermill, dagster < 1.5x.

    python benchmarks/run_overhead.py [--quick] [--runs N] [--before TREE] [--only-docker]

After each Docker variant the script waits SETTLE_S (untimed), so that the
spare it leaves finishes booting before the next timed variant: the steady
state of scheduled runs, and no spare boot is billed to another variant.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

SETTLE_S = 4.0  # untimed, after each Docker variant: its spare boots before the next variant starts
STALL_S = 2.5  # a run this much slower than the fastest one counts as a kernel-shutdown stall


def nb_assets_notebook(path: Path) -> Path:
    return C.write_notebook(path, [
        ("markdown", "# Doubled\n\nA trivial notebook for measuring run overhead."),
        ("code", C.SETUP_SOURCE),
        ("code", "n = 3", ["parameters"]),
        ("code", "%%sql nums\nSELECT i FROM main.nums WHERE i < $n"),
        ("code", "doubled = nums.assign(j=nums['i'] * 2)"),
        ("code", 'output("mart.doubled", doubled)'),
    ])


def papermill_notebook(path: Path, data: Path) -> Path:
    """The same work without nb_assets: read Parquet, pandas, write Parquet."""
    return C.write_notebook(path, [
        ("markdown", "# Doubled\n\nA trivial notebook for measuring run overhead."),
        ("code", "import pandas as pd"),
        ("code", "n = 3", ["parameters"]),
        ("code", f"nums = pd.read_parquet({str(data / 'nums.parquet')!r})\nnums = nums[nums['i'] < n]"),
        ("code", "doubled = nums.assign(j=nums['i'] * 2)"),
        ("code", f"doubled.to_parquet({str(data / 'doubled.parquet')!r}, index=False)"),
    ])


DEFS = '''
from nb_assets import NotebookAsset, notebook_definitions
defs = notebook_definitions([NotebookAsset({nb!r})], warehouse={wh!r}, sandbox="local")
'''
# Dagster's own floor: one no-op asset (default executor, and in_process through run config).
NOOP_DEFS = '''
import dagster as dg
@dg.asset
def noop() -> None:
    pass
defs = dg.Definitions(assets=[noop])
'''


def main() -> None:
    def options(p: Any) -> None:
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--before", type=Path, default=None, help="an nb_assets source tree timed as run-docker-before")
        p.add_argument("--only-docker", action="store_true", help="papermill and the Docker variants only")

    args = C.parse_args(__doc__, options)
    runs = args.runs or (3 if args.quick else 7)
    C.print_machine("papermill", "dagster", "duckdb", "pandas", "ipykernel", "jupyter_client")
    with C.temp_dir("overhead") as tmp:
        wh = C.seed_duckdb(tmp / "warehouse.duckdb", [
            "CREATE TABLE main.nums AS SELECT range::INTEGER AS i FROM range(10)",
            f"COPY main.nums TO '{tmp / 'nums.parquet'}' (FORMAT parquet)",
        ])
        nb = nb_assets_notebook(tmp / "doubled.ipynb")
        plain = papermill_notebook(tmp / "plain.ipynb", tmp)
        defs = tmp / "defs.py"
        defs.write_text(DEFS.format(nb=str(nb), wh=str(wh)))
        (tmp / "noop_defs.py").write_text(NOOP_DEFS)
        dagster_home = tmp / "dagster_home"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        records = tmp / "records"
        run_argv = [C.bin_path("nb-assets"), "run", str(nb), "--warehouse", str(wh), "--records", str(records)]
        variants = {
            "papermill": lambda: C.time_process(
                [C.bin_path("papermill"), str(plain), str(tmp / "plain_out.ipynb"), "-k", "python3"], cwd=tmp),
            "run-local": lambda: C.time_process([*run_argv, "--sandbox", "local"], cwd=tmp),
        }
        reason = C.docker_reason()
        if reason is None:
            def docker(env: dict[str, str]) -> float:
                took = C.time_process([*run_argv, "--sandbox", "docker"], cwd=tmp, env=env)
                time.sleep(SETTLE_S)
                return took

            variants["run-docker"] = lambda: docker({})
            variants["run-docker-cold"] = lambda: docker({"NB_ASSETS_DOCKER_SPARES": "0"})
            if args.before is not None:
                variants["run-docker-before"] = lambda: docker({"PYTHONPATH": str(args.before.resolve())})
        if args.only_docker:
            variants.pop("run-local")
        in_process = ["--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})]
        dagster_variants = {"dagster": (defs, []), "dagster-noop": (tmp / "noop_defs.py", []),
                            "dagster-noop-inproc": (tmp / "noop_defs.py", in_process)}
        for name, (file, extra) in () if args.only_docker else dagster_variants.items():
            variants[name] = lambda file=file, extra=extra: C.time_process(
                [C.bin_path("dagster"), "asset", "materialize", "-f", str(file), "--select", "*", *extra],
                env={"DAGSTER_HOME": str(dagster_home)}, cwd=tmp)
        print(f"\n{runs} interleaved runs per variant after 1 warm-up; whole-process wall time")
        times = C.time_round_robin(variants, runs)

    base = C.median(times["papermill"])
    targets = {"run-local": 1.25, "run-docker": 1.15, "dagster": 1.5}
    print()
    for name, values in times.items():
        ratio = C.median(values) / base
        stalls = sum(v > min(values) + STALL_S for v in values)
        note = f"  stalls(>{STALL_S:g}s over min): {stalls}" if stalls or name == "papermill" else ""
        target = f" (target < {targets[name]:g})" if name in targets else " (reference)" if name != "papermill" else " (baseline)"
        print(f"{name:11s} {C.fmt_times(values)}  ratio {ratio:5.2f}x{target}{note}")
    if reason is not None:
        print(f"run-docker  skipped: {reason}")
    if "dagster" in times:
        for noop, what in (("dagster-noop", "Dagster's default executor"), ("dagster-noop-inproc", "in_process")):
            floor = C.median(times["dagster"]) - C.median(times[noop])
            print(f"dagster minus the no-op ({what}): {floor:.3f} s = {floor / base:.2f}x papermill "
                  f"(the floor alone is {C.median(times[noop]) / base:.2f}x)")
    for name in ("run-docker", "run-docker-cold", "run-docker-before"):
        if name in times:
            ratios = [t / b for t, b in zip(times[name], times["papermill"])]
            print(f"{name:17s} per-round ratio to papermill: median {C.median(ratios):.2f}x "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    print("all times: " + "; ".join(f"{n}=" + ",".join(f"{v:.2f}" for v in vs) for n, vs in times.items()))
    if "run-docker" in times:
        C.summary("run_overhead_docker", C.median(times["run-docker"]) / base, 1.15)
    if "run-local" in times:
        C.summary("run_overhead", C.median(times["run-local"]) / base, 1.25)


if __name__ == "__main__":
    main()
