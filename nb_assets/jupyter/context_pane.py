"""`%nb_context`: the open notebook's declaration, lineage, zones and last runs, in Jupyter.

Host side only. The in-notebook runtime (nb_assets.notebook) imports this
module when the magic is used, never on `%load_ext`, so the sandbox (which has
only the runtime) does not need it. It reads the project's definitions file
(without building the Dagster graph), the warehouse's catalog when it opens
(read-only, no waiting) and the run records on disk, so it works without the
Dagster webserver; the output is plain HTML.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.jupyter.context_pane_project import ProjectView, draft_zones, missing_tables, read_project
from nb_assets.locations import nearest_project
from nb_assets.runs.history import RunRecord, find_runs, project_dir_of, record_roots

if TYPE_CHECKING:
    from nb_assets.spec import NotebookSpec

LAST_RUNS = 8


@dataclass
class NotebookContext:
    """What the pane shows; every part is optional, so a half-configured project still gets one."""

    path: Path
    name: str
    project_dir: Path
    exists: bool = True  # False: the pane says that, and nothing else
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
    outputs: list[dict[str, Any]] = field(default_factory=list)  # zones None: the policy cannot place the notebook
    purposes: tuple[str, ...] | None = None  # not declared: the policy's purposes that may read its inputs
    upstream: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    ui_base_url: str | None = None
    status: str | None = None  # the line `nb-assets status` prints for it: last run, freshness, what it waits for

    @property
    def last_failure(self) -> RunRecord | None:
        return next((r for r in self.runs if r.status != "success"), None)


class NotebookNotFound(ValueError):
    """`%nb_context` cannot find the notebook: the message says what was tried and what to type."""


def open_notebook_path(argument: str | None, namespace: Mapping[str, Any], cwd: Path | None = None,
                       magic: str = "%nb_context") -> Path:
    """The notebook to describe: the magic's argument, else what the front end tells the
    kernel (Jupyter Server's JPY_SESSION_NAME, VS Code's __vsc_ipynb_file__)."""
    here = (cwd or Path.cwd()).resolve()
    if argument and not argument.endswith(".ipynb"):
        raise NotebookNotFound(f"{magic} takes a notebook file (.ipynb), not {argument!r}; {_how_to_name(here, magic)}")
    told = (("", argument), (" (as JPY_SESSION_NAME says)", os.environ.get("JPY_SESSION_NAME")),
            (" (as VS Code says)", namespace.get("__vsc_ipynb_file__")))
    for source, given in told:
        if given and str(given).endswith(".ipynb"):
            tried = notebook_candidates(str(given), here)
            found = next((p for p in tried if p.is_file()), None)
            if found is None:
                hint = f"; or {_how_to_name(here, magic)}" if source else ""
                raise NotebookNotFound(f"no such notebook: {given}{source}; tried {', '.join(map(str, tried))}{hint}")
            return found
    raise NotebookNotFound(f"{magic} cannot tell which notebook is open here (this front end does not say); {_how_to_name(here, magic)}")


def notebook_candidates(given: str, cwd: Path) -> list[Path]:
    """Where a relative path may point: the kernel's folder (in Jupyter, the notebook's own),
    then each folder above it up to the project root (the nearest with a definitions.py),
    so a path relative to the root works from anywhere inside the project."""
    path = Path(given).expanduser()
    if path.is_absolute():
        return [path]
    root = nearest_project(cwd)
    folders = [cwd]
    if root is not None and root != cwd:
        folders += cwd.parents[: cwd.parents.index(root) + 1]
    return list(dict.fromkeys((folder / path).resolve() for folder in folders))


def _how_to_name(cwd: Path, magic: str = "%nb_context") -> str:
    """A form of the magic that works from here: the path from the project root (found from
    anywhere inside it), naming this folder's notebook when it holds just one."""
    here = sorted(p.name for p in cwd.glob("*.ipynb"))
    name = here[0] if len(here) == 1 else "NOTEBOOK.ipynb"
    root = nearest_project(cwd)
    if root is None:
        return f"name it, relative to this folder ({cwd}) or absolute: {magic} {name}"
    example = Path(os.path.relpath(cwd / name, root)).as_posix()
    listed = f" (notebooks here: {', '.join(here[:5])}{', ...' if len(here) > 5 else ''})" if len(here) > 1 else ""
    return f"name it, relative to the project root {root} (works anywhere inside it): {magic} {example}{listed}"


def notebook_context(path: Path, records: list[Path] | None = None) -> NotebookContext:
    from nb_assets.spec import notebook_name

    path = path.resolve()
    project = project_dir_of(path)
    context = NotebookContext(path=path, name=notebook_name(path), project_dir=project)
    if not path.is_file():  # nothing else: runs or a declaration of a notebook by that name would mislead
        context.problem, context.exists = f"no such notebook: {path}", False
        return context
    roots = record_roots(project, records or (), near=[path.parent, Path.cwd()])
    _add_declaration(context, project / "definitions.py", roots)
    context.runs = find_runs(roots, context.name)[:LAST_RUNS]
    return context


def _add_declaration(context: NotebookContext, definitions: Path, roots: list[Path] | None = None) -> None:
    """Fill in what the project's definitions file says about this notebook."""
    if not definitions.is_file():
        context.problem = f"no definitions.py at or above {context.path.parent}: the notebook is not scheduled"
        _add_parse(context, None, None)
        return
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.errors import NbAssetsError
    from nb_assets.project.lineage import LineageNotebook, trace

    try:
        declarations = load_declarations(definitions)
        project = read_project(declarations)
    except (NbAssetsError, OSError, SyntaxError) as exc:
        context.problem = f"{definitions}: {exc}"
        return
    context.ui_base_url = getattr(declarations.notifications, "ui_base_url", None)
    item = project.find(context.path)
    if item is None:
        context.problem = f"not declared in {definitions}"
        _add_parse(context, declarations.warehouse, project)
        return
    labels = dict(project.report.labels) if project.report else {}
    decl, spec = item.decl, item.spec
    context.declared = True
    context.owners = list(decl.owners)
    context.trigger = decl.trigger()
    context.purpose = decl.purpose
    context.parameters = [{"name": p.name, "default": p.default, "scheduled": decl.params.get(p.name)} for p in spec.parameters]
    context.inputs = [{"table": t, "zones": sorted(labels.get(t, ()))} for t in spec.input_tables]
    context.outputs = [{"table": t, "zones": sorted(labels.get(t, ()))} for t in spec.output_tables]
    context.findings = missing_tables(context.name, spec, project)
    graph = [LineageNotebook(d.spec, d.decl.purpose) for d in project.declared]
    up = {h.notebook.spec.name: None for t in spec.input_tables for h in trace(t, graph, "upstream")}
    down = {h.notebook.spec.name: None for t in spec.output_tables for h in trace(t, graph, "downstream")}
    context.upstream = [n for n in up if n != spec.name]
    context.downstream = [n for n in down if n != spec.name]
    context.status = _status_line(project, item, declarations.warehouse, roots or [])


def _status_line(project: ProjectView, item: Any, warehouse: str | None, roots: list[Path]) -> str | None:
    """The notebook's line of `nb-assets status`, judged on the same facts (runs/status.py)."""
    from nb_assets.runs.status import project_status, watched

    everyone = watched(project.declared)  # the other notebooks say when the tables it reads were written
    try:
        status = project_status(everyone, roots, warehouse)
    except (OSError, ValueError) as exc:  # an unreadable record folder: the rest of the pane still shows
        return f"status unknown: {exc}"
    line = next((n.line() for n in status.notebooks if n.name == item.spec.name), None)
    if line and status.landings_problem:
        line += f" (landing log unreadable: {status.landings_problem})"
    return line


def _add_parse(context: NotebookContext, warehouse: str | None, project: ProjectView | None) -> None:
    """What a notebook that is not declared says about itself, placed in the project (`project`,
    when there is one) as `nb-assets schedule` would place it, and how to schedule it."""
    from nb_assets.errors import NbAssetsError
    from nb_assets.locations import dialect_of
    from nb_assets.analysis.parser import parse_notebook

    try:
        spec = parse_notebook(context.path, dialect_of(warehouse))
    except (NbAssetsError, OSError, ValueError) as exc:
        context.findings = [f"error: {exc}"]
        return
    context.parsed = True
    context.parameters = [{"name": p.name, "default": p.default, "scheduled": None} for p in spec.parameters]
    context.findings = [f"{f.severity}: {f.describe(context.name)}" for f in spec.findings]
    placed: list[str] = []  # what the project says of it: missing tables, a taken name, the policy's refusal
    clashes: list[str] = []  # tables it may not write
    purpose = None
    if project is None:
        context.inputs = [{"table": t, "zones": []} for t in spec.input_tables]
        context.outputs = [{"table": t, "zones": []} for t in spec.output_tables]
    else:
        placed, clashes, purpose = _place(context, project.as_declared(spec), project)
    context.findings += [*placed, *clashes]
    relative = os.path.relpath(context.path, context.project_dir)
    context.command = (f"nb-assets schedule {relative} --owner YOU@EXAMPLE.COM{purpose or ''} --cron '0 6 * * *'"
                       "  # or --on-inputs-landed")
    errors = spec.errors or any(f.startswith("error: ") for f in placed)
    todo = " and ".join(([f"fix its error findings (nb-assets check {relative})"] if errors else [])
                        + (["make it write tables of its own"] if clashes else []))
    context.next_step = (f"{todo[0].upper()}{todo[1:]}, then schedule it from {context.project_dir}:" if todo
                         else f"To schedule it, from {context.project_dir}:")


def _place(context: NotebookContext, spec: NotebookSpec, project: ProjectView) -> tuple[list[str], list[str], str | None]:
    """A notebook not declared yet, placed in the project as `nb-assets schedule` would place
    it: its zones; the findings that the project gives it; the tables it may not write; the
    `--purpose` its schedule command needs."""
    taken = project.taken()
    clashes = [f"error: {context.name} writes {t}, but {taken[t]}: write a table of its own"
               for t in spec.output_tables if t in taken]
    renamed = project.name_clash(spec)
    zones = draft_zones(project, spec)
    placed = [*missing_tables(context.name, spec, project), *([f"error: {context.name}: {renamed}"] if renamed else []),
              *([f"error: {zones.problem}"] if zones.problem else [])]
    context.inputs = [{"table": t, "zones": _sorted(z)} for t, z in zones.inputs.items()]
    context.outputs = [{"table": t, "zones": _sorted(z)} for t, z in zones.outputs.items()]
    context.purposes = zones.purposes
    return placed, clashes, _purpose_flag(project, spec, zones.purposes)


def _sorted(zones: frozenset[str] | None) -> list[str] | None:
    return None if zones is None else sorted(zones)


def _purpose_flag(project: ProjectView, spec: NotebookSpec, purposes: tuple[str, ...] | None) -> str | None:
    """` --purpose X` when the policy's default purpose would not do for what the notebook reads."""
    policy = project.policy
    if policy is None or not spec.input_tables or (policy.default_purpose and policy.default_purpose in (purposes or ())):
        return None
    return f" --purpose {purposes[0] if purposes and len(purposes) == 1 else 'PURPOSE'}"


def render_html(context: NotebookContext) -> str:
    e = html.escape
    parts = [f"<div class='nb-context'><h3 style='margin:0.2em 0'>{e(context.name)}</h3>"
             f"<div style='color:#666'>{e(str(context.path))}</div>"]
    if context.problem:
        parts.append(f"<p style='color:#a60'>{e(context.problem)}</p>")
    if not context.exists:
        return "\n".join((*parts, "</div>"))
    if context.declared:
        params = ", ".join(
            f"{p['name']}={p['scheduled']!r} (default {p['default']!r})" if p["scheduled"] is not None else f"{p['name']}={p['default']!r}"
            for p in context.parameters
        )
        parts.append(_table([
            ("owners", ", ".join(context.owners) or "-"), ("trigger", context.trigger),
            ("purpose", context.purpose or "-"), ("parameters", params or "-"),
            ("reads", "; ".join(_zoned(i) for i in context.inputs) or "-"),
            ("writes", "; ".join(_zoned(o) for o in context.outputs) or "- (report)"),
            ("upstream notebooks", ", ".join(context.upstream) or "-"),
            ("downstream notebooks", ", ".join(context.downstream) or "-"),
            *([("status", context.status)] if context.status else []),
            *([("findings", f"{len(context.findings)}, below")] if context.findings else []),
        ]))
    elif context.parsed or context.findings:
        purposes = [] if context.purposes is None else [
            ("purposes that may read it", ", ".join(context.purposes) or "none in the policy")]
        parts.append(_table([
            ("parameters", ", ".join(f"{p['name']}={p['default']!r}" for p in context.parameters) or "-"),
            ("reads", "; ".join(_zoned(i) for i in context.inputs) or "-"),
            ("writes", "; ".join(_zoned(o) for o in context.outputs) or "- (report)"),
            *purposes,
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
    zones = table["zones"]
    return f"{table['table']} [{'zones unknown: see findings' if zones is None else ', '.join(zones) or 'no zone'}]"


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
    from nb_assets.runs.report import run_failure

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
        if context.status:
            lines.append(f"status: {context.status}")
    elif context.parsed:
        lines.append(f"reads: {'; '.join(_zoned(i) for i in context.inputs) or '-'}; "
                     f"writes: {'; '.join(_zoned(o) for o in context.outputs) or '- (report)'}"
                     + ("" if context.purposes is None else f"; purposes that may read it: {', '.join(context.purposes) or 'none'}"))
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
    from IPython.core.error import UsageError
    from IPython.display import display

    try:
        path = open_notebook_path(argument, namespace)
    except NotebookNotFound as exc:
        raise UsageError(str(exc)) from None  # IPython shows the message alone, without a traceback
    try:
        import ipywidgets  # noqa: F401
    except ImportError:  # the static pane: the same HTML, refreshed by running the magic again
        display(ContextPane(notebook_context(path)))
        return
    display(live_pane(path))


def live_pane(path: Path) -> Any:
    """The pane as a widget that stays open: Refresh reads the declaration, the zones and the
    runs again; Check lists the saved notebook's offending cells (number and message)."""
    import ipywidgets as w

    from nb_assets.jupyter.cell_findings import findings_html

    context = notebook_context(path)
    pane, checks = w.HTML(render_html(context)), w.HTML()
    refresh, check = w.Button(description="Refresh", icon="refresh"), w.Button(description="Check")
    refresh.add_class("nb-context-refresh")
    check.add_class("nb-context-check")
    checks.add_class("nb-context-findings")

    def on_refresh(_button: Any) -> None:
        try:
            box.context = notebook_context(path)
            pane.value = render_html(box.context)
        except Exception as exc:  # noqa: BLE001 - said in the pane, not as a traceback
            pane.value = f"<p style='color:#c33'>Refresh failed: {html.escape(f'{type(exc).__name__}: {exc}')}</p>"

    def on_check(_button: Any) -> None:
        checks.value = (f"<p><b>Check</b> of {html.escape(path.name)} as saved (save first to check your latest "
                        "edits):</p>" + findings_html(path))

    class LivePane(w.VBox):  # type: ignore[misc]
        """The widget, which JupyterLab draws; anything that cannot (nbconvert, papermill's
        record, a terminal) gets the static pane's HTML and text from the same bundle."""

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs) or {}
            return {**bundle, "text/html": render_html(self.context), "text/plain": render_text(self.context)}

    box = LivePane([w.HBox([refresh, check]), pane, checks])
    box.context = context
    box.add_class("nb-context-pane")
    refresh.on_click(on_refresh)
    check.on_click(on_check)
    return box
