"""What `%nb_context` shows (NotebookContext) and how: HTML for Jupyter, text for a terminal.

Split from context_pane.py, which gathers the context (the declaration, the parse, the
policy's zones, the run records) and serves the pane; this module only renders it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.jupyter.cell_links import cell_label_in, failed_cell_link
from nb_assets.runs.history import RunRecord
from nb_assets.spec import NotebookSpec


@dataclass
class NotebookContext:
    """What the pane shows; every part is optional, so a half-configured project still gets one."""

    path: Path
    name: str
    project_dir: Path
    exists: bool = True  # False (no such notebook, or empty as saved): the pane says `problem`, and nothing else
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
    checks: dict[str, list[str]] = field(default_factory=dict)  # output table → its checks, "unique(order_id) [error]"

    @property
    def last_failure(self) -> RunRecord | None:
        return next((r for r in self.runs if r.status != "success"), None)


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
            *checks_rows(context),
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
            *checks_rows(context),
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


def listed_checks(spec: NotebookSpec) -> dict[str, list[str]]:
    """Each output's checks (the notebook's, and its declaration's once declared) as the author writes them, with
    the severity: `unique(order_id) [error]` blocks the publish, `[warn]` publishes and reports; and the rows
    `checks_rows` adds to the pane, one per output that has checks."""
    from dataclasses import replace

    return {table: [f"{replace(c, severity='error').describe()} [{c.severity}]" for c in checks]
            for table, checks in spec.output_checks.items()}


def checks_rows(context: NotebookContext) -> list[tuple[str, str]]:
    return [(f"checks of {table}", "; ".join(checks)) for table, checks in context.checks.items()]


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
        f"<td>{'' if r.failed_cell is None else html.escape(_failed_cell(context, r, r.failed_cell))}</td></tr>"
        for r in context.runs
    )
    return f"<h4>Last runs</h4><table><tr><th>run</th><th>status</th><th>started (UTC)</th><th>where</th><th></th></tr>{rows}</table>"


def _failed_cell(context: NotebookContext, run: RunRecord, cell: int) -> str:
    """`cell 6 (`%%sql events`)` as the run ran it (its executed notebook), else as the notebook is saved now."""
    ran = run.executed if run.executed is not None and run.executed.is_file() else context.path
    return cell_label_in(ran, cell)


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
        if failure.cell is not None:  # a click in JupyterLab selects the cell in the notebook
            parts.append(failed_cell_link(context.path, failure.cell, run.executed))
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
    lines += [f"{label}: {value}" for label, value in checks_rows(context)]
    lines += context.findings
    if context.next_step and context.command:
        lines += [context.next_step, f"  {context.command}"]
    lines += [f"{shown_id(r)} {r.status} {r.where} {r.started_at:%Y-%m-%d %H:%M}" for r in context.runs]
    return "\n".join(lines)
