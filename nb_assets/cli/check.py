"""`nb-assets check`: parse notebooks and report their inputs, outputs and findings.

With NB_ASSETS_WAREHOUSE naming a warehouse that opens, a table it lacks is a
warning with the closest name it has (`did you mean raw.web_events?`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nb_assets.spec import NotebookSpec

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def notebook_paths(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts)
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(path)
    return found


def spec_to_json(spec: NotebookSpec) -> dict[str, Any]:
    return {
        "path": spec.path,
        "parameters": [{"name": p.name, "type": p.type, "default": p.default} for p in spec.parameters],
        "inputs": [{"name": i.name, "tables": list(i.tables), "cell": i.cell} for i in spec.inputs],
        "outputs": list(spec.output_tables),
        "findings": [
            {"rule": f.rule, "severity": f.severity, "cell": f.cell, "line": f.line, "message": f.message}
            for f in spec.findings
        ],
    }


def cmd_check(args: argparse.Namespace) -> int:
    from nb_assets.analysis.parse_many import parse_notebooks

    if args.jobs is not None and args.jobs < 1:
        print(f"nb-assets check: --jobs must be 1 or more, got {args.jobs}", file=sys.stderr)
        return EXIT_USAGE
    try:
        paths = notebook_paths(args.paths)
    except FileNotFoundError as exc:
        print(f"nb-assets check: no such file or folder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reports: list[dict[str, Any]] = []
    from nb_assets.locations import dialect_of

    dialect = args.dialect or dialect_of(os.environ.get("NB_ASSETS_WAREHOUSE"))
    for path, parsed in zip(paths, parse_notebooks(paths, args.jobs, dialect)):
        if isinstance(parsed, NotebookSpec):
            reports.append(spec_to_json(parsed))
        else:
            exc = parsed
            reports.append({
                "path": str(path), "parameters": [], "inputs": [], "outputs": [],
                "findings": [{"rule": "invalid-notebook", "severity": "error", "cell": None, "line": None, "message": str(exc)}],
            })
    _warn_of_missing_tables(reports, os.environ.get("NB_ASSETS_WAREHOUSE"))
    failed = any(f["severity"] == "error" for r in reports for f in r["findings"])
    if args.json:
        print(json.dumps({"notebooks": reports}, indent=2, default=str))
    else:
        _print_check(reports)
    return EXIT_FAILED if failed else EXIT_OK


def _warn_of_missing_tables(reports: list[dict[str, Any]], warehouse: str | None) -> None:
    """With NB_ASSETS_WAREHOUSE naming a warehouse that opens: a warning per table it lacks, with the
    closest name it has. Not an error: another notebook's output may just not have run yet."""
    if not warehouse or not any(r["inputs"] for r in reports):
        return
    from nb_assets.locations import redact
    from nb_assets.sql.table_names import missing, no_such_table
    from nb_assets.warehouse.backends import open_catalog

    catalog = open_catalog(warehouse)
    if isinstance(catalog, str):
        return  # nothing to compare with; the run says what is missing
    for report in reports:
        for sql_input in report["inputs"]:
            for table in missing(sql_input["tables"], catalog.relations):
                report["findings"].append({
                    "rule": "no-such-table", "severity": "warning", "cell": sql_input["cell"], "line": None,
                    "message": f"SQL input {sql_input['name']!r}: {no_such_table(table, catalog.relations)} "
                               f"in NB_ASSETS_WAREHOUSE ({redact(warehouse)})",
                })


def _print_check(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        reads = sorted({t for i in report["inputs"] for t in i["tables"]})
        print(f"{report['path']}")
        unreadable = [f for f in report["findings"] if f["rule"] == "invalid-notebook"]
        if unreadable:  # nothing was parsed: it has no params, reads or writes to show
            print(f"  error: could not be read [invalid-notebook]: {unreadable[0]['message']}")
            continue
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in report["parameters"])
        print(f"  params: {params or '-'}")
        print(f"  reads:  {', '.join(reads) or '-'}")
        report_only = not any(f["severity"] == "error" for f in report["findings"])  # else an output may be unreadable
        print(f"  writes: {', '.join(report['outputs']) or ('- (report)' if report_only else '-')}")
        for f in report["findings"]:
            where = f"cell {f['cell']}" + (f", line {f['line']}" if f["line"] else "") if f["cell"] else "notebook"
            print(f"  {f['severity']}: {where}: [{f['rule']}] {f['message']}")
