"""Start-up time of each CLI command and of the Jupyter magics, in a fresh interpreter.

On a copy of the demo project (seeded DuckDB warehouse, the local sandbox), times
the wall and CPU time (user + system; steadier on a loaded machine) of a fresh
process, median of 5 interleaved runs after 1 warm-up, for:
  --help            `nb-assets --help`: the interpreter, argparse and nb_assets.cli.main
  check             `nb-assets check notebooks/clean_orders.ipynb` (warm parse cache)
  lineage           `nb-assets lineage raw.orders`
  land              `nb-assets land raw.orders` (records a landing, loads no file)
  run               `nb-assets run NB --warehouse W` of a notebook outside the project (ad hoc)
  run-declared      `nb-assets run notebooks/clean_orders.ipynb --definitions definitions.py`
  backfill          `nb-assets backfill notebooks/daily_orders.ipynb --from D --to D`
  schedule          `nb-assets schedule NB --owner ... --purpose ...` (a dry run)
  jupyter           `%load_ext nb_assets.notebook`, one `%%sql`, `%nb_context NB`
run, run-declared, backfill and schedule are timed up to the moment the notebook's
sandbox is started (a Python audit hook sees the runner's Popen and ends the process
there): the start-up is what comes before the kernel, which no refactor changes.
The others are timed whole: they do little more than start.

    python benchmarks/cli_startup.py [--quick] [--runs N] [--before TREE]

With --before TREE (an older checkout, e.g. `git worktree add /tmp/old main`),
each command also runs with PYTHONPATH=TREE, interleaved with this tree's, and
the table shows before, after and after/before. The figure is reported; there
is no target.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

# Ends the process when the sandbox is about to start the notebook, printing the wall clock then.
STOP_AT_SANDBOX = """
import os, sys, time
def _hook(event, args):
    if event == "subprocess.Popen" and any(str(a).endswith("inbox_papermill.py") for a in args[1]):
        print(f"SANDBOX_AT {time.time()!r}", flush=True)
        os._exit(0)
sys.addaudithook(_hook)
from nb_assets.cli import main  # a module before the layout, a package (re-exporting main) after
sys.exit(main(sys.argv[1:]))
"""

JUPYTER = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.extension_manager.load_extension("nb_assets.notebook")
shell.run_cell_magic("sql", "orders", "SELECT * FROM raw.orders LIMIT 10")
shell.run_line_magic("nb_context", "notebooks/clean_orders.ipynb")
"""

SCHEDULED = """{
 "cells": [
  {"cell_type": "markdown", "id": "c0", "metadata": {}, "source": "# Big orders"},
  {"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {}, "outputs": [],
   "source": "%load_ext nb_assets.notebook\\nfrom nb_assets.notebook import output"},
  {"cell_type": "code", "execution_count": null, "id": "c2", "metadata": {"tags": ["parameters"]}, "outputs": [],
   "source": "min_amount = 10.0"},
  {"cell_type": "code", "execution_count": null, "id": "c3", "metadata": {}, "outputs": [],
   "source": "%%sql orders\\nSELECT order_id, amount FROM raw.orders WHERE amount >= $min_amount"},
  {"cell_type": "code", "execution_count": null, "id": "c4", "metadata": {}, "outputs": [],
   "source": "output('mart.big_orders', orders)"}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}
"""


def demo_project(folder: Path) -> Path:
    """The demo's notebooks, definitions.py and policy over a freshly seeded warehouse, and a notebook to schedule."""
    folder.mkdir(parents=True)
    shutil.copytree(C.REPO / "notebooks", folder / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(C.REPO / name, folder / name)
    subprocess.run([sys.executable, str(C.REPO / "scripts" / "seed_demo.py"), "--warehouse", str(folder / "warehouse.duckdb")],
                   check=True, capture_output=True)
    (folder / "notebooks" / "big_orders.ipynb").write_text(SCHEDULED)
    return folder


def commands(project: Path, adhoc: Path) -> dict[str, tuple[list[str], Path, bool]]:
    """name -> (argv after the interpreter, working folder, timed up to the sandbox)."""
    cli, local = ["-c", STOP_AT_SANDBOX], ["--sandbox", "local"]  # schedule's trial: the project's (NB_ASSETS_SANDBOX)
    return {
        "--help": ([*cli, "--help"], project, False),
        "check": ([*cli, "check", "notebooks/clean_orders.ipynb"], project, False),
        "lineage": ([*cli, "lineage", "raw.orders"], project, False),
        "land": ([*cli, "land", "raw.orders"], project, False),
        "run": ([*cli, "run", str(adhoc), "--warehouse", str(project / "warehouse.duckdb"), *local], adhoc.parent, True),
        "run-declared": ([*cli, "run", "notebooks/clean_orders.ipynb", "--definitions", "definitions.py", *local], project, True),
        "backfill": ([*cli, "backfill", "notebooks/daily_orders.ipynb", "--from", "2026-11-20", "--to", "2026-11-20", *local],
                     project, True),
        "schedule": ([*cli, "schedule", "notebooks/big_orders.ipynb", "--owner", "a@example.com", "--purpose", "finance_reporting"],
                     project, True),
        "jupyter": (["-c", JUPYTER], project, False),
    }


def time_command(argv: list[str], cwd: Path, env: dict[str, str], to_sandbox: bool) -> tuple[float, float]:
    """Wall and CPU (user + system) time of a fresh interpreter: whole, or up to the sandbox's start
    (which it must reach). On a loaded machine the CPU time is the steadier figure."""
    with tempfile.TemporaryFile() as err:
        started = time.time()
        proc = subprocess.Popen([sys.executable, *argv], cwd=cwd, env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()  # type: ignore[union-attr]  # until EOF: the process has ended
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()  # type: ignore[union-attr]
        marks = [float(line.split()[1]) for line in out.splitlines() if line.startswith("SANDBOX_AT ")]
        if proc.returncode != 0 or (to_sandbox and not marks):
            err.seek(0)
            raise RuntimeError(f"{argv[2:]} failed or did not reach the sandbox (exit {proc.returncode}):\n{out[-2000:]}\n"
                               f"{err.read().decode(errors='replace')[-3000:]}")
    return (marks[0] if to_sandbox else ended) - started, usage.ru_utime + usage.ru_stime


def main() -> None:
    def options(p: Any) -> None:
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--before", type=Path, default=None, help="an older nb_assets checkout, timed as `before`")

    args = C.parse_args(__doc__, options)
    runs = args.runs or (3 if args.quick else 5)
    C.print_machine("dagster", "duckdb", "sqlglot", "ipython")
    trees = {"after": C.REPO} | ({"before": args.before.resolve()} if args.before else {})
    print("trees: " + ", ".join(f"{name}={tree}" for name, tree in trees.items()))
    with C.temp_dir("startup") as tmp:
        variants, cpu = {}, {}
        for name, tree in trees.items():
            project = demo_project(tmp / name / "project")
            adhoc = tmp / name / "adhoc" / "big_orders.ipynb"
            adhoc.parent.mkdir(parents=True)
            adhoc.write_text(SCHEDULED)
            env = {"PYTHONPATH": str(tree), "NB_ASSETS_CACHE": str(tmp / name / "cache"), "NB_ASSETS_SANDBOX": "local",
                   "NB_ASSETS_WAREHOUSE": str(project / "warehouse.duckdb")}
            for command, (argv, cwd, to_sandbox) in commands(project, adhoc).items():
                key = f"{command}@{name}"
                cpu[key] = []
                variants[key] = lambda a=argv, c=cwd, e=env, s=to_sandbox, k=key: _timed(cpu[k], time_command(a, c, e, s))
        print(f"\n{runs} interleaved runs per command and tree after 1 warm-up; fresh process; wall and CPU time\n")
        wall = C.time_round_robin(variants, runs)
    cpu = {key: values[1:] for key, values in cpu.items()}  # not the warm-up's

    names = list(dict.fromkeys(key.split("@")[0] for key in variants))
    if args.before is None:
        for command in names:
            print(f"{command:13s} wall {C.fmt_times(wall[f'{command}@after'])}; CPU median {C.median(cpu[f'{command}@after']):.3f} s")
        return
    print(f"{'':13s} {'wall time (median)':^31s}   {'CPU time (median)':^31s}")
    print(f"{'command':13s} {'before':>9s} {'after':>9s} {'after/before':>12s}   {'before':>9s} {'after':>9s} {'after/before':>12s}")
    for command in names:
        row = []
        for figures in (wall, cpu):
            before, after = C.median(figures[f"{command}@before"]), C.median(figures[f"{command}@after"])
            row.append(f"{before:8.3f}s {after:8.3f}s {after / before:11.2f}x")
        print(f"{command:13s} " + "   ".join(row))
    print("all wall times: " + "; ".join(f"{n}=" + ",".join(f"{v:.2f}" for v in vs) for n, vs in wall.items()))


def _timed(cpu: list[float], times: tuple[float, float]) -> float:
    """Keeps the CPU time aside; the wall time is what the round robin collects."""
    cpu.append(times[1])
    return times[0]

if __name__ == "__main__":
    main()
