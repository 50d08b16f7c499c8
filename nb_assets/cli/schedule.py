"""`nb-assets schedule`: check, preview, try, load, plan, declare and branch, in that order.

Each step stops the workflow on failure, before anything later happens: a
notebook with an error finding is never tried, a failed trial is never
declared, a declaration the project would not load with (checked by the load's
own rules first, then by loading it as Dagster does) is never written, and
nothing is committed on a dirty tree. No data is committed either: the trial's
record stays under .nb_assets/, --git refuses a trial page, and it commits the
notebook without its outputs (committed_notebook.py; the author's file keeps
them). This process never imports Dagster.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError
from nb_assets.analysis.parameters import cli_assignments, coerce_cli_value

EXIT_OK, EXIT_FAILED = 0, 1
CHECKPOINTS = ".ipynb_checkpoints"  # Jupyter's autosaves, beside every notebook it opened


def add_schedule_command(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="check, preview and try a notebook, then declare it as a reviewable change")
    schedule.add_argument("notebook", type=Path)
    schedule.add_argument("--owner", action="append", required=True, metavar="EMAIL_OR_CHANNEL")
    schedule.add_argument("--cron", default=None, help='e.g. "0 6 * * *"')
    schedule.add_argument("--timezone", default=None, help="how to read --cron, e.g. Europe/Amsterdam (default UTC)")
    schedule.add_argument("--on-inputs-landed", action="store_true", help="run when every input has landed")
    schedule.add_argument("--freshness", default=None, metavar="RULE",
                          help='how fresh the outputs must be: a maximum age ("26h") or a daily deadline ("by 07:00 Europe/Berlin")')
    schedule.add_argument("--instance", action="append", nargs="+", default=[], metavar=("NAME", "K=V"),
                          help="one instance and its parameters, e.g. --instance emea region=EMEA; repeat per instance")
    schedule.add_argument("--output", action="append", default=[], metavar="TABLE=TEMPLATE",
                          help="where an output loads, e.g. mart.revenue=mart.revenue_{region}")
    schedule.add_argument("--daily-from", default=None, metavar="YYYY-MM-DD", help="daily partitions from this day (key: the ds parameter)")
    schedule.add_argument("--partition-column", default="ds", help="the date column each output's day is in (default ds)")
    schedule.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    schedule.add_argument("--purpose", default=None)
    schedule.add_argument("--group", default=None)
    schedule.add_argument("--definitions", type=Path, default=None,
                          help="the project's definitions file (default: the dg project around this folder, if any, "
                               "else definitions.py)")
    schedule.add_argument("--declarations", type=Path, default=None,
                          help="the YAML file the definitions load (default: declarations.yaml beside them)")
    schedule.add_argument("--plan-dir", type=Path, default=None, help="where the test plan goes (default: plans/)")
    schedule.add_argument("--write", action="store_true",
                          help="add the declaration to the declarations file (a dg project: a component's defs.yaml)")
    schedule.add_argument("--update", action="store_true",
                          help="the notebook is declared: replace its declaration by what these flags say "
                               "(tried like a new one; --write or --git writes it)")
    schedule.add_argument("--git", action="store_true", help="commit notebook, declaration and plan on a new branch")
    # The steps one at a time, for %nb_schedule's buttons (nb_assets/jupyter/schedule_form.py), which run this command.
    schedule.add_argument("--until", choices=("check", "preview"), default=None,
                          help="stop after the checks, or after the preview: nothing is tried or written")
    schedule.add_argument("--preview-json", type=Path, default=None, metavar="FILE",
                          help="also write the preview (notebooks, the tables they read and write, readers) as JSON")
    schedule.add_argument("--trials-json", type=Path, default=None, metavar="FILE",
                          help="also write each trial's facts (status, duration, rows, columns, record) as JSON")
    schedule.set_defaults(func=cmd_schedule)


def cmd_schedule(args: argparse.Namespace) -> int:
    from nb_assets.cli.schedule_target import (
        cleared, component_target, read_project, require_declared_as_asked, updated, yaml_target,
    )
    from nb_assets.locations import dialect_of
    from nb_assets.analysis.parser import parse_notebook
    from nb_assets.cli.schedule_workflow import (
        Plan, check, declared_entry, is_trial_page, plan_markdown, preview_graph, preview_text, record_notice,
        remove_trial_pages, shown, trial_records, trial_runs, trials_json,
    )

    if args.git:
        args.write = True  # a branch without the declaration would schedule nothing
    _require_freshness(args.freshness)
    if not args.notebook.is_file():
        raise DeclarationError(f"no such notebook: {args.notebook}")
    source = read_project(args)
    project = source.project
    root = project.base_dir
    notebook = args.notebook.resolve()
    plan_path = (args.plan_dir or root / "plans").resolve() / f"{parse_notebook(notebook).name}.md"
    existing = declared_entry(project, notebook)
    require_declared_as_asked(source, existing, notebook, args.update, None if source.dg else args.definitions)
    if args.git:  # a dry run before leaves its plan (and an earlier version a trial page, removed below)
        _require_clean_tree(root, allowed=lambda p: p == notebook or p == plan_path or is_trial_page(p, plan_path))
        _require_not_ignored(root, [notebook, plan_path])

    spec = parse_notebook(notebook, dialect_of(project.warehouse))
    # The project as it would be with this declaration (appended, or replacing the entry), read as
    # the load reads it (through the definitions file itself), so every check sees what Dagster would load.
    wanted, kept = updated(_declaration(args, spec, notebook, root), existing)
    target = (component_target(source, wanted, existing, notebook, spec.name) if source.dg
              else yaml_target(source, args, wanted, existing, notebook))
    project, decl = target.project, target.decl
    if kept:
        print(f"    kept from the entry as it was (no flag sets them): {', '.join(kept)}")
    if cleared(wanted, existing):  # --update makes the entry what the flags say: say what that drops
        print(f"    cleared, as no flag gives them again: {', '.join(cleared(wanted, existing))} "
              "(give their flags to keep them)")

    print("1/6 checks: static rules, the load's rules for the declaration, and the policy")
    checked = check(project, notebook)
    for warning in checked.warnings + tuple(_saved_outputs_warning(notebook, root, args.git)):
        print(f"    warning: {warning}")
    if args.until == "check":
        print("checks passed; stopped there (--until check): nothing was tried or written")
        return EXIT_OK
    print("2/6 preview:\n" + "\n".join(f"    {line}" for line in preview_text(checked).splitlines()))
    if args.preview_json is not None:
        args.preview_json.write_text(json.dumps(preview_graph(checked), indent=1), encoding="utf-8")
    if args.until == "preview":
        print("stopped after the preview (--until preview): nothing was tried or written")
        return EXIT_OK
    print("3/6 trial run into a scratch copy of the warehouse")
    scratch = trial_records(root) / spec.name / time.strftime("%Y%m%dT%H%M%S")
    plan = Plan(decl, checked, trial_runs(project, checked, scratch), project_dir=root, dry_run=_dry_run_command(args, root))
    if args.trials_json is not None:
        args.trials_json.write_text(json.dumps(trials_json(plan), indent=1), encoding="utf-8")
    for trial in plan.trials:
        ran = (f"record {shown(trial.record, root)} (executed notebook: {shown(trial.html or trial.executed_notebook, root)})"
               if trial.executed_notebook and trial.record else "nothing was executed: the run stopped before the notebook started")
        print(f"    {trial.label}: {trial.status} in {trial.duration_s:.2f} s; {ran}")
    if any(t.record for t in plan.trials):
        print("\n".join(f"    {line}" for line in record_notice(plan)))
        _warn_if_committable(root, scratch)
    for page in remove_trial_pages(plan_path):
        print(f"    removed {shown(page, root)}: an earlier nb-assets copied the trial's executed notebook there, "
              "with the warehouse data it showed")
    failed = [t for t in plan.trials if t.status != "success"]
    if not failed:
        print("4/6 load: the project with this declaration, as Dagster loads it (in a separate process)")
        plan.loaded, plan.load_error = True, target.loads(scratch / "load")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(plan_markdown(plan), encoding="utf-8")
    print(f"5/6 test plan: {plan_path}")
    if failed:
        print("nb-assets schedule: the trial run failed, nothing declared:\n"
              + "\n".join(f"  {t.label}: {t.error}" for t in failed), file=sys.stderr)
        return EXIT_FAILED
    if plan.load_error:
        raise DeclarationError(f"Dagster would not load the project with this declaration; nothing declared:\n{plan.load_error}")
    if not args.write:
        print(f"6/6 dry run: add --write to {'update' if existing else 'declare'} it, --git to commit it on a branch for review")
        return EXIT_OK
    _write_unchanged(target.file, target.before, target.text)
    print(f"6/6 {'updated its declaration' if existing else 'declared'} in {decl.declared_at}")
    if source.dg:
        print("    Reload definitions in the Dagster UI (Deployment → Reload) or restart `dg dev`; until then the running "
              "Dagster does not know this change")
    else:
        print("    Reload definitions in the Dagster UI (Deployment → Reload) or restart `make dev`; until then the running "
              "Dagster does not know this notebook (with `make deploy`, run it again: the code image holds the declarations)")
    if args.git:
        branch, was, stripped = _commit_branch(root, spec.name, notebook, [target.file, plan_path], decl, plan_path,
                                               update=existing is not None)
        print(f"    committed on a new branch, {branch}, which you are on now (you were on {was}); "
              f"to open a review: git push -u origin {branch}")
        if stripped:
            shown_nb = _relative(notebook, root)
            print(f"    note: committed {shown_nb} without its outputs and execution counts (they may show warehouse "
                  "data); your file keeps them, so git lists it as modified: before you switch branches, clear its "
                  f"outputs and save, or `git restore {shown_nb}`")
        tracked = [p for p in _git(root, "ls-files", "-z").split("\0") if p and is_trial_page(Path(p))]
        if tracked:
            print(f"    warning: git still tracks {', '.join(tracked)}: trial pages an earlier nb-assets committed, with the "
                  "warehouse data they showed; `git rm` them (their history keeps them too)")
    return EXIT_OK


def _declaration(args: argparse.Namespace, spec: Any, notebook: Path, root: Path) -> Any:
    """The NotebookAsset the flags declare."""
    from nb_assets.project.declaration import DailyPartitions, NotebookAsset

    fields: dict[str, Any] = dict(path=_relative(notebook, root), owners=tuple(args.owner), params=_params(spec, args.param),
                                  purpose=args.purpose, group=args.group, cron=args.cron, timezone=args.timezone,
                                  on_inputs_landed=args.on_inputs_landed, outputs=cli_assignments(args.output, "--output"),
                                  freshness=args.freshness)
    if args.instance:
        fields["instances"] = {name: _params(spec, pairs, f"--instance {name}") for name, *pairs in args.instance}
    if args.daily_from:
        _require_past_day(args.daily_from)
        fields["partitions"] = DailyPartitions(start=args.daily_from, column=args.partition_column)
    return NotebookAsset(**fields)


def _params(spec: Any, items: list[str], flag: str = "--param") -> dict[str, Any]:
    """K=V pairs as the notebook's parameters, each coerced to its declared type; errors name the flag."""
    try:
        return {name: coerce_cli_value(spec, name, raw) for name, raw in cli_assignments(items, flag).items()}
    except DeclarationError as exc:
        raise DeclarationError(f"{flag}: {exc}") from None


def _require_freshness(rule: str | None) -> None:
    """--freshness read by the declaration's own parser (project/freshness.py), before anything is tried or
    written: a rule the project would refuse to load is refused here, with what the flag takes."""
    from nb_assets.project.freshness import FreshnessError, parse_freshness

    if rule is None:
        return
    try:
        parse_freshness(rule)
    except FreshnessError as exc:
        raise DeclarationError(f"--freshness: {exc}; nothing was tried or written") from None


def _require_past_day(first: str) -> None:
    """Daily partitions end yesterday (UTC): a first day after that would declare no partition to run or try."""
    from datetime import datetime, timedelta, timezone

    from nb_assets.project.partitions import partition_day

    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    if partition_day(first, "--daily-from") > yesterday:
        raise DeclarationError(f"--daily-from {first}: daily partitions run up to yesterday ({yesterday}, UTC); "
                               "a first day after that has no partition to try or run yet")


def _dry_run_command(args: argparse.Namespace, root: Path) -> str:
    """The `nb-assets schedule` dry run that tries the notebook as this one did, from the project's folder."""
    words = ["nb-assets", "schedule", _relative(args.notebook.resolve(), root)]
    words += [w for owner in args.owner for w in ("--owner", owner)]
    for flag, value in (("--cron", args.cron), ("--timezone", args.timezone), ("--daily-from", args.daily_from),
                        ("--purpose", args.purpose), ("--group", args.group), ("--freshness", args.freshness)):
        words += [flag, value] if value is not None else []
    words += ["--on-inputs-landed"] if args.on_inputs_landed else []
    words += ["--partition-column", args.partition_column] if args.daily_from and args.partition_column != "ds" else []
    words += [w for pair in args.param for w in ("--param", pair)]
    words += [w for instance in args.instance for w in ("--instance", *instance)]
    words += [w for mapping in args.output for w in ("--output", mapping)]
    words += ["--update"] if args.update else []
    if args.definitions is not None and args.definitions.resolve() != (root / "definitions.py").resolve():
        words += ["--definitions", _relative(args.definitions.resolve(), root)]
    if args.declarations is not None:
        words += ["--declarations", _relative(args.declarations.resolve(), root)]
    return shlex.join(words)


def _saved_outputs_warning(notebook: Path, root: Path, git: bool) -> list[str]:
    """Outputs that may show warehouse data, for whoever commits the notebook by hand
    (--git commits it without them, and says so)."""
    from nb_assets.cli.committed_notebook import saved_output_cells

    cells = [] if git else saved_output_cells(notebook)
    if not cells:
        return []
    return [f"{_relative(notebook, root)} keeps the outputs of cell(s) {', '.join(map(str, cells))}, which may show "
            "warehouse data: --git commits it without them (your file keeps them); to commit it yourself, clear them "
            "first (Jupyter: Edit → Clear Outputs of All Cells, then save)"]


def _warn_if_committable(root: Path, scratch: Path) -> None:
    """The trial's record and scratch warehouse hold warehouse data: say so when git would
    take them along (the project does not ignore .nb_assets/)."""
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True)
    if inside.returncode != 0:
        return
    if subprocess.run(["git", "check-ignore", "-q", "--no-index", str(scratch)], cwd=root).returncode != 0:
        print(f"    warning: git does not ignore {_relative(scratch, root)}, which holds the trial's record and a copy of "
              "the warehouse; add .nb_assets/ to .gitignore")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _write_unchanged(path: Path, before: str, text: str) -> None:
    """Write `text`, built on `before`, unless the file changed meanwhile; atomically, so a
    reader (dagster dev reloading) sees the old file or the new one, never half of one."""
    now = path.read_text(encoding="utf-8") if path.exists() else ""
    if now != before:
        raise DeclarationError(f"{path} changed while the notebook was being scheduled; nothing written: run schedule again")
    path.parent.mkdir(parents=True, exist_ok=True)  # a new component's folder
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _git(root: Path, *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd or root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DeclarationError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _require_clean_tree(root: Path, allowed: Callable[[Path], bool]) -> None:
    """Only the notebook, its plan and its trial pages may have changed. Jupyter's
    checkpoint folders are never committed, so they never stop a commit either."""
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    dirty = [
        line[3:] for line in _git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
        if not allowed((top / line[3:].strip('"')).resolve()) and CHECKPOINTS not in Path(line[3:].strip('"')).parts
    ]
    if dirty:
        raise DeclarationError(
            "the git tree has changes unrelated to this notebook; commit or stash them first: " + ", ".join(dirty[:10])
        )


def _require_not_ignored(root: Path, paths: list[Path]) -> None:
    """`git add` refuses an ignored file; found now, before anything is written or switched."""
    ignored = [str(p) for p in paths
               if subprocess.run(["git", "check-ignore", "-q", "--no-index", str(p)], cwd=root).returncode == 0]
    if ignored:
        raise DeclarationError(f"--git: git ignores {', '.join(ignored)}; pass --plan-dir to a folder git keeps, "
                               "or change .gitignore")


def _commit_branch(root: Path, name: str, notebook: Path, paths: list[Path], decl: Any,
                   plan_path: Path, update: bool = False) -> tuple[str, str, bool]:
    """Commit the notebook (without its outputs) and `paths` on a new branch and stay on it:
    switching back would take the notebook and its declaration out of the working tree (they
    are only on the new branch), while the user is most likely to push or keep editing.
    Returns the branch, where the user was and how to go back there, and whether the
    committed notebook is a copy with its outputs stripped."""
    from nb_assets.cli.schedule_workflow import is_trial_page

    # An update's branch is new too: the first schedule's branch may still be there, under review or merged.
    branch = f"{'reschedule' if update else 'schedule'}/{name}"
    if _git(root, "branch", "--list", branch).strip():
        raise DeclarationError(f"branch {branch} already exists")
    current, head = _git(root, "branch", "--show-current").strip(), _git(root, "rev-parse", "--short", "HEAD").strip()
    was = f"{current}; `git switch {current}` goes back" if current else f"a detached HEAD; `git switch --detach {head}` goes back"
    # An earlier version's trial page of this plan may be staged or tracked: the commit removes it.
    _git(root, "rm", "-q", "--cached", "--ignore-unmatch", "--", f"{plan_path.stem}.trial.html", f"{plan_path.stem}.trial-*.html",
         cwd=plan_path.parent)
    stripped = _stage_without_outputs(root, notebook)
    _git(root, "add", "--", *map(str, paths))
    staged = [p for p in _git(root, "diff", "--cached", "--name-only", "--diff-filter=d", "-z").split("\0") if p]
    pages = [p for p in staged if is_trial_page(Path(p))]
    if pages:  # a trial page shows warehouse rows: it never goes into git, whatever else is staged
        _git(root, "reset", "-q", "--", *pages)
        raise DeclarationError(f"--git: refusing to commit {', '.join(pages)}: a trial's executed notebook shows warehouse "
                               "data; nothing committed (the declaration is written; commit it yourself without that file)")
    _git(root, "switch", "-c", branch)
    message = (f"{'Reschedule' if update else 'Schedule'} notebook {name} ({decl.trigger()})\n\nOwners: {', '.join(decl.owners)}. "
               "Checked, previewed and tried against a scratch copy of the warehouse; see the test plan. The "
               "trial's executed notebook stays on the machine that ran it: it shows warehouse data.")
    _git(root, "commit", "-q", "-m", message)
    return branch, was, stripped


def _stage_without_outputs(root: Path, notebook: Path) -> bool:
    """Stage the notebook as committed_notebook.without_outputs makes it, leaving the file as it
    is: the copy goes into git's object store (through the path's filters, as `git add` would)
    and the index points at it. True when that copy differs from the file."""
    from nb_assets.cli.committed_notebook import without_outputs

    text = without_outputs(notebook)
    if text is None:
        _git(root, "add", "--", str(notebook))
        return False
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()
    path = notebook.resolve().relative_to(top).as_posix()
    proc = subprocess.run(["git", "hash-object", "-w", "--stdin", f"--path={path}"], cwd=top, input=text.encode("utf-8"),
                          capture_output=True)
    if proc.returncode != 0:
        raise DeclarationError(f"git hash-object failed: {proc.stderr.decode(errors='replace').strip()}")
    mode = "100755" if os.access(notebook, os.X_OK) else "100644"
    _git(top, "update-index", "--add", "--cacheinfo", f"{mode},{proc.stdout.decode().strip()},{path}")
    return True
