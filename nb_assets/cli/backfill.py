"""`nb-assets backfill NOTEBOOK --from DAY --to DAY`: run a partitioned notebook once per day.

Each day runs through the same host pipeline as `nb-assets run --definitions
... --partition DAY` and replaces only that day's rows. A failed day does not
stop the others; the failed days are listed at the end and the exit code is 1.
The dates are checked before anything runs: a range that is not two days, in
order, from the notebook's first partition on, runs nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, get_args

from nb_assets.cli.jobs import declared_job, execute_job
from nb_assets.errors import DeclarationError, NbAssetsError
from nb_assets.sandbox.base import SandboxKind

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_backfill_command(sub: Any) -> None:
    backfill = sub.add_parser("backfill", help="run a daily-partitioned notebook once per day of a date range")
    backfill.add_argument("notebook", type=Path)
    backfill.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD", help="the first day")
    backfill.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD", help="the last day, included")
    backfill.add_argument("--definitions", type=Path, default=Path("definitions.py"),
                          help="the project declaring the notebook (default: %(default)s)")
    backfill.add_argument("--instance", default=None, help="which instance, for a notebook declared with instances=")
    backfill.add_argument("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: the project's)")
    backfill.add_argument("--sandbox", choices=get_args(SandboxKind), default=None)
    backfill.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="per day")
    backfill.add_argument("--records", type=Path, default=Path(".nb_assets/runs"), help="where run records go")
    backfill.add_argument("--json", action="store_true")
    backfill.set_defaults(func=cmd_backfill, param=[])


def cmd_backfill(args: argparse.Namespace) -> int:
    from nb_assets.project.partitions import check_day, days
    from nb_assets.runs.output import details_line

    try:
        wanted = days(args.first, args.last, "--from/--to")
        if not args.notebook.is_file():
            raise DeclarationError(f"no such notebook: {args.notebook}")
        job = declared_job(args)
        if job.partitions is None:
            raise DeclarationError(f"{job.spec.path} is not partitioned; run it with `nb-assets run`")
        check_day(wanted[0], job.partitions.start, f"{job.spec.path} --from")
        check_day(wanted[-1], job.partitions.start, f"{job.spec.path} --to")
    except NbAssetsError as exc:
        print(f"nb-assets backfill: {exc}", file=sys.stderr)
        return EXIT_USAGE
    results: list[dict[str, Any]] = []
    for day in wanted:
        try:
            run, summary, _ = execute_job(job, args, day)
            status, error = run.status, (str(run.error) if run.error else None)
        except NbAssetsError as exc:  # refused before it ran (policy, a view that cannot be seen through)
            status, error, summary = "failed", str(exc), {}
        results.append({"partition": day, "status": status, "error": error, "outputs": summary.get("outputs", []),
                        "record": summary.get("record")})
        if not args.json:
            loaded = ", ".join(f"{o['table']} ({o['rows']} rows)" for o in summary.get("outputs", []))
            line = f"{day}: {status}" + (f", loaded {loaded}" if status == "success" else f": {error}")
            if status != "success" and summary.get("run_id"):
                line += "\n  " + details_line(summary["run_id"], args.records)
            print(line, file=sys.stdout if status == "success" else sys.stderr, flush=True)
    failed = [r["partition"] for r in results if r["status"] != "success"]
    if args.json:
        print(json.dumps({"notebook": job.spec.path, "days": results, "failed": failed}, indent=2, default=str))
    elif failed:
        print(f"nb-assets backfill: {job.spec.path}: {len(failed)} of {len(wanted)} day(s) failed: {', '.join(failed)}",
              file=sys.stderr)
    else:
        print(f"{job.spec.path}: all {len(wanted)} day(s) succeeded")
    return EXIT_FAILED if failed else EXIT_OK
