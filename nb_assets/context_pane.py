"""`%nb_context`: the open notebook's declaration, lineage, zones and last runs, in Jupyter.

Host side only. The in-notebook runtime (nb_assets.notebook) imports this
module when the magic is used, never on `%load_ext`, so the sandbox (which has
only the runtime) does not need it. It reads the project's definitions file
(without building the Dagster graph) and the run records on disk, so it works
without the Dagster webserver; the output is plain HTML.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.run_records import RunRecord, find_runs, project_dir_of, record_roots

LAST_RUNS = 8


@dataclass
class NotebookContext:
    """What the pane shows; every part is optional, so a half-configured project still gets one."""

    path: Path
    name: str
    project_dir: Path
    declared: bool = False
    problem: str | None = None  # why the declaration could not be read, or that there is no such notebook
    parsed: bool = False  # not declared: what the notebook itself says (parameters, inputs, outputs, findings)
    findings: list[str] = field(default_factory=list)  # "error: draft (cell 3, line 1): [rule] message"
    next_step: str | None = None  # for a notebook that is not declared: what to do, then `command`
    command: str | None = None
    owners: list[str] = field(default_factory=list)
    trigger: str = "on demand"
    purpose: str | None = None
    parameters: list[dict[str, Any]] = field(default_factory=list)  # name, default, scheduled
    inputs: list[dict[str, Any]] = field(default_factory=list)  # table, zones
    outputs: list[dict[str, Any]] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    ui_base_url: str | None = None

    @property
    def last_failure(self) -> RunRecord | None:
        return next((r for r in self.runs if r.status != "success"), None)


def open_notebook_path(argument: str | None, namespace: Mapping[str, Any]) -> Path:
    """The notebook to describe: the magic's argument, else what the front end tells the
    kernel (Jupyter Server's JPY_SESSION_NAME, VS Code's __vsc_ipynb_file__)."""
    for candidate in (argument, os.environ.get("JPY_SESSION_NAME"), namespace.get("__vsc_ipynb_file__")):
        if candidate and str(candidate).endswith(".ipynb"):
            path = Path(str(candidate)).expanduser()
            return path if path.is_absolute() else Path.cwd() / path
    raise ValueError("%nb_context cannot tell which notebook is open here; name it: %nb_context notebooks/clean_orders.ipynb")


def notebook_context(path: Path, records: list[Path] | None = None) -> NotebookContext:
    from nb_assets.notebook_parser import notebook_name

    path = path.resolve()
    project = project_dir_of(path)
    context = NotebookContext(path=path, name=notebook_name(path), project_dir=project)
    if path.is_file():
        _add_declaration(context, project / "definitions.py")
    else:  # runs of a notebook since renamed or deleted are still listed
        context.problem = f"no such notebook: {path}"
    roots = record_roots(project, records or (), near=[path.parent, Path.cwd()])
    context.runs = find_runs(roots, context.name)[:LAST_RUNS]
    return context


def _add_declaration(context: NotebookContext, definitions: Path) -> None:
    """Fill in what the project's definitions file says about this notebook."""
    if not definitions.is_file():
        context.problem = f"no definitions.py at or above {context.path.parent}: the notebook is not scheduled"
        _add_parse(context, None, {})
        return
    from nb_assets.declared_notebooks import declare_notebooks
    from nb_assets.definitions_file import load_declarations
    from nb_assets.errors import NbAssetsError
    from nb_assets.lineage import LineageNotebook, trace
    from nb_assets.policy import propagate
    from nb_assets.policy_file import load_policy

    try:
        project = load_declarations(definitions)
        declared = declare_notebooks(project.notebooks, project.base_dir)
        report = propagate(load_policy(project.policy), [d.flow() for d in declared]) if project.policy else None
    except (NbAssetsError, OSError, SyntaxError) as exc:
        context.problem = f"{definitions}: {exc}"
        return
    context.ui_base_url = getattr(project.notifications, "ui_base_url", None)
    labels = dict(report.labels) if report else {}
    item = next((d for d in declared if Path(d.spec.path).resolve() == context.path), None)
    if item is None:
        context.problem = f"not declared in {definitions}"
        writers = {t: d.spec.name for d in declared for t in d.spec.output_tables}
        readers: dict[str, list[str]] = {}
        for d in declared:
            for t in d.spec.input_tables:
                readers.setdefault(t, []).append(d.spec.name)
        taken = {t: f"notebook {writers[t]} writes it" if t in writers else f"it is a source table read by {', '.join(readers[t])}"
                 for t in {*writers, *readers}}
        _add_parse(context, project.warehouse, labels, taken)
        return
    decl, spec = item.decl, item.spec
    context.declared = True
    context.owners = list(decl.owners)
    context.trigger = decl.trigger()
    context.purpose = decl.purpose
    context.parameters = [{"name": p.name, "default": p.default, "scheduled": decl.params.get(p.name)} for p in spec.parameters]
    context.inputs = [{"table": t, "zones": sorted(labels.get(t, ()))} for t in spec.input_tables]
    context.outputs = [{"table": t, "zones": sorted(labels.get(t, ()))} for t in spec.output_tables]
    graph = [LineageNotebook(d.spec, d.decl.purpose) for d in declared]
    up = {h.notebook.spec.name: None for t in spec.input_tables for h in trace(t, graph, "upstream")}
    down = {h.notebook.spec.name: None for t in spec.output_tables for h in trace(t, graph, "downstream")}
    context.upstream = [n for n in up if n != spec.name]
    context.downstream = [n for n in down if n != spec.name]


def _add_parse(context: NotebookContext, warehouse: str | None, labels: Mapping[str, Any], taken: Mapping[str, str] | None = None) -> None:
    """What a notebook that is not declared says about itself, and how to schedule it.
    `taken`: the project's tables this notebook may not write, each with why (one table, one writer)."""
    from nb_assets.errors import NbAssetsError
    from nb_assets.notebook_parser import dialect_of, parse_notebook

    try:
        spec = parse_notebook(context.path, dialect_of(warehouse))
    except (NbAssetsError, OSError, ValueError) as exc:
        context.findings = [f"error: {exc}"]
        return
    context.parsed = True
    context.parameters = [{"name": p.name, "default": p.default, "scheduled": None} for p in spec.parameters]
    context.inputs = [{"table": t, "zones": sorted(labels.get(t, ()))} for t in spec.input_tables]
    context.outputs = [{"table": t, "zones": sorted(labels.get(t, ()))} for t in spec.output_tables]
    context.findings = [f"{f.severity}: {f.describe(context.name)}" for f in spec.findings]
    clashes = [f"error: {context.name} writes {t}, but {(taken or {})[t]}: write a table of its own"
               for t in spec.output_tables if t in (taken or {})]
    context.findings += clashes
    relative = os.path.relpath(context.path, context.project_dir)
    context.command = f"nb-assets schedule {relative} --owner YOU@EXAMPLE.COM --cron '0 6 * * *'  # or --on-inputs-landed"
    todo = " and ".join(([f"fix its error findings (nb-assets check {relative})"] if spec.errors else [])
                        + (["make it write tables of its own"] if clashes else []))
    context.next_step = (f"{todo[0].upper()}{todo[1:]}, then schedule it from {context.project_dir}:" if todo
                         else f"To schedule it, from {context.project_dir}:")


def render_html(context: NotebookContext) -> str:
    e = html.escape
    parts = [f"<div class='nb-context'><h3 style='margin:0.2em 0'>{e(context.name)}</h3>"
             f"<div style='color:#666'>{e(str(context.path))}</div>"]
    if context.problem:
        parts.append(f"<p style='color:#a60'>{e(context.problem)}</p>")
    if context.declared:
        params = ", ".join(
            f"{p['name']}={p['scheduled']!r} (default {p['default']!r})" if p["scheduled"] is not None else f"{p['name']}={p['default']!r}"
            for p in context.parameters
        )
        parts.append(_table([
            ("owners", ", ".join(context.owners) or "-"), ("trigger", context.trigger),
            ("purpose", context.purpose or "-"), ("parameters", params or "-"),
            ("reads", "; ".join(f"{i['table']} [{', '.join(i['zones']) or 'no zone'}]" for i in context.inputs) or "-"),
            ("writes", "; ".join(f"{o['table']} [{', '.join(o['zones']) or 'no zone'}]" for o in context.outputs) or "- (report)"),
            ("upstream notebooks", ", ".join(context.upstream) or "-"),
            ("downstream notebooks", ", ".join(context.downstream) or "-"),
        ]))
    elif context.parsed or context.findings:
        parts.append(_table([
            ("parameters", ", ".join(f"{p['name']}={p['default']!r}" for p in context.parameters) or "-"),
            ("reads", "; ".join(_zoned(i) for i in context.inputs) or "-"),
            ("writes", "; ".join(_zoned(o) for o in context.outputs) or "- (report)"),
            ("findings", f"{len(context.findings)}, below" if context.findings else "none"),
        ]))
        if context.findings:
            parts.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in context.findings) + "</ul>")
    if context.next_step and context.command:
        parts.append(f"<p>{html.escape(context.next_step)}<br><code>{html.escape(context.command)}</code></p>")
    parts.append(_runs_html(context))
    failure = context.last_failure
    if failure is not None:
        parts.append(_failure_html(context, failure))
    parts.append("</div>")
    return "\n".join(parts)


def _zoned(table: Mapping[str, Any]) -> str:
    return f"{table['table']} [{', '.join(table['zones']) or 'no zone'}]"


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                   f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _runs_html(context: NotebookContext) -> str:
    if not context.runs:
        return "<p>No runs recorded yet.</p>"
    colour = {"success": "#2a7", "failed": "#c33", "refused": "#c63"}
    rows = "".join(
        f"<tr><td>{_run_link(context, r)}</td>"
        f"<td style='color:{colour.get(r.status, '#666')}'>{html.escape(r.status)}</td>"
        f"<td>{r.started_at.strftime('%Y-%m-%d %H:%M')}</td><td>{html.escape(r.where)}</td>"
        f"<td>{'' if r.failed_cell is None else f'cell {r.failed_cell}'}</td></tr>"
        for r in context.runs
    )
    return f"<h4>Last runs</h4><table><tr><th>run</th><th>status</th><th>started (UTC)</th><th>where</th><th></th></tr>{rows}</table>"


def shown_id(run: RunRecord) -> str:
    """Dagster's run ids shortened as its UI does (`nb-assets show` takes the prefix); the CLI's
    are a time and a number, whose first characters are only the date: those whole."""
    return run.run_id[:8] if run.source == "dagster" else run.run_id


def _run_link(context: NotebookContext, run: RunRecord) -> str:
    """The run's id, linked to the Dagster UI when the project names it (Dagster runs only)."""
    short = f"<code>{html.escape(shown_id(run))}</code>"
    if not context.ui_base_url or run.source != "dagster":
        return short
    return f"<a href='{html.escape(context.ui_base_url.rstrip('/'))}/runs/{html.escape(run.run_id)}' target='_blank'>{short}</a>"


def _failure_html(context: NotebookContext, run: RunRecord) -> str:
    from nb_assets.run_report import run_failure

    e = html.escape
    failure = run_failure(run)
    message = (run.error or {}).get("message", run.status)
    parts = [f"<h4>Last failure: run <code>{e(run.run_id)}</code></h4><p>{e(str(message))}</p>"]
    if failure is not None and failure.cell_source is not None:
        parts.append(f"<div>{e(failure.heading())}</div><pre>{e(failure.excerpt())}</pre>")
    if failure is not None and failure.traceback:
        parts.append(f"<details open><summary>traceback</summary><pre>{e(failure.traceback)}</pre></details>")
    links = []
    executed = run.html or run.executed
    if executed is not None:
        relative = os.path.relpath(executed, context.path.parent)  # Jupyter resolves links against the notebook
        links.append(f"<a href='{e(relative)}' target='_blank'>executed notebook</a> (<code>{e(str(executed))}</code>)")
    if context.ui_base_url and run.source == "dagster":
        links.append(f"run in Dagster: {_run_link(context, run)}")
    parts.append("<p>" + " · ".join(links) + "</p>")
    return "\n".join(parts)


def render_text(context: NotebookContext) -> str:
    """The plain-text fallback a terminal front end shows."""
    lines = [f"{context.name} ({context.path})"]
    if context.problem:
        lines.append(context.problem)
    if context.declared:
        lines.append(f"owners: {', '.join(context.owners) or '-'}; trigger: {context.trigger}; purpose: {context.purpose or '-'}")
    elif context.parsed:
        lines.append(f"reads: {', '.join(i['table'] for i in context.inputs) or '-'}; "
                     f"writes: {', '.join(o['table'] for o in context.outputs) or '- (report)'}")
    lines += context.findings
    if context.next_step and context.command:
        lines += [context.next_step, f"  {context.command}"]
    lines += [f"{shown_id(r)} {r.status} {r.where} {r.started_at:%Y-%m-%d %H:%M}" for r in context.runs]
    return "\n".join(lines)


class ContextPane:
    """Displays as HTML in Jupyter, as text elsewhere."""

    def __init__(self, context: NotebookContext) -> None:
        self.context = context

    def _repr_html_(self) -> str:
        return render_html(self.context)

    def __repr__(self) -> str:
        return render_text(self.context)


def show_context(argument: str | None, namespace: Mapping[str, Any]) -> None:
    from IPython.display import display

    display(ContextPane(notebook_context(open_notebook_path(argument, namespace))))
