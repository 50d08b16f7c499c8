"""`nb-assets lineage`: where a table's data flows, with zones at each hop, and the table's
columns as the warehouse has them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nb_assets.project.definitions_file import load_declarations
from nb_assets.errors import DeclarationError
from nb_assets.locations import redact


def add_lineage_command(sub: Any) -> None:
    lineage = sub.add_parser("lineage", help="a table's columns, who writes and reads it, and what they write, recursively")
    lineage.add_argument("table", help="schema.table")
    direction = lineage.add_mutually_exclusive_group()
    direction.add_argument("--downstream", dest="direction", action="store_const", const="downstream")
    direction.add_argument("--upstream", dest="direction", action="store_const", const="upstream")
    lineage.add_argument("--definitions", type=Path, default=Path("definitions.py"),
                         help="the file declaring NOTEBOOKS (and POLICY, WAREHOUSE) (default: %(default)s)")
    lineage.add_argument("--warehouse", default=None,
                         help="DuckDB file or postgresql:// URL whose views and macros are seen through (default: WAREHOUSE in the definitions)")
    lineage.add_argument("--json", action="store_true")
    lineage.set_defaults(func=cmd_lineage, direction="downstream")


def cmd_lineage(args: argparse.Namespace) -> int:
    from nb_assets.project.declare import declare_notebooks
    from nb_assets.project.lineage import LineageNotebook, format_report, lineage_report, similar_tables
    from nb_assets.policy.zones import propagate
    from nb_assets.policy.loader import load_policy
    from nb_assets.project.sources import with_source_zones

    try:
        project = load_declarations(args.definitions)
    except DeclarationError as exc:
        print(f"nb-assets lineage: {exc}", file=sys.stderr)
        return 2
    warehouse = args.warehouse or project.warehouse
    if warehouse is None:
        print("nb-assets lineage: no warehouse (--warehouse, or the definitions' warehouse=): "
              "views and table macros are not seen through", file=sys.stderr)
    declared = declare_notebooks(project.notebooks, project.base_dir, warehouse, sources=project.sources)
    # Violations are reported, not raised: lineage is how one investigates them,
    # and loading the declarations above built nothing, so nothing refused yet.
    # A declared source ("source.<name>") is labelled by its zones, as the load and the gate do.
    policy = with_source_zones(load_policy(project.policy), project.sources) if project.policy else None
    report = propagate(policy, [d.flow() for d in declared]) if policy else None
    labels = dict(report.labels) if report else {}
    graph = [LineageNotebook(d.spec, d.decl.purpose) for d in declared]
    result = lineage_report(args.table, graph, labels, args.direction)
    result["violations"] = [v.message() for v in report.violations] if report else []
    result.update(_columns(warehouse, result["table"]))
    if not result["known"] and not result["columns"]:
        close = similar_tables(args.table, graph)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        where = f" and {redact(warehouse)} has no such table" if result["columns"] == [] else ""
        print(f"nb-assets lineage: no declared notebook reads or writes {args.table}{where}{hint}", file=sys.stderr)
        return 1
    text = format_report(result) + "".join(f"\npolicy violation: {v}" for v in result["violations"])
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def _columns(warehouse: str | None, table: str) -> dict[str, Any]:
    """`columns`: [{name, type}] from the warehouse ([] when it has no such table), or None
    with `columns_note` saying why it could not be read."""
    from nb_assets.errors import NbAssetsError
    from nb_assets.warehouse.backends import read_columns

    if warehouse is None:
        return {"columns": None, "columns_note": "no warehouse (--warehouse, or the definitions' warehouse=)"}
    if "." not in table:
        return {"columns": None, "columns_note": "name the table as schema.table"}
    shown = redact(warehouse)
    try:
        columns = read_columns(warehouse, table)
    except NbAssetsError as exc:  # missing, busy or unreachable: the lineage still stands
        return {"columns": None, "columns_note": str(exc), "warehouse": shown}
    if not columns:
        return {"columns": [], "columns_note": f"{table} is not in {shown} (yet)", "warehouse": shown}
    return {"columns": [{"name": name, "type": kind} for name, kind in columns], "warehouse": shown}
