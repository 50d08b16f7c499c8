"""`nb-assets`: check notebooks, run one ad hoc, ask where data flows, build the sandbox.

Exit codes: 0 fine, 1 findings or a failed run, 2 usage error or unreadable path.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from nb_assets.cli_backfill import add_backfill_command
from nb_assets.cli_check import cmd_check
from nb_assets.cli_deploy import add_deploy_command
from nb_assets.cli_land import add_land_command
from nb_assets.cli_lineage import add_lineage_command
from nb_assets.cli_runs import add_runs_commands
from nb_assets.cli_sandbox import add_sandbox_command
from nb_assets.cli_schedule import add_schedule_command
from nb_assets.errors import DeclarationError, NbAssetsError, error_json
from nb_assets.sandbox import SandboxKind, SandboxLimits
from nb_assets.spec import NotebookSpec

if TYPE_CHECKING:
    from nb_assets.declared_notebooks import Gate
    from nb_assets.run_guard import Takeover

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_WAREHOUSE = "warehouse.duckdb"


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
    add_runs_commands(sub)
    add_land_command(sub)
    add_backfill_command(sub)
    add_sandbox_command(sub)
    add_deploy_command(sub)
    add_schedule_command(sub)
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
    from nb_assets.parameters import cli_assignments, coerce_cli_value
    from nb_assets.run_output import record_lines, replaced_lines

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
        from nb_assets.partitions import check_day

        check_day(args.partition, job.partitions.start, f"{job.spec.path} --partition")
    takeover = job.takeover
    if takeover:  # what --force cannot change is refused first: it is neither offered nor announced in vain
        from nb_assets.run_guard import refuse_anyway

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
        lines = [success_line(run, summary, kind), *replaced_lines(summary.get("replaced") or [])]
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
    from nb_assets.run_output import details_line, failure_block, record_lines

    block = failure_block(run.spec.path, run.error, summary["executed_notebook"], run.folder.result_file)
    lines = [f"nb-assets {args.command}: {run.error}", *(("", block, "") if block else ())]
    lines += record_lines(summary["executed_notebook"], summary["html"], summary["record"])
    lines.append(details_line(summary["run_id"], args.records))
    return "\n".join(lines)


def execute_job(
    job: _Job, args: argparse.Namespace, day: str | None = None, before_run: Callable[[], None] | None = None
) -> tuple[Any, dict[str, Any], str]:
    """One run through the host pipeline, its record kept; for a partitioned job, the run of `day`.
    `before_run` is called once the sandbox is chosen, just before the run starts.
    Returns the NotebookRun, its summary, and the sandbox kind it ran in.

    The record and the summary name the warehouse and, for a --force run, what it replaced.
    Shared by `nb-assets run` and `nb-assets backfill`, so a backfilled day runs as `run` would."""
    from nb_assets.choose_sandbox import choose_sandbox
    from nb_assets.record import run_summary
    from nb_assets.runs.once import Refused, about_run, run_once
    from nb_assets.warehouse import open_warehouse
    from nb_assets.warehouse_partitions import PartitionLoad

    limits = job.limits if args.timeout is None else replace(job.limits, timeout_s=args.timeout)
    sandbox = choose_sandbox(job.sandbox)
    fallback = getattr(sandbox, "fallback_reason", None)
    if fallback:
        print(f"nb-assets {args.command}: using the local sandbox (network and process isolation only): {fallback}", file=sys.stderr)
    partition = PartitionLoad(job.partitions.column, day) if job.partitions is not None and day is not None else None
    stamp, serial = time.strftime("%Y%m%dT%H%M%S"), f"{time.time_ns() % 10**9:09d}"
    run_dir = args.records / job.spec.name / stamp / serial
    about = about_run(f"{stamp}-{serial}", "cli", warehouse=job.warehouse, notebook=job.spec.path, day=day)
    if before_run is not None:
        before_run()
    forced = (job.takeover.taken if job.takeover else ()) if job.forced else None
    with run_once(job.spec, warehouse=open_warehouse(job.warehouse), sandbox=sandbox, run_dir=run_dir, about=about,
                  params=job.params, limits=limits, gate=job.gate, partition=partition, forced=forced,
                  html=getattr(args, "html", False)) as outcome:
        if isinstance(outcome, Refused):  # refused before it ran: the caller says why
            raise outcome.error
        run, record = outcome.run, outcome.record
    return run, {**run_summary(run, outcome.about), "html": str(record["html"]) if "html" in record else None}, sandbox.kind


@dataclass
class _Job:
    """What one `nb-assets run` executes; CLI flags are applied on top of it."""

    spec: NotebookSpec
    params: dict[str, Any]
    limits: SandboxLimits
    sandbox: SandboxKind
    warehouse: str
    gate: Gate | None = None  # the policy gate (declared runs)
    partitions: Any = None  # DailyPartitions, when the declaration has them
    takeover: Takeover | None = None  # the tables not its own it would replace (ad hoc runs)
    forced: bool = False  # --force: replace them anyway


def _ad_hoc_job(args: argparse.Namespace) -> _Job:
    """The notebook as written, against --warehouse (else its project's warehouse, else ./warehouse.duckdb),
    with the tables not its own it would replace (run_guard: refused before anything runs, unless --force)."""
    from nb_assets.notebook_parser import dialect_of, parse_notebook
    from nb_assets.run_guard import ad_hoc_takeover

    project, definitions = _nearest_project(args.notebook)
    warehouse = args.warehouse or (project.warehouse if project is not None else None) or DEFAULT_WAREHOUSE
    spec = parse_notebook(args.notebook, dialect_of(warehouse))
    if project is not None and definitions is not None:
        _refuse_without_its_declaration(args.notebook, project, definitions)
    takeover = ad_hoc_takeover(args.notebook, spec, project, definitions, warehouse)
    return _Job(spec, {}, SandboxLimits(), args.sandbox or "auto", warehouse, takeover=takeover, forced=args.force)


def _nearest_project(notebook: Path) -> tuple[Any, Path | None]:
    """The declarations of the project the notebook is in (its nearest definitions.py), read without Dagster."""
    from nb_assets.definitions_file import load_declarations
    from nb_assets.run_records import nearest_project

    project_dir = nearest_project(notebook)
    if project_dir is None:
        return None, None
    definitions = project_dir / "definitions.py"
    try:
        return load_declarations(definitions), definitions
    except Exception as exc:  # noqa: BLE001  # any error of the user's file: it cannot tell us, say so and go on
        print(f"nb-assets run: could not read {definitions} to see how it declares {notebook} "
              f"(only the warehouse tells which tables are its own): {exc}", file=sys.stderr)
        return None, definitions


def _refuse_without_its_declaration(notebook: Path, project: Any, definitions: Path) -> None:
    """A notebook its project declares daily-partitioned, with instances, or with its outputs
    mapped, runs only as declared: run ad hoc, its outputs would replace every day's rows of a
    partitioned table, or land in a table no declaration has."""
    for decl in project.notebooks:
        if decl.notebook_file(project.base_dir).resolve() != notebook.resolve():
            continue
        if decl.partitions is not None:
            raise DeclarationError(
                f"{notebook} is daily-partitioned in {definitions}: run one day with --definitions {definitions} "
                "--partition YYYY-MM-DD (run without, its outputs would replace every day's rows)"
            )
        if decl.instances:
            raise DeclarationError(
                f"{notebook} is declared with instances ({', '.join(decl.instances)}) in {definitions}: "
                f"run one with --definitions {definitions} --instance NAME"
            )
        if decl.outputs:
            raise DeclarationError(
                f"{notebook} is declared with outputs= in {definitions} (its outputs load into other tables): "
                f"run it as declared with --definitions {definitions}"
            )


def declared_job(args: argparse.Namespace) -> _Job:
    """The notebook as Dagster would run it: its declaration's allowances, parameters,
    limits, sandbox, purpose and policy gate, and the project's warehouse. Flags win.
    A notebook declared with instances needs `--instance`."""
    from nb_assets.declared_notebooks import declare_notebooks, policy_gate
    from nb_assets.definitions_file import load_declarations
    from nb_assets.notebook_parser import dialect_of

    project = load_declarations(args.definitions)

    dialect = dialect_of(args.warehouse or project.warehouse)
    declared = declare_notebooks(project.notebooks, project.base_dir, dialect=dialect)  # the gate sees views through at run time
    mine = [d for d in declared if Path(d.spec.path).resolve() == args.notebook.resolve()]
    if not mine:
        raise DeclarationError(f"{args.notebook} is not declared in {args.definitions}")
    instances = [d.decl.instance for d in mine if d.decl.instance]
    wanted = getattr(args, "instance", None)
    item = next((d for d in mine if d.decl.instance == wanted), None)
    if item is None:
        if wanted is None:
            raise DeclarationError(f"{args.notebook} is declared with instances ({', '.join(instances)}); pick one with --instance")
        raise DeclarationError(f"{args.notebook} has no instance {wanted!r} in {args.definitions} (instances: {', '.join(instances) or 'none'})")
    decl = item.decl
    gate = policy_gate(project.policy, declared, item) if project.policy else None
    return _Job(
        spec=item.spec,
        params=dict(decl.params),
        limits=decl.limits,
        sandbox=args.sandbox or (decl.sandbox if decl.sandbox != "auto" else project.sandbox),  # type: ignore[arg-type]
        warehouse=args.warehouse or project.warehouse or DEFAULT_WAREHOUSE,
        gate=gate,
        partitions=decl.partitions,
    )


if __name__ == "__main__":
    entry()
