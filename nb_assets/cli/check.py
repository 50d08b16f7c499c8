"""`nb-assets check`: parse notebooks and report their inputs, outputs and findings.

Inside a project (a definitions.py at or above the notebooks) it resolves what
the project can see: the declared sources each notebook reads (an undeclared one
is an error naming the registry), and the views and table macros of the
project's warehouse (or NB_ASSETS_WAREHOUSE) when it opens, so `reads:` shows the
tables behind `shared.ppl()` as lineage and the run gate do. A table the
warehouse lacks is a warning with the closest name it has (`did you mean raw.web_events?`).
Each output's checks are listed (`checks:`), the declaration's added to the notebook's
as the load adds them, so the author sees what will gate the publish before it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from nb_assets.inbox.checks import OutputCheck
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
        "checks": {table: [check_to_json(c) for c in checks] for table, checks in spec.output_checks.items()},
        "findings": [
            {"rule": f.rule, "severity": f.severity, "cell": f.cell, "line": f.line, "message": f.message}
            for f in spec.findings
        ],
    }


def check_to_json(check: OutputCheck) -> dict[str, Any]:
    """One output check as `check --json` lists it: what it is, on which columns, and whether it blocks."""
    return {"name": check.name, "kind": check.kind, "columns": list(check.columns), "severity": check.severity,
            "blocking": check.blocking, "check": _call(check)}


def _call(check: OutputCheck) -> str:
    """As the author writes it, `unique(order_id)`, without describe()'s severity mark: it is shown beside."""
    return replace(check, severity="error").describe()


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

    project = _project_of(paths)
    warehouse = os.environ.get("NB_ASSETS_WAREHOUSE") or (project.warehouse if project else None)
    dialect = args.dialect or dialect_of(warehouse)
    catalog = _catalog(warehouse, paths)
    for path, parsed in zip(paths, parse_notebooks(paths, args.jobs, dialect)):
        if isinstance(parsed, NotebookSpec):
            reports.append(_resolved(parsed, catalog, project, dialect))
        else:
            exc = parsed
            reports.append({
                "path": str(path), "parameters": [], "inputs": [], "outputs": [], "checks": {},
                "findings": [{"rule": "invalid-notebook", "severity": "error", "cell": None, "line": None, "message": str(exc)}],
            })
    # Say where the location came from: a person who never set the variable must not be told they did.
    origin = "NB_ASSETS_WAREHOUSE" if os.environ.get("NB_ASSETS_WAREHOUSE") else "the warehouse definitions.py names"
    _warn_of_missing_tables(reports, warehouse, catalog, origin)
    failed = any(f["severity"] == "error" for r in reports for f in r["findings"])
    if args.json:
        print(json.dumps({"notebooks": reports}, indent=2, default=str))
    else:
        _print_check(reports)
    return EXIT_FAILED if failed else EXIT_OK


def _project_of(paths: Sequence[Path]) -> Any:
    """The project the notebooks belong to: the nearest definitions.py at or above the first of
    them (or the working folder), read without building; None outside a project or if it fails."""
    from nb_assets.errors import NbAssetsError
    from nb_assets.project.definitions_file import load_declarations

    start = (paths[0].resolve().parent if paths and paths[0].is_file() else (paths[0] if paths else Path.cwd())).resolve()
    found = next((d / "definitions.py" for d in (start, *start.parents) if (d / "definitions.py").is_file()), None)
    if found is None:
        return None
    try:
        return load_declarations(found)
    except (NbAssetsError, Exception):  # noqa: BLE001 - a broken project still lets each notebook be checked
        return None


def _catalog(warehouse: str | None, paths: Sequence[Path]) -> Any:
    """The warehouse's catalog (views, table macros, relations), or None when it cannot be opened now."""
    if not warehouse or not paths:
        return None
    from nb_assets.warehouse.backends import open_catalog

    catalog = open_catalog(warehouse)
    return None if isinstance(catalog, str) else catalog


def _resolved(spec: NotebookSpec, catalog: Any, project: Any, dialect: str = "duckdb") -> dict[str, Any]:
    """The report, with what the project can see resolved: the warehouse's views and table
    macros seen through (as lineage and the run gate see them), the declared sources, and
    the checks the notebook's declaration adds to its outputs."""
    if catalog is not None and spec.inputs:
        from nb_assets.sql.see_through import see_through

        spec = see_through(spec, catalog)
    if project is not None:  # a literal file read a declared source holds: read that source instead
        from nb_assets.project.sources import with_source_hints

        spec = with_source_hints(spec, project.sources, project.base_dir)
    spec, check_problems = _with_declared_checks(spec, project, dialect)
    report = spec_to_json(spec)
    report["findings"].extend({"rule": "declared-checks", "severity": "error", "cell": None, "line": None, "message": p}
                              for p in check_problems)
    report["reads"] = list(spec.input_tables)
    if project is not None:
        from nb_assets.project.sources import notebook_source_problems

        for problem in notebook_source_problems(spec, project.sources, spec.path):
            report["findings"].append({"rule": "unknown-source", "severity": "error", "cell": None, "line": None, "message": problem})
        declared = {s.name: s for s in project.sources}
        report["sources"] = {n: declared[n].location for n in spec.sources if n in declared}
    return report


def _with_declared_checks(spec: NotebookSpec, project: Any, dialect: str) -> tuple[NotebookSpec, list[str]]:
    """`spec` with its declaration's checks, as the load merges them. Only for a declaration that
    loads the outputs under the names the notebook writes: with instances= or outputs= the checks
    follow each instance's table, which a single notebook's report has no place for."""
    if project is None:
        return spec, []
    from nb_assets.project.declaration import at
    from nb_assets.project.declaration_output_checks import with_declared_checks

    here = Path(spec.path).resolve()
    decl = next((d for d in project.notebooks if d.notebook_file(project.base_dir).resolve() == here), None)
    if decl is None or not decl.checks or decl.instances or decl.outputs:
        return spec, []
    merged, problems = with_declared_checks(spec, decl.checks, spec.path, dialect)
    return merged, [at(decl, p) for p in problems]


def _warn_of_missing_tables(reports: list[dict[str, Any]], warehouse: str | None, catalog: Any = None,
                            origin: str = "NB_ASSETS_WAREHOUSE") -> None:
    """With a warehouse that opens (NB_ASSETS_WAREHOUSE, or the project's): a warning per table it lacks,
    with the closest name it has. Not an error: another notebook's output may just not have run yet."""
    if not warehouse or catalog is None or not any(r["inputs"] for r in reports):
        return
    from nb_assets.locations import redact
    from nb_assets.sql.table_names import missing, no_such_table
    for report in reports:
        for sql_input in report["inputs"]:
            for table in missing(sql_input["tables"], catalog.relations):
                report["findings"].append({
                    "rule": "no-such-table", "severity": "warning", "cell": sql_input["cell"], "line": None,
                    "message": f"SQL input {sql_input['name']!r}: {no_such_table(table, catalog.relations)} "
                               f"in {origin} ({redact(warehouse)})",
                })


def _print_check(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        reads = report.get("reads") or sorted({t for i in report["inputs"] for t in i["tables"]})
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
        for table, checks in report.get("checks", {}).items():
            print(f"  checks: {table}: " + "; ".join(f"{c['check']} [{c['severity']}]" for c in checks))
        for f in report["findings"]:
            where = f"cell {f['cell']}" + (f", line {f['line']}" if f["line"] else "") if f["cell"] else "notebook"
            print(f"  {f['severity']}: {where}: [{f['rule']}] {f['message']}")
