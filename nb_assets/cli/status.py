"""`nb-assets status`: every declared notebook, its last run, its freshness and what it is waiting for.

Read without Dagster, from what the freshness sensor reads too (runs/status.py):
the project's declarations, the run records (the Dagster instance's and
`nb-assets run`'s) and the warehouse's landing log. So it answers while the
webserver is down, and says what the owners' notices say.

Exit codes: 0 every notebook with a freshness rule is fresh, 1 one is stale,
2 the project cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nb_assets.errors import NbAssetsError

EXIT_OK, EXIT_STALE, EXIT_USAGE = 0, 1, 2
RECORDS_HELP = ("a folder of run records; repeatable (default: ./.nb_assets/runs and the Dagster instance's "
                "$DAGSTER_HOME/storage/nb_assets, else ./.dagster_home/storage/nb_assets, of the project)")


def add_status_command(sub: Any) -> None:
    status = sub.add_parser("status", help="every notebook: its last run, its freshness, and what it is waiting for")
    status.add_argument("--definitions", type=Path, default=Path("definitions.py"),
                        help="the project's definitions file (default: %(default)s)")
    status.add_argument("--warehouse", default=None, help="DuckDB file or postgresql:// URL (default: the project's)")
    status.add_argument("--records", type=Path, action="append", default=[], metavar="DIR", help=RECORDS_HELP)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from nb_assets.locations import dialect_of
    from nb_assets.project.declare import declare_notebooks
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.runs.history import project_dir_of, record_roots
    from nb_assets.runs.status import project_status, watched

    try:
        project = load_declarations(args.definitions)
        warehouse = args.warehouse or project.warehouse
        declared = declare_notebooks(project.notebooks, project.base_dir, dialect=dialect_of(warehouse))
    except (NbAssetsError, OSError, SyntaxError) as exc:
        print(f"nb-assets status: {exc}", file=sys.stderr)
        return EXIT_USAGE
    roots = record_roots(project_dir_of(args.definitions.resolve()), args.records, near=[Path.cwd()])
    status = project_status(watched(declared), roots, str(warehouse) if warehouse else None)
    if args.json:
        print(json.dumps({"notebooks": [n.as_json() for n in status.notebooks],
                          "landings_problem": status.landings_problem}, indent=2))
    else:
        for item in status.notebooks:
            print(item.line())
        if status.landings_problem:
            print(f"nb-assets status: the landing log could not be read ({status.landings_problem}); "
                  "no source table counts as landed", file=sys.stderr)
    return EXIT_STALE if any(n.stale for n in status.notebooks) else EXIT_OK
