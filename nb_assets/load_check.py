"""Does the project load as Dagster loads it, with a declarations file that is not written yet?

`nb-assets schedule` asks (`project_loads`) before it writes a declaration: a
declaration Dagster refuses would take every asset and sensor of the project
down. The answer comes from a child process that imports the definitions file
and resolves its Definitions, which imports Dagster, so the CLI never does:

    python -m nb_assets.load_check DEFINITIONS --declarations FILE --candidate TEXT_FILE --result JSON_FILE

While it loads, `load_declarations_yaml(FILE)` reads the candidate text
instead of FILE. The verdict ({"ok": true} or {"ok": false, "error": "..."})
goes to the result file, the error as the load raised it, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from nb_assets.errors import DeclarationError, NbAssetsError

LOAD_TIMEOUT_S = 600  # a generous bound on parsing every notebook and reading the warehouse's catalog


def project_loads(definitions: Path, declarations: Path, text: str, work_dir: Path) -> str | None:
    """None when the project at `definitions` loads with `text` as its `declarations` file,
    else the error the load gives."""
    work_dir.mkdir(parents=True, exist_ok=True)
    candidate, result = work_dir / "candidate_declarations.yaml", work_dir / "load_check.json"
    candidate.write_text(text, encoding="utf-8")
    result.unlink(missing_ok=True)
    command = [sys.executable, "-m", "nb_assets.load_check", str(definitions.resolve()),
               "--declarations", str(declarations.resolve()), "--candidate", str(candidate), "--result", str(result)]
    try:
        proc = subprocess.run(command, cwd=definitions.resolve().parent, capture_output=True, text=True, timeout=LOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"loading {definitions} did not finish within {LOAD_TIMEOUT_S} s"
    if not result.exists():
        said = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return f"loading {definitions} stopped (exit code {proc.returncode}) before giving a verdict: {said or 'no output'}"
    verdict = json.loads(result.read_text(encoding="utf-8"))
    return None if verdict["ok"] else str(verdict["error"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nb_assets.load_check", description=__doc__)
    parser.add_argument("definitions", type=Path)
    parser.add_argument("--declarations", type=Path, required=True, help="the declarations file the definitions load")
    parser.add_argument("--candidate", type=Path, required=True, help="what that file would hold")
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    from nb_assets.declarations_yaml import candidate

    try:
        with candidate(args.declarations, args.candidate.read_text(encoding="utf-8")):
            _load(args.definitions)
        verdict: dict[str, object] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - whatever the load raised is the answer
        verdict = {"ok": False, "error": _said(exc, args.definitions)}
    args.result.write_text(json.dumps(verdict), encoding="utf-8")
    return 0


def _load(path: Path) -> None:
    """Import the file as Dagster does (its folder first on sys.path) and resolve its Definitions."""
    import dagster as dg

    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise DeclarationError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    found = [value for value in vars(module).values() if isinstance(value, dg.Definitions)]
    for defs in found or [dg.load_definitions_from_module(module)]:
        dg.Definitions.validate_loadable(defs)


def _said(exc: BaseException, definitions: Path) -> str:
    """Our errors as they are (they name the notebook, the file and line); any other error
    with its type and the line of the definitions file it came from."""
    if isinstance(exc, NbAssetsError):
        return str(exc)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == definitions.resolve()]
    where = f" ({definitions}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


if __name__ == "__main__":
    sys.exit(main())
