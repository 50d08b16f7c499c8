"""What the Schedule form shows when a button's command has finished, worded for the author at the form.

A Check (and any step the checks refused) shows `nb-assets check`'s findings for the
notebook, each on its cell, and under them only what the refusal adds (schedule_results);
a Trial run says what ran, how it went, the rows, where the executed notebook is and what
to do next. No widgets here: HTML strings, tested without a browser.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from nb_assets.errors import DeclarationError
from nb_assets.jupyter.cell_findings import check_findings, findings_html
from nb_assets.jupyter.form_project import form_project
from nb_assets.jupyter.preview_svg import preview_svg
from nb_assets.jupyter.schedule_results import TrialFacts, already_shown, unseen_problems
from nb_assets.jupyter.schedule_runner import Step, StepResult
from nb_assets.spec import Finding

LABELS: dict[Step, str] = {"check": "Check", "preview": "Preview", "trial": "Trial run", "schedule": "Schedule"}
UPDATE_LABEL = "Update schedule"  # the Schedule button of a declared notebook: it replaces the declaration
OK_STYLE = "color:#2a7"
BAD_STYLE = "color:#c33"


def needs_findings(result: StepResult) -> bool:
    """Whether the form shows `nb-assets check`'s findings after this step: after a Check, and
    whenever the command stopped at its checks (the findings are then what to fix)."""
    return result.step == "check" or not result.past_checks


def label_of(step: Step, update: bool = False) -> str:
    """A button's label: a declared notebook's Schedule button updates its schedule."""
    return UPDATE_LABEL if update and step == "schedule" else LABELS[step]


def result_html(result: StepResult, notebook: Path, findings: Sequence[Finding] | str | None = None,
                declarations: Path | None = None) -> str:
    """What a finished step shows in the form. `findings`: `nb-assets check`'s for the notebook
    (cell_findings.check_findings; a string says why there are none), when needs_findings.
    `declarations`: the file the command declares the notebook in (default: declarations.yaml
    of the project around it)."""
    e = html.escape
    label = label_of(result.step, result.update)
    if findings is None and needs_findings(result):
        findings = check_findings(notebook)
    listed = list(findings) if findings is not None and not isinstance(findings, str) else []
    if not result.ok:
        refused = "refused" if result.step == "schedule" else "failed"
        parts = [f"<p style='{BAD_STYLE}'><b>{label} {refused}.</b></p>"]
        error = result.error or ""
        if needs_findings(result):
            parts.append(findings_html(notebook, findings))
            error = unseen_problems(error, listed, declarations or _declarations(notebook))
            if not error:
                parts.append("<p class='nb-next'><b>Next:</b> fix the error findings above in their cells, save the "
                             f"notebook, and press <b>{label}</b> again.</p>")
        if error:
            parts.append(f"<pre class='nb-error' style='white-space:pre-wrap'>{e(error)}</pre>")
        parts.append(trial_html(result, notebook))
        return "".join(parts)
    warnings = [line.strip() for line in result.lines if line.strip().startswith(("warning:", "note:"))]
    # A notebook's own warning is in the findings table already, on its cell.
    warnings = [w for w in warnings if not already_shown(w.removeprefix("warning:").strip(), listed)]
    parts = [f"<p style='{OK_STYLE}'><b>{label}: done.</b></p>"]
    parts += [f"<p>{inline(w)}</p>" for w in warnings]  # escaped, then their `code`
    if result.step == "check":
        parts.append(findings_html(notebook, findings))
    if result.step == "preview" and result.preview is not None:
        parts.append(preview_svg(result.preview))
    if result.step in ("trial", "schedule"):
        parts.append(trial_html(result, notebook))
    if result.declared_in:
        file, _, line = result.declared_in.rpartition(":")
        at = f"{shown(Path(file), notebook)}:{line}" if line.isdigit() else shown(Path(result.declared_in), notebook)
        parts.append(f"<p class='nb-declared'>{'Updated its declaration' if result.update else 'Declared it'} in "
                     f"<code>{e(at)}</code>.</p>")
    if result.branch:
        parts.append(f"<p class='nb-branch'>Committed the notebook, its declaration and the test plan on branch "
                     f"<code>{e(result.branch)}</code> (you are on it now); push it for review.</p>")
    return "".join(parts)


def trial_html(result: StepResult, notebook: Path) -> str:
    """The trial for the author: what ran, how it went, the rows, where the executed notebook is, what next."""
    trials = result.trials
    if not trials:
        return ""
    e = html.escape
    root = _root(notebook)
    parts = []
    for trial in trials:
        which = f" ({e(trial.label)})" if trial.label else ""
        sandbox = f" in the {e(trial.sandbox)} sandbox" if trial.sandbox else ""
        parts.append(f"<p class='nb-trial-ran'>Ran <code>{e(shown(notebook, notebook))}</code>{which} once, as its "
                     f"schedule would run it with the form's fields{sandbox}, against a scratch copy of the warehouse: "
                     "the real tables were not touched.</p>")
        parts.append("<ul class='nb-trial'>" + "".join(f"<li>{item}</li>" for item in _trial_items(trial, root)) + "</ul>")
    succeeded = all(t.status == "success" for t in trials)
    label = label_of(result.step, result.update)
    if not succeeded:
        parts.append("<p class='nb-next'><b>Next:</b> open the executed notebook to see where it stopped (the error "
                     f"is above), fix that cell, save the notebook, and press <b>{label}</b> again.</p>")
    elif not result.ok:
        parts.append(f"<p class='nb-next'><b>Next:</b> fix what the message above says, save, and press <b>{label}</b> "
                     "again.</p>")
    elif result.step == "trial":
        plan = f" (<code>{e(shown(result.plan, notebook))}</code>, written now)" if result.plan is not None else ""
        does = ("replaces its declaration by what the form says and commits it" if result.update
                else "declares the notebook and commits it")
        parts.append("<p class='nb-next'><b>Next:</b> if the rows look right (the executed notebook shows them), press "
                     f"<b>{label_of('schedule', result.update)}</b>: it {does}, with its declaration and the test "
                     f"plan for the reviewer{plan}, on a new branch.</p>")
    elif result.plan is not None:
        parts.append(f"<p>Test plan: <code>{e(shown(result.plan, notebook))}</code></p>")
    return "".join(parts)


def _trial_items(trial: TrialFacts, root: Path | None) -> list[str]:
    e = html.escape
    took = f" in {trial.duration_s:.1f} s" if trial.duration_s is not None else ""
    # The plan keeps a failure's message out (it may quote rows); the form shows it above, from the command.
    failure = (trial.failure or "").split("; its message is in the record", 1)[0]
    items = [f"status: <b>{e(trial.status)}</b>{took}" + (f": {e(failure)}" if failure else "")]
    items += [f"input <code>{e(name)}</code>: {rows:,} rows read" for name, rows in trial.inputs]
    items += [f"output <code>{e(table)}</code>: {rows:,} rows, written to the scratch copy"
              + (f"; columns: {', '.join(f'<code>{e(c)}</code>' for c in columns)}" if columns else "")
              for table, rows, columns in trial.outputs]
    executed = _executed(trial, root)
    if executed is not None:
        items.append(f"executed notebook: <code>{e(executed)}</code>, every cell's output as the trial ran it; "
                     "open it with File → Open from Path… (it is in a hidden folder, kept on this machine only)")
    elif trial.record is None:
        items.append("nothing was executed: the run stopped before the notebook started")
    return items


def _executed(trial: TrialFacts, root: Path | None) -> str | None:
    """The executed notebook, relative to the project: the .ipynb, which JupyterLab opens, beside
    the HTML rendering the plan names."""
    if trial.executed is None:
        return None
    named = Path(trial.executed)
    notebook = named.with_suffix(".ipynb")
    if named.suffix == ".html" and (notebook if root is None or notebook.is_absolute() else root / notebook).is_file():
        return str(notebook)
    return trial.executed


def _declarations(notebook: Path) -> Path:
    """The declarations file the form's command reads: declarations.yaml beside definitions.py."""
    root = _root(notebook)
    return (root if root is not None else notebook.parent) / "declarations.yaml"


def _root(notebook: Path) -> Path | None:
    """The folder of the project around the notebook (a dg project's, or definitions.py's), where the command ran."""
    try:
        project = form_project(notebook)
    except DeclarationError:  # a malformed dg configuration: the command said so
        return None
    return None if project is None else project.root


def inline(markdown: str) -> str:
    """A plan line (Markdown) as HTML: escaped first, then its **bold** and `code`."""
    text = html.escape(markdown)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def shown(path: Path, notebook: Path) -> str:
    """`path` relative to the notebook's project, when it is inside it."""
    root = _root(notebook)
    try:
        return str(path.resolve().relative_to(root.resolve())) if root is not None else str(path)
    except ValueError:
        return str(path)
