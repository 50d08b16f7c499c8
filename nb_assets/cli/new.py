"""`nb-assets new NAME`: a starter notebook that `nb-assets check` passes, from the one template.

The template lives in nb_assets/project/templates/starter.ipynb (project/starter.py
fills it), so a scaffold command of another tool can write the same notebook.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nb_assets.locations import nearest_project


def add_new_command(sub: Any) -> None:
    new = sub.add_parser("new", help="write a starter notebook: runtime, parameters, one %%%%sql input, one output(), %%nb_schedule")
    new.add_argument("name", help="the notebook's name (daily_sales) or path (notebooks/daily_sales.ipynb)")
    new.add_argument("--table", default="raw.orders", help="the table its %%%%sql input reads (default raw.orders)")
    new.add_argument("--output", default=None, help="the table its output() writes (default mart.NAME)")
    new.set_defaults(func=cmd_new)


def notebook_path(name: str, cwd: Path) -> Path:
    """A bare name goes in the project's notebooks/ folder when it has one, else here."""
    given = Path(name)
    if given.suffix == ".ipynb" or len(given.parts) > 1:
        return (cwd / given).with_suffix(".ipynb")
    root = nearest_project(cwd)
    folder = root / "notebooks" if root is not None and (root / "notebooks").is_dir() else cwd
    return folder / f"{name}.ipynb"


def cmd_new(args: argparse.Namespace) -> int:
    from nb_assets.project.starter import write_starter

    path = write_starter(notebook_path(args.name, Path.cwd()), table=args.table, output=args.output)
    print(f"wrote {path}: open it in JupyterLab (nb-assets lab) and run it; its last cell, %nb_schedule, shows the "
          f"Schedule form (or run `nb-assets schedule {path}`)")
    return 0
