"""`nb-assets`: check notebooks, run one ad hoc, ask where data flows, build the sandbox.

Exit codes: 0 fine, 1 findings or a failed run, 2 usage error or unreadable path.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from nb_assets.cli.adopt import add_adopt_command
from nb_assets.cli.backfill import add_backfill_command
from nb_assets.cli.check import cmd_check
from nb_assets.cli.deploy import add_deploy_command
from nb_assets.cli.jobs import DEFAULT_WAREHOUSE, _ad_hoc_job, declared_job, execute_job
from nb_assets.cli.lab import add_lab_command
from nb_assets.cli.land import add_land_command
from nb_assets.cli.lineage import add_lineage_command
from nb_assets.cli.migrate import add_migrate_command
from nb_assets.cli.new import add_new_command
from nb_assets.cli.runs import add_runs_commands
from nb_assets.cli.sandbox import add_sandbox_command
from nb_assets.cli.schedule import add_schedule_command
from nb_assets.cli.status import add_status_command
from nb_assets.errors import DeclarationError, NbAssetsError, error_json
from nb_assets.sandbox.base import SandboxKind

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NbAssetsError as exc:  # every message starts with the command that says it
        print(f"nb-assets {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE if args.command != "run" else EXIT_FAILED


def entry() -> None:
    """The `nb-assets` command: main(), then leave without interpreter teardown.

    By then the verdict is printed and every file is written and closed. What
    teardown could add is noise: the native thread pools of Arrow and DuckDB
    can abort the process at exit ("terminate called without an active
    exception"), which would turn a successful run's exit code 0 into 134.
    """
    code = main()
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nb-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="parse notebooks and report their inputs, outputs and findings")
    check.add_argument("paths", nargs="+", type=Path, help="notebook files or folders")
    check.add_argument("--json", action="store_true")
    check.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                       help="worker processes for notebooks not in the parse cache (default: one per core past 200)")
    check.add_argument("--dialect", choices=("duckdb", "postgres"), default=None,
                       help="the SQL dialect of %%sql inputs (default: NB_ASSETS_WAREHOUSE's warehouse's, else duckdb)")
    check.set_defaults(func=cmd_check)

    run = sub.add_parser("run", help="run one notebook: prefetch, sandbox, load (outside Dagster)")
    run.add_argument("notebook", type=Path)
    run.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    run.add_argument("--warehouse", default=None,
                     help=f"DuckDB file or postgresql:// URL (default: the declared project's, else {DEFAULT_WAREHOUSE})")
    run.add_argument("--sandbox", choices=get_args(SandboxKind), default=None,
                     help="auto|docker|local (default: the declaration's, else auto)")
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    run.add_argument("--prefetch-timeout", type=float, default=None, metavar="SECONDS",
                     help="limit of the prefetch of SQL inputs (default: the declaration's, else 300), within --timeout")
    run.add_argument("--load-timeout", type=float, default=None, metavar="SECONDS",
                     help="limit of the load of outputs, checks included (default: the declaration's, else 300), within --timeout")
    run.add_argument("--checks-timeout", type=float, default=None, metavar="SECONDS",
                     help="limit of the output checks inside the load (default: the declaration's, else 120)")
    run.add_argument("--records", type=Path, default=Path(".nb_assets/runs"), help="where run records go")
    run.add_argument("--definitions", type=Path, default=None, metavar="FILE",
                     help="run the notebook as declared in this definitions file (allowances, params, "
                          "limits, sandbox, purpose, policy gate, warehouse); flags override")
    run.add_argument("--instance", default=None, help="with --definitions: which instance of a notebook declared with instances=")
    run.add_argument("--partition", default=None, metavar="YYYY-MM-DD", help="with --definitions: the day a partitioned notebook runs")
    run.add_argument("--force", action="store_true",
                     help="replace the notebook's output tables even when they are not its own (a source, another "
                          "notebook's output, a table it did not load); says what it replaces first")
    run.add_argument("--html", action="store_true", help="also render the executed notebook as HTML")
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=cmd_run)

    add_lineage_command(sub)
    add_adopt_command(sub)
    add_runs_commands(sub)
    add_land_command(sub)
    add_backfill_command(sub)
    add_sandbox_command(sub)
    add_deploy_command(sub)
    add_schedule_command(sub)
    add_migrate_command(sub)
    add_status_command(sub)
    add_new_command(sub)
    add_lab_command(sub)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    if not args.notebook.is_file():
        print(f"nb-assets run: no such notebook: {args.notebook}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run_one(args)
    except NbAssetsError as exc:  # refused before the notebook ran: still one verdict on stdout
        if args.json:
            print(json.dumps({"status": "failed", "error": error_json(exc), "outputs": [], "executed_notebook": None, "html": None}, indent=2))
        print(f"nb-assets run: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run_one(args: argparse.Namespace) -> int:
    from nb_assets.analysis.parameters import cli_assignments, coerce_cli_value
    from nb_assets.runs.check_report import check_lines
    from nb_assets.runs.output import record_lines, replaced_lines

    job = declared_job(args) if args.definitions else _ad_hoc_job(args)
    try:
        assignments = cli_assignments(args.param, "--param")
    except DeclarationError as exc:  # a malformed command line, not a refused notebook
        print(f"nb-assets run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name, raw in assignments.items():
        job.params[name] = coerce_cli_value(job.spec, name, raw)
    if job.partitions is not None and args.partition is None:
        raise DeclarationError(f"{job.spec.path} is partitioned daily: pass --partition YYYY-MM-DD, or use `nb-assets backfill`")
    if args.partition is not None and job.partitions is None:
        raise DeclarationError(f"{job.spec.path} is not partitioned (declare partitions=DailyPartitions(...) with --definitions)")
    if args.partition is not None:
        from nb_assets.project.partitions import check_day

        check_day(args.partition, job.partitions.start, f"{job.spec.path} --partition")
    takeover = job.takeover
    if takeover:  # what --force cannot change is refused first: it is neither offered nor announced in vain
        from nb_assets.runs.guard import refuse_anyway

        refuse_anyway(job.spec, job.params, job.warehouse)
        if not job.forced:
            raise takeover.refusal()

    def announce() -> None:
        if takeover:
            print(f"nb-assets run: {takeover.announcement()}", file=sys.stderr)

    run, summary, kind = execute_job(job, args, args.partition, before_run=announce)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    elif run.status == "success":
        lines = [success_line(run, summary, kind), *replaced_lines(summary.get("replaced") or []), *check_lines(run.check_outcomes)]
        print("\n".join(lines + record_lines(summary["executed_notebook"], summary["html"])))
    else:
        print(failure_text(args, run, summary), file=sys.stderr)
    return EXIT_OK if run.status == "success" else EXIT_FAILED


def success_line(run: Any, summary: dict[str, Any], kind: str) -> str:
    """`<notebook>: success in 1.23 s via docker sandbox; loaded mart.x (10 rows) into warehouse.duckdb`."""
    loaded = ", ".join(f"{o['table']} ({o['rows']} rows)" for o in summary["outputs"])
    into = f"{loaded} into {summary['warehouse']}" if loaded else "nothing (report)"
    return f"{run.spec.path}: success in {run.duration_s:.2f} s via {kind} sandbox; loaded {into}"


def failure_text(args: argparse.Namespace, run: Any, summary: dict[str, Any]) -> str:
    """What failed (the failing cell, marked source, trimmed traceback), the files kept, and the run id."""
    from nb_assets.runs.check_report import check_lines
    from nb_assets.runs.output import details_line, failure_block, record_lines

    block = failure_block(run.spec.path, run.error, summary["executed_notebook"], run.folder.result_file)
    lines = [f"nb-assets {args.command}: {run.error}", *(("", block, "") if block else ()), *check_lines(run.check_outcomes)]
    lines += record_lines(summary["executed_notebook"], summary["html"], summary["record"])
    lines.append(details_line(summary["run_id"], args.records))
    return "\n".join(lines)


if __name__ == "__main__":
    entry()
