"""`nb-assets land`: load a file into a source table and record the landing, or only record it.

Only a source table of the project can land: one that a declared notebook
reads and none writes. A landing of any other table would trigger nothing (a
typo such as `raw.order` would silently create a table nobody reads), and a
table a notebook writes changes when that notebook runs, not when data lands.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

from nb_assets.project.declaration import LoadMode
from nb_assets.errors import DeclarationError, LandingError, NbAssetsError
from nb_assets.inbox.contract import TABLE_NAME
from nb_assets.locations import dialect_of, redact

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def add_land_command(sub: Any) -> None:
    land = sub.add_parser("land", help="load a CSV/Parquet file into a source table and record that it landed")
    land.add_argument("table", help="schema.table: a source table the project's notebooks read")
    land.add_argument("--from", dest="file", type=Path, default=None, metavar="FILE",
                      help="CSV (with a header) or Parquet file to load; without it, only record that the table landed")
    land.add_argument("--mode", choices=get_args(LoadMode), default=None,
                      help="append the file's rows (default) or replace the table's rows with them")
    land.add_argument("--partition", default=None, metavar="DS", help="the partition that landed, recorded in the log")
    land.add_argument("--source", default=None, help="who loaded the data, recorded in the log (default: the file, or 'nb-assets land')")
    land.add_argument("--definitions", type=Path, default=Path("definitions.py"),
                      help="the project whose source tables may land (default: %(default)s)")
    land.add_argument("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: the project's)")
    land.add_argument("--json", action="store_true")
    land.set_defaults(func=cmd_land)


def cmd_land(args: argparse.Namespace) -> int:
    from nb_assets.project.definitions_file import load_declarations

    table = args.table.lower() if "." in args.table else f"main.{args.table.lower()}"
    if not TABLE_NAME.match(table):
        return _usage(f"{args.table!r} is not a table name (schema.table)")
    if args.file is None and args.mode is not None:
        return _usage("--mode needs --from FILE: without a file nothing is loaded, only the landing is recorded")
    if args.mode == "replace" and args.partition is not None:
        return _usage("--mode replace with --partition is not supported: replace would drop every partition's rows")
    try:
        project = load_declarations(args.definitions)
        warehouse = args.warehouse or project.warehouse or "warehouse.duckdb"
        # The notebooks are read as their warehouse runs them: Postgres SQL may not parse as DuckDB's.
        readers = check_source_table(table, project.notebooks, project.base_dir, args.definitions,
                                     dialect_of(project.warehouse or warehouse))
        check_partition(table, args.partition, readers)
        landing, verb = _land(args, table, warehouse)
    except DeclarationError as exc:
        print(f"nb-assets land: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NbAssetsError as exc:
        print(f"nb-assets land: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        shown = redact(warehouse)  # never a password
        print(json.dumps({"landing": asdict(landing), "warehouse": shown}, indent=2))
    else:
        print(f"{table} landed (landing {landing.id}): {verb}")
    return EXIT_OK


def _land(args: argparse.Namespace, table: str, warehouse: str) -> tuple[Any, str]:
    from nb_assets.warehouse.backends import land_file, record_landing

    if args.file is None:
        landing = record_landing(warehouse, table, partition=args.partition, source=args.source or "nb-assets land")
        return landing, "recorded; no data loaded"
    mode = args.mode or "append"
    landing = land_file(warehouse, table, args.file, mode=mode, partition=args.partition, source=args.source).landing
    return landing, f"{landing.rows} rows {'appended' if mode == 'append' else 'replaced the table'} from {args.file}"


def check_source_table(table: str, notebooks: Any, base_dir: Path, definitions: Path, dialect: str) -> list[Any]:
    """Refuse a table that no declared notebook reads, or that a notebook writes; else its readers' declarations.
    The notebooks' `%%sql` is read in `dialect`, their warehouse's (locations.dialect_of)."""
    from nb_assets.project.instances import expand_instances, instance_spec
    from nb_assets.analysis.parser import parse_notebook

    readers: list[Any] = []
    sources: set[str] = set()
    written: dict[str, str] = {}
    for decl in expand_instances(notebooks)[0]:
        spec = instance_spec(parse_notebook(decl.notebook_file(base_dir), dialect), decl)
        for output in spec.output_tables:
            written[output] = spec.name
        sources.update(spec.input_tables)
        if table in spec.input_tables:
            readers.append(decl)
    if table in written:
        raise LandingError(
            f"{table} is written by notebook {written[table]}; only source tables land (it updates when that notebook runs)"
        )
    if not readers:
        known = ", ".join(sorted(sources - set(written))) or "none"
        raise LandingError(
            f"no notebook declared in {definitions} reads {table}, so its landing would trigger nothing; "
            f"source tables: {known}"
        )
    return readers


def check_partition(table: str, partition: str | None, readers: list[Any]) -> None:
    """A table that feeds a partitioned notebook lands by day: the partition must be one of its days.

    When only partitioned notebooks read it, the partition is required (its landing is a
    day's data) and must lie from the earliest reader's start to yesterday, the days
    Dagster's daily partitions have."""
    from nb_assets.project.partitions import check_day, partition_day

    starts = [r.partitions.start for r in readers if r.partitions is not None]
    if not starts:
        return
    only_partitioned = len(starts) == len(readers)
    if partition is None:
        if only_partitioned:
            raise DeclarationError(f"{table} feeds daily-partitioned notebooks only; say which day landed with --partition YYYY-MM-DD")
        return
    if only_partitioned:
        check_day(partition, min(starts), f"{table} --partition")
    else:
        partition_day(partition, f"{table} --partition")


def _usage(message: str) -> int:
    print(f"nb-assets land: {message}", file=sys.stderr)
    return EXIT_USAGE
