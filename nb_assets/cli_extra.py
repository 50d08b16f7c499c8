"""`nb-assets lineage` and `nb-assets sandbox build`."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, get_args

from nb_assets.errors import DeclarationError
from nb_assets.image import BuildMethod


def add_extra_commands(sub: Any) -> None:
    lineage = sub.add_parser("lineage", help="which notebooks read a table and what they write, recursively")
    lineage.add_argument("table", help="schema.table")
    direction = lineage.add_mutually_exclusive_group()
    direction.add_argument("--downstream", dest="direction", action="store_const", const="downstream")
    direction.add_argument("--upstream", dest="direction", action="store_const", const="upstream")
    lineage.add_argument("--definitions", type=Path, default=Path("definitions.py"),
                         help="the file declaring NOTEBOOKS (and POLICY) (default: %(default)s)")
    lineage.add_argument("--json", action="store_true")
    lineage.set_defaults(func=cmd_lineage, direction="downstream")

    sandbox = sub.add_parser("sandbox", help="the Docker sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = sandbox_sub.add_parser("build", help="build the sandbox image (offline when no registry answers)")
    build.add_argument("--method", choices=get_args(BuildMethod), default="auto")
    build.add_argument("--force", action="store_true", help="rebuild even if the tagged image exists")
    build.set_defaults(func=cmd_sandbox_build)


def load_declarations(path: Path) -> tuple[list[Any], Path | None, Path]:
    """Import the definitions file and read its NOTEBOOKS, POLICY and BASE_DIR."""
    if not path.exists():
        raise DeclarationError(f"definitions file not found: {path} (pass --definitions)")
    module_spec = importlib.util.spec_from_file_location("nb_assets_user_definitions", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    notebooks = getattr(module, "NOTEBOOKS", None)
    if notebooks is None:
        raise DeclarationError(f"{path} has no NOTEBOOKS list of NotebookAsset declarations")
    policy = getattr(module, "POLICY", None)
    base_dir = Path(getattr(module, "BASE_DIR", path.resolve().parent))
    return list(notebooks), Path(policy) if policy else None, base_dir


def cmd_lineage(args: argparse.Namespace) -> int:
    from nb_assets.build_assets import declare_notebooks
    from nb_assets.lineage import LineageNotebook, format_report, lineage_report
    from nb_assets.policy import load_policy, propagate

    try:
        notebooks, policy, base_dir = load_declarations(args.definitions)
    except DeclarationError as exc:
        print(f"nb-assets lineage: {exc}", file=sys.stderr)
        return 2
    declared = declare_notebooks(notebooks, base_dir)
    # Violations are reported, not raised: lineage is how one investigates them.
    report = propagate(load_policy(policy), [d.flow() for d in declared]) if policy else None
    labels = dict(report.labels) if report else {}
    graph = [LineageNotebook(d.spec, d.decl.purpose) for d in declared]
    result = lineage_report(args.table, graph, labels, args.direction)
    result["violations"] = [v.message() for v in report.violations] if report else []
    if not result["known"]:
        print(f"nb-assets lineage: no declared notebook reads or writes {args.table}", file=sys.stderr)
        return 1
    text = format_report(result) + "".join(f"\npolicy violation: {v}" for v in result["violations"])
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def cmd_sandbox_build(args: argparse.Namespace) -> int:
    from nb_assets.image import build_image

    tag = build_image(method=args.method, force=args.force)
    print(tag)
    return 0
