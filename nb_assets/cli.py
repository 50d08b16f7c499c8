"""`nb-assets`: check notebooks, run one ad hoc, ask where data flows, build the sandbox.

Exit codes: 0 fine, 1 findings or a failed run, 2 usage error or unreadable path.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from nb_assets.cli_lineage import add_lineage_command
from nb_assets.cli_sandbox import add_sandbox_command
from nb_assets.errors import NbAssetsError, NotebookParseError
from nb_assets.sandbox import SandboxKind
from nb_assets.spec import NotebookSpec

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except NbAssetsError as exc:
        print(f"nb-assets: {exc}", file=sys.stderr)
        return EXIT_USAGE if args.command != "run" else EXIT_FAILED


def entry() -> None:
    """The `nb-assets` command: main(), then leave without interpreter teardown.

    By then the verdict is printed and every file is written and closed. What
    teardown could add is noise: the native thread pools of Arrow and DuckDB
    can abort the process at exit ("terminate called without an active
    exception"), which would turn a successful run's exit code 0 into 134.
    """
    code = main()
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nb-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="parse notebooks and report their inputs, outputs and findings")
    check.add_argument("paths", nargs="+", type=Path, help="notebook files or folders")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)

    run = sub.add_parser("run", help="run one notebook: prefetch, sandbox, load (outside Dagster)")
    run.add_argument("notebook", type=Path)
    run.add_argument("--param", "-p", action="append", default=[], metavar="K=V")
    run.add_argument("--warehouse", default="warehouse.duckdb", help="DuckDB file (default: %(default)s)")
    run.add_argument("--sandbox", choices=get_args(SandboxKind), default="auto")
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    run.add_argument("--records", type=Path, default=Path(".nb_assets/runs"), help="where run records go")
    run.add_argument("--definitions", type=Path, default=None, metavar="FILE",
                     help="apply the policy gate of the notebook's declaration in this definitions file")
    run.add_argument("--html", action="store_true", help="also render the executed notebook as HTML")
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=cmd_run)

    add_lineage_command(sub)
    add_sandbox_command(sub)
    return parser


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
        "inputs": [{"name": i.name, "tables": list(i.tables)} for i in spec.inputs],
        "outputs": list(spec.output_tables),
        "findings": [
            {"rule": f.rule, "severity": f.severity, "cell": f.cell, "line": f.line, "message": f.message}
            for f in spec.findings
        ],
    }


def cmd_check(args: argparse.Namespace) -> int:
    from nb_assets.notebook_parser import parse_notebook

    try:
        paths = notebook_paths(args.paths)
    except FileNotFoundError as exc:
        print(f"nb-assets check: no such file or folder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reports: list[dict[str, Any]] = []
    for path in paths:
        try:
            reports.append(spec_to_json(parse_notebook(path)))
        except NotebookParseError as exc:
            reports.append({
                "path": str(path), "parameters": [], "inputs": [], "outputs": [],
                "findings": [{"rule": "invalid-notebook", "severity": "error", "cell": None, "line": None, "message": str(exc)}],
            })
    failed = any(f["severity"] == "error" for r in reports for f in r["findings"])
    if args.json:
        print(json.dumps({"notebooks": reports}, indent=2, default=str))
    else:
        _print_check(reports)
    return EXIT_FAILED if failed else EXIT_OK


def _print_check(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        reads = sorted({t for i in report["inputs"] for t in i["tables"]})
        print(f"{report['path']}")
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in report["parameters"])
        print(f"  params: {params or '-'}")
        print(f"  reads:  {', '.join(reads) or '-'}")
        print(f"  writes: {', '.join(report['outputs']) or '- (report)'}")
        for f in report["findings"]:
            where = f"cell {f['cell']}" + (f", line {f['line']}" if f["line"] else "") if f["cell"] else "notebook"
            print(f"  {f['severity']}: {where}: [{f['rule']}] {f['message']}")


def cmd_run(args: argparse.Namespace) -> int:
    if not args.notebook.is_file():
        print(f"nb-assets run: no such notebook: {args.notebook}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run_one(args)
    except NbAssetsError as exc:  # refused before the notebook ran: still one verdict on stdout
        if args.json:
            error = {"cell": exc.cell, "type": exc.kind, "message": str(exc)}
            print(json.dumps({"status": "failed", "error": error, "outputs": [], "executed_notebook": None}, indent=2))
        print(f"nb-assets run: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run_one(args: argparse.Namespace) -> int:
    from nb_assets.choose_sandbox import choose_sandbox
    from nb_assets.host_pipeline import discard_data, run_pipeline
    from nb_assets.parameters import coerce_cli_value
    from nb_assets.notebook_parser import parse_notebook
    from nb_assets.record import keep_record, run_summary
    from nb_assets.sandbox import SandboxLimits
    from nb_assets.warehouse import DuckDBWarehouse

    spec = parse_notebook(args.notebook)
    params: dict[str, Any] = {}
    for item in args.param:
        name, sep, raw = item.partition("=")
        if not sep:
            print(f"nb-assets run: --param takes K=V, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        params[name] = coerce_cli_value(spec, name, raw)
    limits = SandboxLimits() if args.timeout is None else SandboxLimits(timeout_s=args.timeout)
    sandbox = choose_sandbox(args.sandbox)
    fallback = getattr(sandbox, "fallback_reason", None)
    if fallback:
        print(f"nb-assets run: using the local sandbox (network and process isolation only): {fallback}", file=sys.stderr)
    run_dir = args.records / spec.name / time.strftime("%Y%m%dT%H%M%S") / f"{time.time_ns() % 10**9:09d}"
    gate = declared_gate(args.definitions, spec.path) if args.definitions else None
    run = run_pipeline(
        spec, warehouse=DuckDBWarehouse(args.warehouse), sandbox=sandbox, run_dir=run_dir, params=params, limits=limits,
        gate=gate,
    )
    try:
        keep_record(run, html=args.html)
    finally:
        discard_data(run.folder)
    summary = run_summary(run)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    elif run.status == "success":
        loaded = ", ".join(f"{o['table']} ({o['rows']} rows)" for o in summary["outputs"]) or "nothing (report)"
        print(f"{spec.path}: success in {run.duration_s:.2f} s via {sandbox.kind} sandbox; loaded {loaded}")
        print(f"executed notebook: {run.executed_notebook}")
    else:
        print(f"{run.error}\nexecuted notebook: {run.executed_notebook}", file=sys.stderr)
    return EXIT_OK if run.status == "success" else EXIT_FAILED


def declared_gate(definitions: Path, notebook: str) -> Any:
    """The same policy gate Dagster applies, for the declaration of `notebook`."""
    from nb_assets.build_assets import declare_notebooks, policy_gate
    from nb_assets.definitions_file import load_declarations
    from nb_assets.errors import DeclarationError

    notebooks, policy, base_dir = load_declarations(definitions)
    declared = declare_notebooks(notebooks, base_dir)
    item = next((d for d in declared if Path(d.spec.path).resolve() == Path(notebook).resolve()), None)
    if item is None:
        raise DeclarationError(f"{notebook} is not declared in {definitions}")
    if policy is None:
        return None
    return policy_gate(policy, [d.flow() for d in declared], item)


if __name__ == "__main__":
    entry()
