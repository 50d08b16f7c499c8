"""`%nb_schedule`: the Schedule form in Jupyter (ipywidgets), over `nb-assets schedule`.

Owners, trigger (cron and timezone / when inputs land / both), the notebook's
parameters prefilled from its parameters cell, purpose (a choice of those the
project's policy declares), instances or daily partitions; buttons Check,
Preview, Trial run and Schedule. Each button runs the command itself
(schedule_runner.py), so the form and the terminal are one code path; the
form reads the notebook as saved, and says so. While a step
runs, its progress line shows the command's current step; an error lands in
the form as the command says it (what failed, and the fix), never as a
traceback. Check shows `nb-assets check`'s findings, each on its cell, and of
the refusal only what they do not say (schedule_result_view.py draws the
results). A notebook empty as saved (new, never saved) gets "save it first",
not check's findings of an empty file. The fields' values outlive the form: run
`%nb_schedule` again in the same kernel, with or without the notebook's path,
and they are still there (_MEMORY, by the notebook's resolved path). A declared
notebook's form opens filled in from its declaration, says where that is, and
every button runs with `--update` (form_project.py reads the declaration, in a
definitions.py project or a dg project's defs.yaml). Host side only, imported by
the magic.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nb_assets.errors import DeclarationError
from nb_assets.jupyter.cell_findings import check_findings
from nb_assets.jupyter.form_project import Declared, FormProject, field_values, form_project, kept_flags
from nb_assets.jupyter.schedule_result_view import (
    BAD_STYLE as _BAD, LABELS, OK_STYLE as _OK, label_of, needs_findings, result_html,
)
from nb_assets.jupyter.schedule_runner import FormFields, Step, run_step
from nb_assets.jupyter.unsaved import never_saved, save_first

if TYPE_CHECKING:
    from nb_assets.policy.model import Policy

SAVE_HINT = ("The form reads the notebook <b>as saved</b>: click outside the form, then Ctrl+S (or File → Save Notebook), "
             "before you press a button.")
# What the fields held, by notebook (memory_key), for this kernel's life: a re-run of %nb_schedule keeps them.
_MEMORY: dict[Path, dict[str, Any]] = {}
_FIELDS = ("owners", "trigger", "cron", "timezone", "purpose", "instances", "daily_from", "freshness")


class ScheduleForm:
    """The form for one notebook; `widget` is what Jupyter displays."""

    def __init__(self, notebook: Path) -> None:
        import ipywidgets as w

        self.notebook = memory_key(notebook)
        self.problem: str | None = None  # why no button can run
        try:
            self.project: FormProject | None = form_project(self.notebook)
        except DeclarationError as exc:  # a malformed dg.toml or pyproject.toml: nothing can be scheduled there
            self.project, self.problem = None, str(exc)
        self.declared = self._read_declared()
        params = _parameters(self.notebook)
        self.defaults = {name: text for name, text in params}
        style = {"description_width": "110px"}
        wide = w.Layout(width="520px")
        self.owners = w.Text(description="Owners", placeholder="you@example.com, team:data-eng", style=style, layout=wide)
        self.trigger = w.Dropdown(description="Trigger", options=[("on a cron schedule", "cron"),
                                  ("when its inputs land", "inputs"), ("both: cron, then wait for inputs", "both")],
                                  style=style, layout=wide)
        self.cron = w.Text(description="Cron", placeholder="0 6 * * *", style=style, layout=wide)
        self.timezone = w.Text(description="Timezone", value="UTC", placeholder="UTC", style=style, layout=wide)
        self.params = {name: w.Text(description=name, value=text, style=style, layout=wide) for name, text in params}
        self.purpose = _purpose_field(self.project, style, wide)
        self.instances = w.Textarea(description="Instances", placeholder="one per line: emea region=EMEA",
                                    style=style, layout=wide)
        self.daily_from = w.Text(description="Daily from", placeholder="YYYY-MM-DD: daily partitions (optional)",
                                 style=style, layout=wide)
        self.freshness = w.Text(description="Freshness", placeholder='optional: a maximum age ("26h") or a deadline '
                                '("by 07:00 Europe/Berlin")', style=style, layout=wide)
        self.buttons = {step: w.Button(description=LABELS[step], button_style="primary" if step == "schedule" else "")
                        for step in LABELS}
        for step, button in self.buttons.items():
            button.add_class(f"nb-schedule-{step}")
            button.on_click(lambda _b, step=step: self.press(step))
        self.status = w.HTML("<i>ready</i>")
        self.status.add_class("nb-schedule-status")
        self.result = w.HTML()
        self.result.add_class("nb-schedule-result")
        self.header = w.HTML()
        self.header.add_class("nb-schedule-header")
        params_box = [w.HTML("<b>Parameters</b> (from the parameters cell)"), *self.params.values()] if self.params else []
        self.widget = w.VBox([self.header, self.owners, self.trigger, self.cron, self.timezone, *params_box, self.purpose,
                              self.instances, self.daily_from, self.freshness, w.HBox(list(self.buttons.values())),
                              self.status, self.result])
        self.widget.add_class("nb-schedule-form")
        self._show_declared()
        self.prefill = self._prefill()
        self._recall()
        for box in [*(getattr(self, name) for name in _FIELDS), *self.params.values()]:
            box.observe(lambda _change: self._remember(), names="value")
        if self.problem is not None:
            self._show_error(self.problem)
        elif self.project is None:
            self._show_error("no definitions.py or dg project at or above the notebook: open it inside a project "
                             "(nb-assets lab PROJECT)")

    def _read_declared(self) -> Declared | None:
        """The notebook's declaration, if the project has one for it; a project that cannot be read
        now declares nothing here (Check runs the command, which says what is wrong with it)."""
        if self.project is None:
            return None
        try:
            return self.project.declared(self.notebook)
        except Exception:  # noqa: BLE001 - definitions.py is the project's own code
            return None

    def _show_declared(self) -> None:
        """The header: which notebook, whether (and where) it is scheduled, and what the buttons do."""
        e, project, declared = html.escape, self.project, self.declared
        where = self.notebook if project is None else project.shown(self.notebook)
        steps = f"{SAVE_HINT} Each button runs <code>nb-assets schedule"
        if declared is None:
            file = "" if project is None or project.dg is None else \
                f" as a component, in <code>{e(project.shown(project.declaration_file(self.notebook, None)))}</code>"
            self.header.value = (f"<b>Schedule <code>{e(str(where))}</code></b><br><small>{steps}</code>: Trial run "
                                 "writes the test plan, <code>plans/NAME.md</code>; Schedule declares the notebook"
                                 f"{file} and commits on a new git branch, <code>schedule/NAME</code>, and switches the "
                                 "project's checkout to it.</small>")
        else:
            assert project is not None
            at = e(project.shown(declared.file) + (f":{declared.line}" if declared.line else ""))
            update = (" (in Python, which nb-assets does not rewrite: change it there)" if declared.in_python else
                      f": Trial run writes the test plan, <code>plans/NAME.md</code>; <b>{label_of('schedule', True)}</b> "
                      f"replaces the declaration in <code>{e(project.shown(declared.file))}</code> by what the form "
                      "says (a field left empty clears it), commits it on a new git branch, <code>reschedule/NAME</code>, "
                      "and switches the project's checkout to it")
            self.header.value = (f"<b>Scheduled: <code>{e(str(where))}</code></b> is declared in <code>{at}</code>; "
                                 f"the form shows that declaration (trigger: {e(declared.decl.trigger())})."
                                 f"<br><small>{steps} --update</code>{update}.</small>")
        if declared is not None:
            self.header.add_class("nb-scheduled")
        self.buttons["schedule"].description = label_of("schedule", declared is not None)

    def _prefill(self) -> dict[str, Any] | None:
        """Fill the fields from the declaration (what it leaves unset shows empty); returns what they were filled with."""
        from traitlets import TraitError

        if self.declared is None:
            return None
        values = field_values(self.declared.decl)
        offered = [value for _, value in getattr(self.purpose, "options", ())]
        if values["purpose"] and hasattr(self.purpose, "options") and values["purpose"] not in offered:
            # Declared, but the policy no longer offers it: shown as declared (Check refuses it), never
            # dropped to "(none)", which an update would send as no purpose at all.
            self.purpose.options = [*self.purpose.options, (f"{values['purpose']} (not in the policy)", values["purpose"])]
        for name in _FIELDS:
            try:
                getattr(self, name).value = values[name]
            except TraitError:  # a value no option holds: the field keeps its default
                pass
        for name, text in values["params"].items():
            if name in self.params:
                self.params[name].value = text
        return values

    def _remember(self) -> None:
        kept = {name: getattr(self, name).value for name in _FIELDS}
        # A parameter only as typed over its default: a later default in the notebook still shows.
        kept["params"] = {name: box.value for name, box in self.params.items() if box.value != self.defaults.get(name)}
        kept["declared"] = self.prefill  # typed over this declaration (or over none)
        _MEMORY[self.notebook] = kept

    def _recall(self) -> None:
        from traitlets import TraitError

        kept = _MEMORY.get(self.notebook, {})
        if kept.get("declared") != self.prefill:  # declared, or changed, since: the declaration shows, not older typing
            return
        for name in _FIELDS:
            if name in kept:
                try:
                    getattr(self, name).value = kept[name]
                except TraitError:  # a purpose the policy no longer offers (edited since): the default shows
                    pass
        for name, value in kept.get("params", {}).items():
            if name in self.params:
                self.params[name].value = value

    def fields(self) -> FormFields:
        # A declared parameter is sent even at the notebook's default: the update keeps it declared.
        declared = set(self.prefill["params"]) if self.prefill else set()
        changed = {name: box.value for name, box in self.params.items()
                   if box.value != self.defaults.get(name) or name in declared}
        return FormFields(owners=[o for o in self.owners.value.split(",") if o.strip()], trigger=self.trigger.value,
                          cron=self.cron.value, timezone=self.timezone.value, params=changed, purpose=self.purpose.value,
                          instances=self.instances.value, daily_from=self.daily_from.value,
                          freshness=self.freshness.value,
                          kept=kept_flags(self.declared.decl) if self.declared is not None else ())

    def press(self, step: Step) -> None:
        """Run one step; whatever happens, the buttons come back and the form says how it went."""
        if self.project is None:
            return
        if never_saved(self.notebook):  # check would only say the empty file names no kernel
            self._show_error(save_first(self.notebook))
            self.result.value = ""
            return
        for button in self.buttons.values():
            button.disabled = True
        project, declared = self.project, self.declared
        label = label_of(step, declared is not None)
        self.status.value = f"⏳ {label}: starting <code>nb-assets schedule</code> …"
        self.result.value = ""
        try:
            result = run_step(self.notebook, project.root, step, self.fields(),
                              progress=lambda line: setattr(self.status, "value", f"⏳ {label}: {html.escape(line)}"),
                              log_dir=project.root / ".nb_assets" / "schedule", dg=project.dg is not None,
                              update=declared is not None)
            findings = None
            if needs_findings(result):  # each cell's findings, as `nb-assets check` gives them
                self.status.value = f"⏳ {label}: <code>nb-assets check</code> for the findings of each cell …"
                findings = check_findings(self.notebook)
            # The result first: whoever waits for the verdict on the status line then finds it there.
            self.result.value = result_html(result, self.notebook, findings,
                                            declarations=project.declaration_file(self.notebook, declared))
            self.status.value = (f"<span style='{_OK}'>✔ {label}: done</span>" if result.ok
                                 else f"<span style='{_BAD}'>✖ {label}: {'refused' if step == 'schedule' else 'failed'}</span>")
            if result.ok and step == "schedule":  # declared now: the next press updates it
                self.declared = self._read_declared()
                self._show_declared()
                self.prefill = field_values(self.declared.decl) if self.declared is not None else None
                self._remember()
        except Exception as exc:  # noqa: BLE001 - the form shows it; a traceback in the output area helps nobody
            self._show_error(f"{type(exc).__name__}: {exc}")
        finally:
            for button in self.buttons.values():
                button.disabled = False

    def _show_error(self, message: str) -> None:
        self.status.value = f"<span style='{_BAD}'>✖ {html.escape(message)}</span>"


def memory_key(notebook: Path) -> Path:
    """The notebook as the form's memory knows it: its resolved path, so `%nb_schedule`,
    `%nb_schedule x.ipynb` and `%nb_schedule ./x.ipynb` (or a path through a symlink) share it."""
    return Path(os.path.realpath(notebook.expanduser()))


def policy_purposes(project: FormProject | None) -> Policy | str:
    """The project's policy, read as the command reads it (definitions.py names its file, relative
    to the project; a dg project's NotebookProjectSettings), when it declares purposes; else why
    there are none to offer."""
    from nb_assets.policy.loader import load_policy

    if project is None:
        return "no project"
    try:
        file = project.policy_file()
        if file is None:
            return "the project has no policy"
        policy = load_policy(file)
    except Exception as exc:  # noqa: BLE001 - the project's own code ran: the field stays free, Check says what is wrong
        said = (str(exc).splitlines() or [""])[0][:80]
        return f"its policy cannot be read: {type(exc).__name__}{': ' + said if said else ''}"
    return policy if policy.purposes else "the policy declares no purposes"


def _purpose_field(project: FormProject | None, style: dict[str, str], layout: Any) -> Any:
    """A choice of the policy's purposes (and none: the policy's default applies), else a free field."""
    import ipywidgets as w

    policy = policy_purposes(project)
    if isinstance(policy, str):
        return w.Text(description="Purpose", placeholder=f"a purpose ({policy})", style=style, layout=layout)
    default = f"(none: the policy's default, {policy.default_purpose})" if policy.default_purpose else "(none)"
    options = [(default, "")]
    options += [(f"{name} (reads {', '.join(sorted(zones)) or 'no zone'})", name) for name, zones in policy.purposes.items()]
    return w.Dropdown(description="Purpose", options=options, value="", style=style, layout=layout)


def _parameters(notebook: Path) -> list[tuple[str, str]]:
    """The parameters cell's names and defaults, as the form's text fields show them."""
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.errors import NbAssetsError

    try:
        spec = parse_notebook(notebook)
    except (NbAssetsError, OSError, ValueError):
        return []  # Check says what is wrong with it
    return [(p.name, p.default if isinstance(p.default, str) else repr(p.default)) for p in spec.parameters]


def show_schedule_form(argument: str | None, namespace: Mapping[str, Any]) -> ScheduleForm:
    """`%nb_schedule [NOTEBOOK]`: display the form (and return it, for a test that presses it)."""
    from IPython.core.error import UsageError
    from IPython.display import display

    from nb_assets.jupyter.context_pane import NotebookNotFound, open_notebook_path

    try:
        path = open_notebook_path(argument, namespace, magic="%nb_schedule")
    except NotebookNotFound as exc:
        raise UsageError(str(exc)) from None
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        raise UsageError("%nb_schedule needs ipywidgets: pip install 'nb_assets[lab]' (make setup installs it)") from None
    form = ScheduleForm(path)
    display(form.widget)
    return form
