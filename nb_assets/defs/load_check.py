"""The load check's child: load the project as Dagster does, with a declarations file not written yet.

`nb-assets schedule` asks load_check.project_loads, which runs this in a
separate process, so the CLI never imports Dagster:

    python -m nb_assets.defs.load_check DEFINITIONS --declarations FILE --candidate TEXT_FILE --result JSON_FILE

While it loads, `load_declarations_yaml(FILE)` reads the candidate text
instead of FILE. The verdict ({"ok": true} or {"ok": false, "error": "..."})
goes to the result file, the error as the load raised it, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from nb_assets.errors import DeclarationError, NbAssetsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nb_assets.defs.load_check", description=__doc__)
    parser.add_argument("definitions", type=Path)
    parser.add_argument("--declarations", type=Path, required=True, help="the declarations file the definitions load")
    parser.add_argument("--candidate", type=Path, required=True, help="what that file would hold")
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    from nb_assets.project.declarations_yaml import candidate

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
