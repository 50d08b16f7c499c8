"""Soak: run a demo notebook many times in each sandbox and count spurious failures.

A scheduler runs notebooks thousands of times, so a rare failure that has
nothing to do with the notebook (a teardown abort, a lost copy-out, a stalled
kernel) matters. The notebook here is deterministic and correct: every run
that does not end in success, with exit code 0 from `nb-assets run`, is a
spurious failure. Runs go through the CLI exactly as a user or a cron job
would start them, alternating the sandboxes so both see the same machine.

    python scripts/soak.py [--runs 200] [--sandbox local docker] [--notebook notebooks/clean_orders.ipynb]
                           [--report soak.json]

Prints a line per failure, progress every 10 runs, and a summary; writes the
full report as JSON. Exit code 1 when any run failed. Not a test: it takes
about an hour at the default 200 runs per sandbox.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seed_warehouse(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("seed_demo", REPO / "scripts" / "seed_demo.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    module.seed(path, scale=1, seed=42)


def one_run(notebook: Path, warehouse: Path, sandbox: str, records: Path, timeout_s: float) -> dict:
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "nb_assets.cli", "run", str(notebook), "--warehouse", str(warehouse),
             "--sandbox", sandbox, "--records", str(records), "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "exit_code": None, "why": f"no answer within {timeout_s:g} s", "seconds": timeout_s}
    seconds = round(time.monotonic() - started, 2)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    ok = proc.returncode == 0 and report.get("status") == "success"
    outcome = {"ok": ok, "exit_code": proc.returncode, "seconds": seconds,
               "sandbox_exit_code": (report.get("sandbox") or {}).get("exit_code")}
    if not ok:
        outcome["why"] = (report.get("error") or {}).get("message") or proc.stderr.strip()[-2000:]
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per sandbox (default: %(default)s)")
    parser.add_argument("--sandbox", nargs="+", default=["local", "docker"], choices=["local", "docker"])
    parser.add_argument("--notebook", type=Path, default=REPO / "notebooks" / "clean_orders.ipynb")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run counts as hung")
    parser.add_argument("--report", type=Path, default=Path("soak.json"))
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="nb-assets-soak-"))
    warehouse = work / "warehouse.duckdb"
    seed_warehouse(warehouse)
    results: dict[str, list[dict]] = {s: [] for s in args.sandbox}
    started = time.monotonic()
    try:
        for i in range(1, args.runs + 1):
            for sandbox in args.sandbox:
                outcome = one_run(args.notebook, warehouse, sandbox, work / "records" / sandbox, args.timeout)
                results[sandbox].append(outcome)
                if not outcome["ok"]:
                    print(f"run {i} {sandbox}: FAILED (exit {outcome['exit_code']}): {outcome['why'][:300]}", flush=True)
            shutil.rmtree(work / "records", ignore_errors=True)  # records are kept by the report, not on disk
            if i % 10 == 0:
                done = ", ".join(f"{s} {sum(not o['ok'] for o in r)}/{len(r)} failed" for s, r in results.items())
                print(f"[{time.monotonic() - started:6.0f} s] {i} rounds: {done}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {
        s: {
            "runs": len(r),
            "spurious_failures": sum(not o["ok"] for o in r),
            "runner_exit_not_0_but_success": sum(o["ok"] and o["sandbox_exit_code"] not in (0, None) for o in r),
            "median_s": sorted(o["seconds"] for o in r)[len(r) // 2] if r else None,
        }
        for s, r in results.items()
    }
    args.report.write_text(json.dumps({"notebook": str(args.notebook), "summary": summary, "runs": results}, indent=2))
    for sandbox, figures in summary.items():
        print(f"{sandbox}: {figures['spurious_failures']} spurious failures in {figures['runs']} runs "
              f"(median {figures['median_s']} s)")
    print(f"report: {args.report}")
    return 1 if any(f["spurious_failures"] for f in summary.values()) else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # like the CLI: teardown noise must not change the verdict
