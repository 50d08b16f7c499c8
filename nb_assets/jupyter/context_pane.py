"""`%nb_context`: the open notebook's declaration, lineage, zones and last runs, in Jupyter.

Host side only. The in-notebook runtime (nb_assets.notebook) imports this
module when the magic is used, never on `%load_ext`, so the sandbox (which has
only the runtime) does not need it. It reads the project's definitions file
(in a dg project, its NotebookComponents' defs.yaml files, as `nb-assets
schedule` finds them: form_project.py) without building the Dagster graph, the warehouse's catalog when it opens
(read-only, no waiting) and the run records on disk, so it works without the
Dagster webserver; the output is plain HTML.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.jupyter.context_pane_view import NotebookContext, render_html, render_text
from nb_assets.jupyter.context_pane_view import listed_checks  # each output's checks, for the pane's "checks of" rows
from nb_assets.jupyter.context_pane_project import ProjectView, draft_zones, missing_tables, read_project
from nb_assets.jupyter.context_pane_status import status_line
from nb_assets.jupyter.server_session import session_notebook
from nb_assets.jupyter.unsaved import never_saved, save_first
from nb_assets.jupyter.form_project import FormProject, form_project
from nb_assets.locations import nearest_project
from nb_assets.runs.history import find_runs, project_dir_of, record_roots

if TYPE_CHECKING:
    from nb_assets.spec import NotebookSpec

LAST_RUNS = 8


class NotebookNotFound(ValueError):
    """`%nb_context` cannot find the notebook: the message says what was tried and what to type."""


def open_notebook_path(argument: str | None, namespace: Mapping[str, Any], cwd: Path | None = None,
                       magic: str = "%nb_context") -> Path:
    """The notebook to describe: the magic's argument, else what the front end tells the
    kernel: the Jupyter server's session for it now (its sessions API, on loopback), else
    JPY_SESSION_NAME (its name when the kernel started), else VS Code's __vsc_ipynb_file__."""
    here = (cwd or Path.cwd()).resolve()
    if argument and not argument.endswith(".ipynb"):
        raise NotebookNotFound(f"{magic} takes a notebook file (.ipynb), not {argument!r}; {_how_to_name(here, magic)}")
    if not argument and os.environ.get("JPY_SESSION_NAME"):  # a kernel a Jupyter server started: ask it
        current = session_notebook()
        if current is not None and current.is_file():
            return current.resolve()
    # Jupyter Server names the notebook to its kernel once, when the kernel starts: a notebook renamed since
    # (JupyterLab asks for a name on the first save of an Untitled one) is not where that name says.
    told = (("", argument), (" (its name when its kernel started: renamed since?)", os.environ.get("JPY_SESSION_NAME")),
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
    # Newest first: the notebook just saved (or renamed) is the likely one.
    here = [p.name for p in sorted(cwd.glob("*.ipynb"), key=lambda p: (-p.stat().st_mtime, p.name))]
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
    around = _project_around(path)
    project = around.root if around is not None else project_dir_of(path)
    context = NotebookContext(path=path, name=notebook_name(path), project_dir=project)
    if not path.is_file():  # nothing else: runs or a declaration of a notebook by that name would mislead
        context.problem, context.exists = f"no such notebook: {path}", False
        return context
    if never_saved(path):  # a new notebook's file: its declaration, findings and runs are not what the author typed
        context.problem, context.exists = save_first(path, "press Refresh (or run %nb_context again)"), False
        return context
    roots = record_roots(project, records or (), near=[path.parent, Path.cwd()])
    _add_declaration(context, project / "definitions.py", roots, around)
    context.runs = find_runs(roots, context.name)[:LAST_RUNS]
    return context


def _project_around(path: Path) -> FormProject | None:
    """The project around the notebook as `nb-assets schedule` finds it (a dg project's, or definitions.py's)."""
    from nb_assets.errors import DeclarationError

    try:
        return form_project(path)
    except DeclarationError:  # a malformed dg configuration: read the notebook as in no dg project
        return None


def _add_declaration(context: NotebookContext, definitions: Path, roots: list[Path] | None = None,
                     around: FormProject | None = None) -> None:
    """Fill in what the project's definitions file (a dg project: its components' defs.yaml files) says about this notebook."""
    dg = around.dg if around is not None else None
    if dg is not None:  # its notebooks are NotebookComponents; where they are declared, the pane names
        definitions = dg.defs_dir
    elif not definitions.is_file():
        context.problem = f"no definitions.py at or above {context.path.parent}: the notebook is not scheduled"
        _add_parse(context, None, None)
        return
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.errors import NbAssetsError
    from nb_assets.project.lineage import LineageNotebook, trace

    try:
        declarations = around.declarations() if dg is not None and around is not None else load_declarations(definitions)
        project = read_project(declarations)
    except (NbAssetsError, OSError, SyntaxError) as exc:
        context.problem = f"{definitions}: {exc}"
        return
    context.ui_base_url = getattr(declarations.notifications, "ui_base_url", None)
    item = project.find(context.path)
    if item is None:
        context.problem = (f"not declared in {definitions}" if dg is None else
                           f"not declared in the dg project {dg.root}: no NotebookComponent's defs.yaml under {dg.defs_dir} names it")
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
    context.checks = listed_checks(spec)
    context.findings = missing_tables(context.name, spec, project)
    graph = [LineageNotebook(d.spec, d.decl.purpose) for d in project.declared]
    up = {h.notebook.spec.name: None for t in spec.input_tables for h in trace(t, graph, "upstream")}
    down = {h.notebook.spec.name: None for t in spec.output_tables for h in trace(t, graph, "downstream")}
    context.upstream = [n for n in up if n != spec.name]
    context.downstream = [n for n in down if n != spec.name]
    context.status = status_line(project, item, declarations.warehouse, roots or [])


def _add_parse(context: NotebookContext, warehouse: str | None, project: ProjectView | None) -> None:
    """What a notebook that is not declared says about itself, placed in the project (`project`,
    when there is one) as `nb-assets schedule` would place it, and how to schedule it."""
    from nb_assets.errors import NbAssetsError
    from nb_assets.locations import dialect_of
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.jupyter.cell_links import describe_finding

    try:
        spec = parse_notebook(context.path, dialect_of(warehouse))
    except (NbAssetsError, OSError, ValueError) as exc:
        context.findings = [f"error: {exc}"]
        return
    if project is not None:  # a literal read of a file a declared source holds: read that source, as check says
        spec = project.with_sources(spec)
    context.parsed = True
    context.parameters = [{"name": p.name, "default": p.default, "scheduled": None} for p in spec.parameters]
    context.checks = listed_checks(spec)
    context.findings = [f"{f.severity}: {describe_finding(context.name, f, spec.cells)}" for f in spec.findings]
    placed: list[str] = []  # what the project says of it: missing tables, a taken name, the policy's refusal
    clashes: list[str] = []  # tables it may not write
    purpose = None
    if project is None:
        context.inputs = [{"table": t, "zones": []} for t in spec.input_tables]
        context.outputs = [{"table": t, "zones": []} for t in spec.output_tables]
    else:
        placed, clashes, purpose = _place(context, project.as_declared(spec), project)
        placed += project.source_problems(spec, context.name)
    context.findings += [*placed, *clashes]
    relative = os.path.relpath(context.path, context.project_dir)
    context.command = (f"nb-assets schedule {relative} --owner YOU@EXAMPLE.COM{purpose or ''} --cron '0 6 * * *'"
                       "  # or --on-inputs-landed")
    errors = spec.errors or any(f.startswith("error: ") for f in placed)
    # A warning, as check says it, but the policy refuses a table it cannot find: name it before scheduling.
    typos = any(": no such table " in f for f in placed)
    todo = " and ".join(([f"fix its error findings (nb-assets check {relative})"] if errors else [])
                        + (["correct the table names the warehouse lacks"] if typos else [])
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
    # An Output, not an HTML widget: JupyterLab renders its HTML as a cell's output, so a
    # local link (the failing cell's `#cell-id=`) opens in JupyterLab, not as a new page.
    pane, checks = w.Output(), w.HTML()
    _show_html(pane, render_html(context))
    refresh, check = w.Button(description="Refresh", icon="refresh"), w.Button(description="Check")
    refresh.add_class("nb-context-refresh")
    check.add_class("nb-context-check")
    checks.add_class("nb-context-findings")

    def on_refresh(_button: Any) -> None:
        try:
            box.context = notebook_context(path)
            _show_html(pane, render_html(box.context))
        except Exception as exc:  # noqa: BLE001 - said in the pane, not as a traceback
            _show_html(pane, f"<p style='color:#c33'>Refresh failed: {html.escape(f'{type(exc).__name__}: {exc}')}</p>")

    def on_check(_button: Any) -> None:
        if never_saved(path):  # check would only say the empty file names no kernel
            checks.value = f"<p style='color:#c33'>{html.escape(save_first(path))}</p>"
            return
        checks.value = "<p>⏳ <code>nb-assets check</code> …</p>"  # it runs the command: a second or two
        checks.value = (f"<p><b>Check</b> of {html.escape(path.name)} as saved (save first to check your latest "
                        "edits), as <code>nb-assets check</code> finds it:</p>" + findings_html(path))

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


def _show_html(output: Any, markup: str) -> None:
    """Replace what an Output widget shows (set directly: a button's callback has no cell to capture)."""
    output.outputs = ({"output_type": "display_data", "data": {"text/html": markup, "text/plain": "(the context pane)"},
                       "metadata": {}},)
