"""`nb-assets adopt NOTEBOOK`: propose the edits that make a notebook schedulable, as a diff; `--write` applies them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nb_assets.errors import NotebookParseError


def add_adopt_command(sub: Any) -> None:
    adopt = sub.add_parser(
        "adopt", help="propose the edits that make a notebook schedulable (jupysql forms, files read by path, runtime, parameters)",
    )
    adopt.add_argument("notebook", type=Path)
    adopt.add_argument("--write", action="store_true", help="apply the edits to the notebook (default: only show the diff)")
    adopt.set_defaults(func=cmd_adopt)


def cmd_adopt(args: argparse.Namespace) -> int:
    from nb_assets.adopt.notebook_edit import plan_adoption

    try:
        adoption = plan_adoption(args.notebook)
    except NotebookParseError as exc:
        print(f"nb-assets adopt: {exc}", file=sys.stderr)
        return 2
    if not adoption.changed and not adoption.declarations:
        print(f"{args.notebook}: nothing to change; run `nb-assets check {args.notebook}`")
        return 0
    sys.stdout.write(adoption.diff())
    print()
    for note in adoption.notes:
        print(f"  - {note}")
    if args.write:
        adoption.write()
        print(f"wrote {args.notebook}; now run `nb-assets check {args.notebook}`"
              + ("; declare the sources above in the project" if adoption.declarations else ""))
    else:
        print(f"nothing written; `nb-assets adopt {args.notebook} --write` applies the notebook edits")
    return 0
