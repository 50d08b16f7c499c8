"""Scheduling a notebook as one reviewed change: checks → preview → trial run → test plan.

`nb-assets schedule` (cli_schedule.py) drives these steps; each is a plain
function so the workflow reads top to bottom. The trial run writes into a
scratch copy of the warehouse, never the real tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.build_assets import DeclaredNotebook, declare_notebooks, policy_gate
from nb_assets.declaration import NotebookAsset
from nb_assets.declarations_yaml import declaration_yaml
from nb_assets.definitions_file import ProjectDeclarations
from nb_assets.errors import DeclarationError, NbAssetsError
from nb_assets.policy import PolicyReport, propagate
from nb_assets.policy_file import load_policy


@dataclass(frozen=True)
class Checked:
    """The project with the new declaration in it, checked like a Dagster load."""

    item: DeclaredNotebook
    declared: tuple[DeclaredNotebook, ...]
    report: PolicyReport | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trial:
    status: str  # "success" | "failed"
    error: str | None
    input_rows: dict[str, int]
    output_rows: dict[str, int]
    duration_s: float
    sandbox: dict[str, Any]
    executed_notebook: Path | None
    scratch_warehouse: Path | str  # a DuckDB copy's path, or the Postgres URL whose loads were rolled back


@dataclass
class Plan:
    decl: NotebookAsset
    checked: Checked
    trial: Trial | None = None
    notes: list[str] = field(default_factory=list)


def check(project: ProjectDeclarations, decl: NotebookAsset) -> Checked:
    """Static findings, conflicts and the policy, for the project plus `decl`; raises listing every problem."""
    if any(Path(project.base_dir, d.path).resolve() == Path(project.base_dir, decl.path).resolve() for d in project.notebooks):
        raise DeclarationError(f"{decl.path} is already declared in this project")
    declared = tuple(declare_notebooks([*project.notebooks, decl], project.base_dir, project.warehouse))
    item = declared[-1]
    report = None
    if project.policy is not None:
        report = propagate(load_policy(project.policy), [d.flow() for d in declared])
        mine = [v for v in report.violations if v.notebook == item.spec.name]
        blocking = [v for v in mine if v.mode == "enforce"]
        if blocking:
            raise DeclarationError(f"{len(blocking)} policy violation(s):\n" + "\n".join(f"- {v.message()}" for v in blocking))
    warnings = tuple(f.describe(item.spec.path) for f in item.spec.findings if f.severity == "warning")
    return Checked(item, declared, report, warnings)


def _labels(checked: Checked, table: str) -> str:
    zones = sorted(checked.report.labels.get(table, ())) if checked.report else []
    return f" [{', '.join(zones)}]" if zones else ""


def _writers(checked: Checked) -> dict[str, str]:
    return {t: d.spec.name for d in checked.declared for t in d.spec.output_tables}


def downstream(checked: Checked) -> list[tuple[str, str]]:
    """(existing notebook, the new table it reads), for the notebooks this one will feed."""
    mine = set(checked.item.spec.output_tables)
    return [(d.spec.name, t) for d in checked.declared[:-1] for t in d.spec.input_tables if t in mine]


def preview_text(checked: Checked) -> str:
    """A text tree of what the declaration generates, for the terminal."""
    spec, decl = checked.item.spec, checked.item.decl
    writers = _writers(checked)
    lines = [f"{spec.name}  ({spec.path})", f"  owners: {', '.join(decl.owners) or '-'}; purpose: {decl.purpose or '-'}; {decl.trigger()}"]
    for table in spec.input_tables:
        source = f"notebook {writers[table]}" if table in writers else "source table"
        lines.append(f"  ← reads  {table}{_labels(checked, table)} ({source})")
    outputs = spec.output_tables or (f"{spec.name} (report)",)
    for table in outputs:
        lines.append(f"  → writes {table}{_labels(checked, table)}")
    for reader, table in downstream(checked):
        lines.append(f"      → read by existing notebook {reader} (via {table})")
    return "\n".join(lines)


def preview_mermaid(checked: Checked) -> str:
    spec = checked.item.spec
    node = lambda name: "n_" + "".join(c if c.isalnum() else "_" for c in name)  # noqa: E731
    lines = ["```mermaid", "graph LR", f'  {node(spec.name)}[["{spec.name}"]]']
    for table in spec.input_tables:
        lines.append(f'  {node(table)}[("{table}")] --> {node(spec.name)}')
    for table in spec.output_tables:
        lines.append(f'  {node(spec.name)} --> {node(table)}[("{table}")]')
    for reader, table in downstream(checked):
        lines.append(f'  {node(table)} --> {node(reader)}[["{reader}"]]')
    lines.append("```")
    return "\n".join(lines)


def _where(location: str) -> Path | str:
    return location if "://" in location else Path(location)


def trial_run(project: ProjectDeclarations, checked: Checked, scratch_dir: Path) -> Trial:
    """Run the notebook once, as declared, against a scratch copy of the warehouse."""
    from nb_assets.choose_sandbox import choose_sandbox
    from nb_assets.host_pipeline import discard_data, run_pipeline
    from nb_assets.record import keep_record
    from nb_assets.warehouse import open_warehouse

    if not project.warehouse:
        raise DeclarationError("the definitions name no warehouse; the trial run needs one")
    scratch_dir.mkdir(parents=True, exist_ok=True)
    # DuckDB: a copy of the file. Postgres: the real database read-only, every load rolled back.
    scratch = open_warehouse(project.warehouse).scratch_copy(scratch_dir / "scratch_warehouse.duckdb")  # type: ignore[attr-defined]
    decl, spec = checked.item.decl, checked.item.spec
    gate = policy_gate(project.policy, checked.declared, checked.item) if project.policy else None
    kind = decl.sandbox if decl.sandbox != "auto" else project.sandbox
    try:
        run = run_pipeline(spec, warehouse=scratch, sandbox=choose_sandbox(kind), run_dir=scratch_dir / "run",  # type: ignore[arg-type]
                           params=decl.params, limits=decl.limits, gate=gate)
    except NbAssetsError as exc:  # refused before the notebook ran
        return Trial("failed", str(exc), {}, {}, 0.0, {}, None, _where(scratch.path))
    try:
        record = keep_record(run)
    finally:
        discard_data(run.folder)
    return Trial(
        run.status, str(run.error) if run.error else None, dict(run.input_rows), dict(run.loaded_rows),
        run.duration_s, dict(run.sandbox), record.get("executed"), _where(scratch.path),
    )


def plan_markdown(plan: Plan) -> str:
    """The test plan a reviewer reads next to the declaration."""
    checked, trial, spec = plan.checked, plan.trial, plan.checked.item.spec
    findings = [f.describe(spec.path) for f in spec.findings]
    lines = [
        f"# Test plan: schedule `{spec.name}`",
        "",
        f"Generated by `nb-assets schedule` on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
        "",
        "## Checks",
        "",
        f"- static checks: {'no findings' if not findings else f'{len(findings)} warning(s)'}",
        *(f"  - {f}" for f in findings),
        f"- policy: {'no violation' if checked.report else 'no policy file'}"
        + (f" (purpose `{checked.item.decl.purpose}`)" if checked.item.decl.purpose else ""),
        "",
        "## Declaration",
        "",
        "```yaml",
        declaration_yaml(checked.item.decl).rstrip(),
        "```",
        "",
        "## Preview",
        "",
        "```",
        preview_text(checked),
        "```",
        "",
        preview_mermaid(checked),
        "",
        "## Trial run (scratch copy of the warehouse; the real tables are not touched)",
        "",
    ]
    if trial is None:
        lines.append("- not run")
    else:
        lines += [
            f"- status: **{trial.status}**" + (f": {trial.error}" if trial.error else ""),
            f"- duration: {trial.duration_s:.2f} s in the {trial.sandbox.get('kind', '?')} sandbox",
            *(f"- input `{name}`: {rows} rows" for name, rows in trial.input_rows.items()),
            *(f"- output `{table}`: {rows} rows" for table, rows in trial.output_rows.items()),
            f"- executed notebook: `{trial.executed_notebook}`" if trial.executed_notebook else "- executed notebook: none (nothing ran)",
        ]
    lines += ["", *plan.notes] if plan.notes else []
    return "\n".join(lines) + "\n"

