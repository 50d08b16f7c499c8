"""The job of `nb-assets run` and `nb-assets backfill`: which notebook, parameters, limits, sandbox,
policy gate and warehouse, and the one run of it (runs.once) whose record and summary they print.

Apart from the argument parser (cli.py), so that backfill and run share it without importing each
other. Like cli.py, it loads the execution stack only inside the functions that run a notebook.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.errors import DeclarationError
from nb_assets.sandbox.base import SandboxKind, SandboxLimits
from nb_assets.spec import NotebookSpec

if TYPE_CHECKING:
    from nb_assets.project.declare import Gate
    from nb_assets.runs.guard import Takeover

DEFAULT_WAREHOUSE = "warehouse.duckdb"


def execute_job(
    job: _Job, args: argparse.Namespace, day: str | None = None, before_run: Callable[[], None] | None = None
) -> tuple[Any, dict[str, Any], str]:
    """One run through the host pipeline, its record kept; for a partitioned job, the run of `day`.
    `before_run` is called once the sandbox is chosen, just before the run starts.
    Returns the NotebookRun, its summary, and the sandbox kind it ran in.

    The record and the summary name the warehouse and, for a --force run, what it replaced.
    Shared by `nb-assets run` and `nb-assets backfill`, so a backfilled day runs as `run` would."""
    from nb_assets.sandbox.choose import choose_sandbox
    from nb_assets.runs.record import run_summary
    from nb_assets.runs.once import Refused, about_run, run_once
    from nb_assets.warehouse.backends import open_warehouse
    from nb_assets.warehouse.base import PartitionLoad

    limits = limits_with_flags(job.limits, args)
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
                  html=getattr(args, "html", False), sources=job.sources, base_dir=job.base_dir) as outcome:
        if isinstance(outcome, Refused):  # refused before it ran: the caller says why
            raise outcome.error
        run, record = outcome.run, outcome.record
    return run, {**run_summary(run, outcome.about), "html": str(record["html"]) if "html" in record else None}, sandbox.kind


# `nb-assets run` flags → the limit each overrides (backfill has --timeout only: getattr).
LIMIT_FLAGS = {"timeout": "timeout_s", "prefetch_timeout": "prefetch_timeout", "load_timeout": "load_timeout",
               "checks_timeout": "checks_timeout"}


def limits_with_flags(limits: SandboxLimits, args: argparse.Namespace) -> SandboxLimits:
    """The declared limits with the command line's on top."""
    given = {limit: getattr(args, flag) for flag, limit in LIMIT_FLAGS.items() if getattr(args, flag, None) is not None}
    return replace(limits, **given)


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
    sources: Sequence[Any] = ()  # the project's declared sources (nb_assets.sources.Source)
    base_dir: Path | None = None  # where the project's relative source paths start


def _ad_hoc_job(args: argparse.Namespace) -> _Job:
    """The notebook as written, against --warehouse (else its project's warehouse, else ./warehouse.duckdb),
    with the tables not its own it would replace (run_guard: refused before anything runs, unless --force)."""
    from nb_assets.locations import dialect_of
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.runs.guard import ad_hoc_takeover

    project, definitions = _nearest_project(args.notebook)
    warehouse = args.warehouse or (project.warehouse if project is not None else None) or DEFAULT_WAREHOUSE
    spec = parse_notebook(args.notebook, dialect_of(warehouse))
    if project is not None and definitions is not None:
        _refuse_without_its_declaration(args.notebook, project, definitions)
    takeover = ad_hoc_takeover(args.notebook, spec, project, definitions, warehouse)
    return _Job(spec, {}, SandboxLimits(), args.sandbox or "auto", warehouse, takeover=takeover, forced=args.force,
                sources=project.sources if project is not None else (), base_dir=project.base_dir if project is not None else None)


def _nearest_project(notebook: Path) -> tuple[Any, Path | None]:
    """The declarations of the project the notebook is in (its nearest definitions.py), read without Dagster."""
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.locations import nearest_project

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
    from nb_assets.project.declare import declare_notebooks, policy_gate
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.locations import dialect_of

    project = load_declarations(args.definitions)

    dialect = dialect_of(args.warehouse or project.warehouse)
    declared = declare_notebooks(project.notebooks, project.base_dir, dialect=dialect,  # the gate sees views through at run time
                                 sources=project.sources)
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
    gate = policy_gate(project.policy, declared, item, project.sources) if project.policy else None
    return _Job(
        spec=item.spec,
        params=dict(decl.params),
        limits=decl.limits,
        sandbox=args.sandbox or (decl.sandbox if decl.sandbox != "auto" else project.sandbox),  # type: ignore[arg-type]
        warehouse=args.warehouse or project.warehouse or DEFAULT_WAREHOUSE,
        gate=gate,
        partitions=decl.partitions,
        sources=project.sources,
        base_dir=project.base_dir,
    )
