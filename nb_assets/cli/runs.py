"""`nb-assets runs` and `nb-assets show`: a notebook's recent runs, and one run explained.

Both read run records from disk (Dagster's and `nb-assets run`'s alike), so
they work without the Dagster webserver and for runs Dagster never saw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nb_assets.errors import NbAssetsError
from nb_assets.runs.history import RunRecord, find_run, find_runs, project_dir_of, record_roots

RECORDS_HELP = ("a folder of run records; repeatable (default: ./.nb_assets/runs and the Dagster instance's "
                "$DAGSTER_HOME/storage/nb_assets, else ./.dagster_home/storage/nb_assets, of the project)")


def add_runs_commands(sub: Any) -> None:
    runs = sub.add_parser("runs", help="a notebook's recent runs: status, where (cli, dagster dev/deploy), start, duration, parameters, failing cell")
    runs.add_argument("notebook", help="the notebook's file or name")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--records", type=Path, action="append", default=[], metavar="DIR", help=RECORDS_HELP)
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(func=cmd_runs)

    show = sub.add_parser("show", help="one run: failing cell, traceback, input rows, diff against the authored notebook")
    show.add_argument("run_id", help="a run id, or its first characters")
    show.add_argument("--records", type=Path, action="append", default=[], metavar="DIR", help=RECORDS_HELP)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)


def _roots(args: argparse.Namespace, near: Path) -> list[Path]:
    roots = record_roots(project_dir_of(near), args.records, near=[Path.cwd()])
    if not args.records:  # also the project the command runs in, if it is another one
        roots += [r for r in record_roots(project_dir_of(Path.cwd())) if r not in roots]
    return roots


def cmd_runs(args: argparse.Namespace) -> int:
    from nb_assets.spec import notebook_name

    given = Path(args.notebook)
    name = notebook_name(given) if given.suffix == ".ipynb" else args.notebook
    roots = _roots(args, given if given.exists() else Path.cwd())
    runs = find_runs(roots, name) or _instance_runs(roots, name)
    if given.is_file():  # notebooks/ks/ks_empty.ipynb, not every ks_empty (records that do not say which file stay)
        from nb_assets.warehouse.writer import notebook_location

        runs = [r for r in runs if r.notebook_file in (None, notebook_location(given))]
    runs = runs[: args.limit]
    if args.json:
        print(json.dumps({"notebook": name, "roots": [str(r) for r in roots], "runs": [r.as_json() for r in runs]}, indent=2))
        return 0
    if not runs:
        print(f"nb-assets runs: no runs of {name} under {', '.join(map(str, roots))}", file=sys.stderr)
        return 1
    print(_table(runs))
    return 0


def _instance_runs(roots: list[Path], name: str) -> list[RunRecord]:
    """The runs of a notebook declared with instances: each instance keeps its records
    under `<notebook>_<instance>`; only records of that very notebook file count."""
    folders = {p.name for root in roots if root.is_dir() for p in root.glob(f"{name}_*") if p.is_dir()}
    runs = [r for folder in sorted(folders) for r in find_runs(roots, folder) if Path(r.path).stem == name]
    return sorted(runs, key=lambda r: r.started_at, reverse=True)


def _table(runs: list[RunRecord]) -> str:
    rows = [("RUN ID", "NOTEBOOK", "STATUS", "WHERE", "STARTED (UTC)", "DURATION", "PARTITION", "CELL", "PARAMETERS", "RECORD")]
    for r in runs:
        params = ", ".join(f"{k}={v!r}" for k, v in r.parameters.items()) or "-"
        rows.append((
            r.run_id, r.notebook, r.status, r.where, r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{r.duration_s:.1f} s" if r.duration_s is not None else "-", r.partition or "-",
            str(r.failed_cell) if r.failed_cell is not None else "-", params, str(r.record_dir),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def cmd_show(args: argparse.Namespace) -> int:
    from nb_assets.runs.report import format_details, run_details

    roots = _roots(args, Path.cwd())
    try:
        record = find_run(roots, args.run_id)
    except NbAssetsError as exc:
        print(f"nb-assets show: {exc}", file=sys.stderr)
        return 1
    details = run_details(record)
    print(json.dumps(details, indent=2, default=str) if args.json else format_details(details))
    return 0
