"""`nb-assets schedule`: check, preview, try, plan, declare and branch, in that order.

Each step stops the workflow on failure, before anything later happens: a
notebook with an error finding is never tried, a failed trial is never
declared, and nothing is committed on a dirty tree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError
from nb_assets.parameters import cli_assignments, coerce_cli_value

EXIT_OK, EXIT_FAILED = 0, 1


def add_schedule_command(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="check, preview and try a notebook, then declare it as a reviewable change")
    schedule.add_argument("notebook", type=Path)
    schedule.add_argument("--owner", action="append", required=True, metavar="EMAIL_OR_CHANNEL")
    schedule.add_argument("--cron", default=None, help='e.g. "0 6 * * *"')
    schedule.add_argument("--timezone", default=None, help="how to read --cron, e.g. Europe/Amsterdam (default UTC)")
    schedule.add_argument("--on-inputs-landed", action="store_true", help="run when every input has landed")
    schedule.add_argument("--instance", action="append", nargs="+", default=[], metavar=("NAME", "K=V"),
                          help="one instance and its parameters, e.g. --instance emea region=EMEA; repeat per instance")
    schedule.add_argument("--output", action="append", default=[], metavar="TABLE=TEMPLATE",
                          help="where an output loads, e.g. mart.revenue=mart.revenue_{region}")
    schedule.add_argument("--daily-from", default=None, metavar="YYYY-MM-DD", help="daily partitions from this day (key: the ds parameter)")
    schedule.add_argument("--partition-column", default="ds", help="the date column each output's day is in (default ds)")
    schedule.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    schedule.add_argument("--purpose", default=None)
    schedule.add_argument("--group", default=None)
    schedule.add_argument("--definitions", type=Path, default=Path("definitions.py"))
    schedule.add_argument("--declarations", type=Path, default=None,
                          help="the YAML file the definitions load (default: declarations.yaml beside them)")
    schedule.add_argument("--plan-dir", type=Path, default=None, help="where the test plan goes (default: plans/)")
    schedule.add_argument("--write", action="store_true", help="add the declaration to the declarations file")
    schedule.add_argument("--git", action="store_true", help="commit notebook, declaration and plan on a new branch")
    schedule.set_defaults(func=cmd_schedule)


def cmd_schedule(args: argparse.Namespace) -> int:
    from nb_assets.declaration import DailyPartitions, NotebookAsset
    from nb_assets.definitions_file import load_declarations
    from nb_assets.notebook_parser import dialect_of, parse_notebook
    from nb_assets.schedule_workflow import Plan, check, plan_markdown, preview_text, trial_runs

    if args.git:
        args.write = True  # a branch without the declaration would schedule nothing
    if not args.notebook.is_file():
        raise DeclarationError(f"no such notebook: {args.notebook}")
    project = load_declarations(args.definitions)
    root = project.base_dir
    notebook = args.notebook.resolve()
    declarations = (args.declarations or args.definitions.resolve().parent / "declarations.yaml").resolve()
    plan_path = (args.plan_dir or root / "plans").resolve() / f"{parse_notebook(notebook).name}.md"
    if args.git:
        _require_clean_tree(root, allowed={notebook, plan_path})  # a dry run before leaves its plan

    spec = parse_notebook(notebook, dialect_of(project.warehouse))
    fields: dict[str, Any] = dict(path=_relative(notebook, root), owners=tuple(args.owner), params=_params(spec, args.param),
                                  purpose=args.purpose, group=args.group, cron=args.cron, timezone=args.timezone,
                                  on_inputs_landed=args.on_inputs_landed, outputs=cli_assignments(args.output, "--output"))
    if args.instance:
        fields["instances"] = {name: _params(spec, pairs, f"--instance {name}") for name, *pairs in args.instance}
    if args.daily_from:
        _require_past_day(args.daily_from)
        fields["partitions"] = DailyPartitions(start=args.daily_from, column=args.partition_column)
    decl = NotebookAsset(**fields)

    print("1/5 checks: static rules and policy")
    checked = check(project, decl)
    for warning in checked.warnings:
        print(f"    warning: {warning}")
    print("2/5 preview:\n" + "\n".join(f"    {line}" for line in preview_text(checked).splitlines()))
    print("3/5 trial run into a scratch copy of the warehouse")
    scratch = root / ".nb_assets" / "schedule" / spec.name / time.strftime("%Y%m%dT%H%M%S")
    plan = Plan(decl, checked, trial_runs(project, checked, scratch))
    for trial in plan.trials:
        print(f"    {trial.label}: {trial.status} in {trial.duration_s:.2f} s; executed notebook: {trial.executed_notebook}")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(plan_markdown(plan), encoding="utf-8")
    print(f"4/5 test plan: {plan_path}")
    failed = [t for t in plan.trials if t.status != "success"]
    if failed:
        print("nb-assets schedule: the trial run failed, nothing declared:\n"
              + "\n".join(f"  {t.label}: {t.error}" for t in failed), file=sys.stderr)
        return EXIT_FAILED
    if not args.write:
        print("5/5 dry run: add --write to declare it, --git to commit it on a branch for review")
        return EXIT_OK
    from nb_assets.declarations_yaml import append_declaration

    append_declaration(declarations, decl)
    _require_loaded(args.definitions, notebook, declarations)
    print(f"5/5 declared in {declarations}")
    if args.git:
        branch = _commit_branch(root, spec.name, [notebook, declarations, plan_path], decl)
        print(f"    committed on branch {branch}; to open a review: git push -u origin {branch}")
    return EXIT_OK


def _params(spec: Any, items: list[str], flag: str = "--param") -> dict[str, Any]:
    """K=V pairs as the notebook's parameters, each coerced to its declared type; errors name the flag."""
    try:
        return {name: coerce_cli_value(spec, name, raw) for name, raw in cli_assignments(items, flag).items()}
    except DeclarationError as exc:
        raise DeclarationError(f"{flag}: {exc}") from None


def _require_past_day(first: str) -> None:
    """Daily partitions end yesterday (UTC): a first day after that would declare no partition to run or try."""
    from datetime import datetime, timedelta, timezone

    from nb_assets.partitions import partition_day

    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    if partition_day(first, "--daily-from") > yesterday:
        raise DeclarationError(f"--daily-from {first}: daily partitions run up to yesterday ({yesterday}, UTC); "
                               "a first day after that has no partition to try or run yet")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _require_loaded(definitions: Path, notebook: Path, declarations: Path) -> None:
    """The file written must be the one the definitions load, or nothing was scheduled."""
    from nb_assets.definitions_file import load_declarations

    project = load_declarations(definitions)
    if not any(Path(project.base_dir, d.path).resolve() == notebook for d in project.notebooks):
        raise DeclarationError(
            f"{definitions} does not load {declarations}; add "
            f"`*load_declarations_yaml(BASE_DIR / {declarations.name!r})` to its notebook list"
        )


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DeclarationError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _require_clean_tree(root: Path, allowed: set[Path]) -> None:
    top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    dirty = [
        line[3:] for line in _git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
        if (top / line[3:].strip('"')).resolve() not in allowed
    ]
    if dirty:
        raise DeclarationError(
            "the git tree has changes unrelated to this notebook; commit or stash them first: " + ", ".join(dirty[:10])
        )


def _commit_branch(root: Path, name: str, paths: list[Path], decl: Any) -> str:
    branch = f"schedule/{name}"
    if _git(root, "branch", "--list", branch).strip():
        raise DeclarationError(f"branch {branch} already exists")
    _git(root, "switch", "-c", branch)
    _git(root, "add", "--", *map(str, paths))
    message = (f"Schedule notebook {name} ({decl.trigger()})\n\nOwners: {', '.join(decl.owners)}. "
               "Checked, previewed and tried against a scratch copy of the warehouse; see the test plan.")
    _git(root, "commit", "-q", "-m", message)
    return branch
