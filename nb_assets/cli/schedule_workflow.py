"""Scheduling a notebook as one reviewed change: checks → preview → trial run → test plan.

`nb-assets schedule` (cli/schedule.py) drives these steps; each is a plain
function so the workflow reads top to bottom. The checks are the load's own
(declared_notebooks), run on the project as it would be with the new
declaration; the trial run writes into a scratch copy of the warehouse, never
the real tables. No Dagster import: project/load_check.py asks a child process
whether Dagster loads the result.

The plan is what a reviewer reads and git keeps, so it says what the trial was
(status, rows, duration, the outputs' columns, findings) and never what it saw:
the executed notebook shows rows of the warehouse, so it stays in its record
on the machine that ran the trial, and the plan says where and how to see it.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.sql.see_through import Catalog
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.declarations_yaml import declaration_yaml
from nb_assets.project.declaration_checks import silent_owners
from nb_assets.project.declare import DeclaredNotebook, apply_policy, declare_notebooks, policy_gate
from nb_assets.project.definitions_file import ProjectDeclarations
from nb_assets.errors import DeclarationError, NbAssetsError, error_json
from nb_assets.policy.zones import PolicyReport
from nb_assets.spec import notebook_name


@dataclass(frozen=True)
class Checked:
    """The project with the new declaration in it, checked like a Dagster load.

    `items` are what the declaration declares: one notebook, or one per instance."""

    items: tuple[DeclaredNotebook, ...]
    declared: tuple[DeclaredNotebook, ...]
    report: PolicyReport | None
    warnings: tuple[str, ...] = ()

    @property
    def item(self) -> DeclaredNotebook:
        return self.items[0]


@dataclass(frozen=True)
class Trial:
    label: str  # the notebook, its instance, its day
    instance: str | None
    status: str  # "success" | "failed"
    error: str | None  # in full, for the terminal of whoever ran it: a cell's error may quote warehouse values
    failure: str | None  # what failed without the error's message: what the plan says
    input_rows: dict[str, int]
    output_rows: dict[str, int]
    output_columns: dict[str, tuple[str, ...]]  # output table → "name (type)" of each column
    duration_s: float
    sandbox: dict[str, Any]
    run_id: str | None  # None: refused before anything ran, so no record
    record: Path | None  # the record folder on this machine; it holds warehouse data, so it stays there
    executed_notebook: Path | None  # None: the run stopped before the notebook started
    html: Path | None  # its HTML rendering, in the record
    scratch_warehouse: Path | str  # a DuckDB copy's path, or the Postgres URL whose loads were rolled back


@dataclass
class Plan:
    decl: NotebookAsset
    checked: Checked
    trials: tuple[Trial, ...] = ()
    notes: list[str] = field(default_factory=list)
    loaded: bool = False  # the project was loaded with the declaration (load_error says how it went)
    load_error: str | None = None
    project_dir: Path | None = None  # paths under it are shown relative to it
    dry_run: str | None = None  # the command that tries the notebook again, for a reviewer


def declared_entry(project: ProjectDeclarations, notebook: Path) -> NotebookAsset | None:
    """The project's declaration of `notebook`, if it has one."""
    return next((d for d in project.notebooks if Path(project.base_dir, d.path).resolve() == notebook.resolve()), None)


def check(project: ProjectDeclarations, notebook: Path) -> Checked:
    """The project, which declares `notebook` now, checked as loading it checks: the load's
    own functions (parsing, findings, owners and the channels reaching them, names,
    triggers, partitions, instances, one table one writer, the policy); raises listing
    every problem as the load would."""
    catalog = _catalog(project.warehouse)  # read once: for seeing views through and for "no such table"
    declared = tuple(declare_notebooks(project.notebooks, project.base_dir, project.warehouse,
                                       notifications=project.notifications, catalog=catalog, sources=project.sources))
    report = apply_policy(declared, project.policy, catalog.relations if isinstance(catalog, Catalog) else None,
                          sources=project.sources)
    items = tuple(d for d in declared if Path(d.spec.path).resolve() == notebook.resolve())
    if not items:
        raise DeclarationError(f"{notebook} is not among the project's declarations")
    warnings = tuple(f.describe(items[0].spec.path) for f in items[0].spec.findings if f.severity == "warning")
    warnings += tuple(silent_owners(items[0].decl.owners, project.notifications))
    return Checked(items, declared, report, warnings)


def _catalog(warehouse: str | None) -> Catalog | str | None:
    """The warehouse's catalog, or why it cannot be read now (open_catalog); None without a
    warehouse. Without a catalog the policy speaks of labels, not of missing tables."""
    if not warehouse:
        return None
    from nb_assets.warehouse.backends import open_catalog

    return open_catalog(warehouse)


def _labels(checked: Checked, table: str) -> str:
    zones = sorted(checked.report.labels.get(table, ())) if checked.report else []
    return f" [{', '.join(zones)}]" if zones else ""


def read_data(checked: Checked) -> str:
    """The tables the trial read, with their zones: what its record holds rows of."""
    tables = dict.fromkeys(t for item in checked.items for t in item.spec.input_tables)
    return ", ".join(f"{t}{_labels(checked, t)}" for t in tables)


def _writers(checked: Checked) -> dict[str, str]:
    return {t: d.spec.name for d in checked.declared for t in d.spec.output_tables}


def downstream(checked: Checked, item: DeclaredNotebook) -> list[tuple[str, str]]:
    """(existing notebook, the new table it reads), for the notebooks `item` will feed."""
    mine, new = set(item.spec.output_tables), {d.spec.name for d in checked.items}
    return [(d.spec.name, t) for d in checked.declared if d.spec.name not in new for t in d.spec.input_tables if t in mine]


def preview_text(checked: Checked) -> str:
    """A text tree of what the declaration generates, for the terminal: one per instance."""
    writers = _writers(checked)
    decl = checked.item.decl
    lines = [f"owners: {', '.join(decl.owners) or '-'}; purpose: {decl.purpose or '-'}; {decl.trigger()}"
             + (f"; daily partitions from {decl.partitions.start} (column {decl.partitions.column})" if decl.partitions else "")]
    for item in checked.items:
        spec = item.spec
        params = f"  params {item.decl.params}" if item.decl.instance else ""
        lines.append(f"{spec.name}  ({spec.path}){params}")
        for table in spec.input_tables:
            source = f"notebook {writers[table]}" if table in writers else "source table"
            lines.append(f"  ← reads  {table}{_labels(checked, table)} ({source})")
        for table in spec.output_tables or (f"{spec.name} (report)",):
            lines.append(f"  → writes {table}{_labels(checked, table)}")
        for reader, table in downstream(checked, item):
            lines.append(f"      → read by existing notebook {reader} (via {table})")
    return "\n".join(lines)


def preview_graph(checked: Checked) -> dict[str, Any]:
    """The preview as data, for a drawing (%nb_schedule's Preview): per notebook (one per
    instance), the tables it reads (with their writer, when a notebook writes them), the
    tables it writes, and the existing notebooks that will read them. Zones included."""
    writers = _writers(checked)
    zones = lambda table: sorted(checked.report.labels.get(table, ())) if checked.report else []  # noqa: E731
    return {"notebooks": [
        {"name": item.spec.name, "path": str(item.spec.path), "instance": item.decl.instance,
         "reads": [{"table": t, "zones": zones(t), "writer": writers.get(t)} for t in item.spec.input_tables],
         "writes": [{"table": t, "zones": zones(t)} for t in item.spec.output_tables],
         "read_by": [{"notebook": reader, "table": t} for reader, t in downstream(checked, item)]}
        for item in checked.items
    ]}


def preview_mermaid(checked: Checked) -> str:
    node = lambda name: "n_" + "".join(c if c.isalnum() else "_" for c in name)  # noqa: E731
    lines = ["```mermaid", "graph LR"]
    for item in checked.items:
        spec = item.spec
        lines.append(f'  {node(spec.name)}[["{spec.name}"]]')
        for table in spec.input_tables:
            lines.append(f'  {node(table)}[("{table}")] --> {node(spec.name)}')
        for table in spec.output_tables:
            lines.append(f'  {node(spec.name)} --> {node(table)}[("{table}")]')
        for reader, table in downstream(checked, item):
            lines.append(f'  {node(table)} --> {node(reader)}[["{reader}"]]')
    lines.append("```")
    return "\n".join(lines)


def trial_records(project_dir: Path) -> Path:
    """Where trials keep their records (and scratch warehouses), one folder per notebook and try."""
    return project_dir / ".nb_assets" / "schedule"


def trial_runs(project: ProjectDeclarations, checked: Checked, scratch_dir: Path) -> tuple[Trial, ...]:
    """Run the notebook once per instance, as declared, against one scratch copy of the
    warehouse; a daily-partitioned notebook runs its latest day (yesterday, UTC), which
    is what its cron runs."""
    from nb_assets.warehouse.backends import open_warehouse

    if not project.warehouse:
        raise DeclarationError("the definitions name no warehouse; the trial run needs one")
    scratch_dir.mkdir(parents=True, exist_ok=True)
    # DuckDB: a copy of the file. Postgres: the real database read-only, every load rolled back.
    scratch = open_warehouse(project.warehouse).scratch_copy(scratch_dir / "scratch_warehouse.duckdb")
    return tuple(
        _trial(project, checked, item, scratch, scratch_dir / "run" / (item.decl.instance or "notebook"),
               f"trial-{item.spec.name}-{scratch_dir.name}")
        for item in checked.items
    )


def _trial(project: ProjectDeclarations, checked: Checked, item: DeclaredNotebook, scratch: Any, run_dir: Path,
           run_id: str) -> Trial:
    from nb_assets.sandbox.choose import choose_sandbox
    from nb_assets.project.instances import label
    from nb_assets.runs.once import Refused, about_run, run_once
    from nb_assets.warehouse.base import PartitionLoad

    decl, spec = item.decl, item.spec
    partition, what = None, label(decl, str(decl.path))
    if decl.partitions is not None:
        day = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
        partition, what = PartitionLoad(decl.partitions.column, day), f"{what}, day {day}"
    gate = policy_gate(project.policy, checked.declared, item, project.sources) if project.policy else None
    kind = decl.sandbox if decl.sandbox != "auto" else project.sandbox
    try:
        sandbox = choose_sandbox(kind)  # type: ignore[arg-type]
    except NbAssetsError as exc:  # no such sandbox here: nothing ran
        return _refused(what, decl, exc, scratch)
    with run_once(spec, warehouse=scratch, sandbox=sandbox, run_dir=run_dir, about=about_run(run_id, "schedule"),
                  params=decl.params, limits=decl.limits, gate=gate, partition=partition,
                  sources=project.sources, base_dir=project.base_dir) as outcome:
        if isinstance(outcome, Refused):  # refused before the notebook ran, by the declaration's own rules: no data in it
            return _refused(what, decl, outcome.error, scratch)
        run, record = outcome.run, outcome.record
        columns = {table: _columns(path) for table, path in run.output_files.items() if table in run.loaded_rows}
    return Trial(
        what, decl.instance, run.status, str(run.error) if run.error else None, _failure(run.error) if run.error else None,
        dict(run.input_rows), dict(run.loaded_rows), columns, run.duration_s, dict(run.sandbox), run_id,
        run.folder.record_dir, record.get("executed"), record.get("html"), scratch.path,
    )


def _refused(what: str, decl: NotebookAsset, exc: NbAssetsError, scratch: Any) -> Trial:
    return Trial(what, decl.instance, "failed", str(exc), f"refused: {exc}", {}, {}, {}, 0.0, {}, None, None, None, None,
                 scratch.path)


def _columns(parquet: Path) -> tuple[str, ...]:
    """An output's columns and their types, read from its file's schema, never from its rows."""
    import pyarrow.parquet as pq

    return tuple(f"{f.name} ({f.type})" for f in pq.read_schema(parquet))


def _failure(error: NbAssetsError) -> str:
    """An error as the plan gives it: its type and cell, not its message, which may quote
    the rows it failed on (a conversion error, an assertion printing a column)."""
    facts = error_json(error)
    cell = f" in cell {facts['cell']}" if facts["cell"] is not None else ""
    return f"{facts['type']}{cell} ({facts['kind']}); its message is in the record, not here: it may quote warehouse data"


# Where earlier versions of `schedule` copied the trial's executed notebook, beside the plan.
_TRIAL_PAGE = re.compile(r".*\.trial(-[^/]*)?\.html")


def is_trial_page(path: Path, plan_path: Path | None = None) -> bool:
    """A trial page an earlier version left (`NAME.trial.html`, `NAME.trial-INSTANCE.html`);
    with `plan_path`, only that plan's."""
    if plan_path is None:
        return bool(_TRIAL_PAGE.fullmatch(path.name))
    return path.parent == plan_path.parent and bool(re.fullmatch(rf"{re.escape(plan_path.stem)}\.trial(-[^/]*)?\.html", path.name))


def remove_trial_pages(plan_path: Path) -> list[Path]:
    """Delete the trial pages an earlier version left beside this plan: they hold warehouse
    data, and a `git add plans/` would take them along."""
    if not plan_path.parent.is_dir():
        return []
    found = [p for p in plan_path.parent.iterdir() if is_trial_page(p, plan_path)]
    for page in found:
        page.unlink()
    return found


def shown(path: Path, project_dir: Path | None) -> str:
    """`path` relative to the project when it is under it."""
    if project_dir is not None:
        try:
            return str(path.resolve().relative_to(project_dir.resolve()))
        except ValueError:
            pass
    return str(path)


def plan_markdown(plan: Plan) -> str:
    """The test plan a reviewer reads next to the declaration."""
    checked, spec = plan.checked, plan.checked.item.spec
    findings = [f.describe(spec.path) for f in spec.findings]
    lines = [
        f"# Test plan: schedule `{notebook_name(spec.path)}`",
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
        declaration_yaml(plan.decl).rstrip(),
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
    if not plan.trials:
        lines.append("- not run")
    for trial in plan.trials:
        if len(plan.trials) > 1 or plan.decl.partitions:
            lines.append(f"- **{trial.label}**")
        lines += [
            f"- status: **{trial.status}**" + (f": {trial.failure}" if trial.failure else ""),
            f"- duration: {trial.duration_s:.2f} s in the {trial.sandbox.get('kind', '?')} sandbox",
            *(f"- input `{name}`: {rows} rows" for name, rows in trial.input_rows.items()),
            *(f"- output `{table}`: {rows} rows" + _columns_text(trial, table) for table, rows in trial.output_rows.items()),
            _record_line(plan, trial),
        ]
    if any(t.record for t in plan.trials):
        lines += ["", *record_notice(plan)]
    lines += ["", "## Loading the project with this declaration", "", _load_line(plan)]
    lines += ["", *plan.notes] if plan.notes else []
    return "\n".join(lines) + "\n"


def trials_json(plan: Plan) -> list[dict[str, Any]]:
    """Each trial's facts as the plan states them (never the error's message: it may quote rows), for
    the Schedule form; paths relative to the project, as the plan shows them."""
    labelled = len(plan.trials) > 1 or bool(plan.decl.partitions)
    return [_trial_json(trial, plan.project_dir, labelled) for trial in plan.trials]


def _trial_json(trial: Trial, project_dir: Path | None, labelled: bool) -> dict[str, Any]:
    executed = trial.html or trial.executed_notebook
    return {
        "label": trial.label if labelled else None,
        "status": trial.status,
        "failure": trial.failure,
        "duration_s": trial.duration_s,
        "sandbox": trial.sandbox.get("kind"),
        "inputs": [[name, rows] for name, rows in trial.input_rows.items()],
        "outputs": [[table, rows, list(trial.output_columns.get(table, ()))] for table, rows in trial.output_rows.items()],
        "record": shown(trial.record, project_dir) if trial.record else None,
        "executed": shown(executed, project_dir) if trial.record and executed else None,
        "run_id": trial.run_id,
    }


def _columns_text(trial: Trial, table: str) -> str:
    columns = trial.output_columns.get(table)
    return f"; columns: {', '.join(f'`{c}`' for c in columns)}" if columns else ""


def _record_line(plan: Plan, trial: Trial) -> str:
    stopped = "nothing was executed: the run stopped before the notebook started" if trial.executed_notebook is None else ""
    if trial.record is None:
        return f"- {stopped}"
    executed = trial.html or trial.executed_notebook
    rendered = f" (executed notebook `{shown(executed, plan.project_dir)}`)" if executed else ""
    return f"- {stopped}{'; ' if stopped else ''}record: `{shown(trial.record, plan.project_dir)}`{rendered}, run id `{trial.run_id}`"


def record_notice(plan: Plan) -> list[str]:
    """Why the trial's executed notebook is not in the plan, and how to see it instead."""
    read = read_data(plan.checked)
    records = shown(trial_records(plan.project_dir or Path.cwd()), plan.project_dir)
    ran = [t for t in plan.trials if t.record is not None]
    lines = [
        "The trial's record stays on the machine that ran it, out of the test plan and out of git: its executed "
        f"notebook shows warehouse data{f' (it read {read})' if read else ''}. The plan says what the trial was "
        "(status, rows, duration, columns, findings), never what it saw. To see it:",
        *(f"- on that machine: `nb-assets show {t.run_id} --records {records}`" for t in ran),
    ]
    if plan.dry_run:
        checkout = "that declares it as it was" if "--update" in plan.dry_run.split() else "that does not declare it yet"
        lines.append(f"- anywhere you may read that data, try it yourself, on a checkout {checkout} "
                     f"(a dry run: it declares nothing): `{plan.dry_run}`")
    return lines


def _load_line(plan: Plan) -> str:
    if not plan.loaded:
        return "- not tried (the trial run failed)"
    if plan.load_error:
        return "- **refused**; nothing was declared:\n\n```\n" + plan.load_error + "\n```"
    return "- loads, as Dagster loads it (every asset, sensor and trigger resolved)"

