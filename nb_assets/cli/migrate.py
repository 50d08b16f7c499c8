"""`nb-assets migrate-to-components [PROJECT]`: a definitions.py project's notebooks as dg components.

Every notebook the definitions declare (in Python or in declarations.yaml)
becomes one `nb_assets.NotebookComponent` defs.yaml in the dg project around
PROJECT (component_files.new_component_file places it). All or nothing: what a
component cannot say yet is refused before anything is written, each with its
file and line, and the new files must pass `dg check defs` (in a copy of the
project) first. It writes only new files: definitions.py and declarations.yaml
stay as they are, for the user to retire once the components load.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError

EXIT_OK = 0
# notebook_definitions(...) arguments a component takes from the environment (component_files.project_settings).
SETTINGS = {"warehouse", "base_dir", "policy", "sandbox"}


def add_migrate_command(sub: Any) -> None:
    migrate = sub.add_parser("migrate-to-components",
                             help="declare a definitions.py project's notebooks as NotebookComponent defs.yaml files")
    migrate.add_argument("project", type=Path, nargs="?", default=Path("."),
                         help="the folder of definitions.py, in a project dg made (default: this folder)")
    migrate.add_argument("--definitions", type=Path, default=None, help="default: PROJECT/definitions.py")
    migrate.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from nb_assets.project.component_files import (
        component_files, component_yaml, find_dg_project, new_component_file, project_settings,
    )
    from nb_assets.project.component_load_check import components_load
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.spec import notebook_name

    definitions = (args.definitions or args.project / "definitions.py").resolve()
    declared = load_declarations(definitions)
    dg = find_dg_project(args.project)
    if dg is None:
        raise DeclarationError(f"{args.project.resolve()} is not in a project dg made (no pyproject.toml with [tool.dg], "
                               "nor dg.toml, there or above): make one (`create-dagster project`, docs/components.md) "
                               "or add its [tool.dg] section, then run this again; nothing written")
    problems = unsupported_arguments(definitions)
    existing = {(dg.root / c.decl.path).resolve(): c.file for c in component_files(dg)}
    files: dict[Path, str] = {}
    for decl in declared.notebooks:
        notebook = decl.notebook_file(declared.base_dir).resolve()
        moved = replace(decl, path=os.path.relpath(notebook, dg.root), declared_at=None)
        if notebook in existing:
            problems.append(f"{existing[notebook]}: declares {moved.path} already")
            continue
        try:
            target = new_component_file(dg, notebook, notebook_name(notebook))
        except DeclarationError as exc:
            problems.append(str(exc))
            continue
        if target in files:
            problems.append(f"{target}: two notebooks would share it ({moved.path}); give one a folder of its own")
            continue
        files[target] = component_yaml(moved, target, dg.root)
    if problems:
        raise DeclarationError(f"{len(problems)} thing(s) a component cannot say yet; nothing written:\n"
                               + "\n".join(f"- {p}" for p in problems))
    if not files:
        print(f"{definitions} declares no notebook: nothing to write")
        return EXIT_OK
    component_files(dg, files)  # each reads back as the notebook it declares
    print(f"checking the project with {len(files)} new component(s): `dg check defs`, in a copy of the project")
    error = components_load(dg, files, dg.root / ".nb_assets" / "migrate" / time.strftime("%Y%m%dT%H%M%S"))
    if error:
        raise DeclarationError(f"Dagster would not load the project with these components; nothing written:\n{error}")
    for target, text in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {os.path.relpath(target)}")
    warehouse, policy, _ = project_settings(dg)
    for name, was, now, variable in (("warehouse", declared.warehouse, warehouse, "NB_ASSETS_WAREHOUSE"),
                                     ("policy", declared.policy, policy, "NB_ASSETS_POLICY")):
        if was is not None and (now is None or Path(str(was)).resolve() != Path(str(now)).resolve()):
            print(f"note: the components read the {name} from {variable}, else {now or 'none'}; {definitions.name} "
                  f"used {was}: set {variable}={was} where the project runs")
    print(f"{definitions} still declares these notebooks: once `dg check defs` passes, stop loading it (and its "
          "declarations.yaml) so that each notebook has one declaration")
    return EXIT_OK


def unsupported_arguments(definitions: Path) -> list[str]:
    """The notebook_definitions(...) arguments of `definitions` no component takes (notifications, sources,
    file drops, a translator, ...), each with its line: read from the file's syntax, since a component has
    no place for them and the captured call keeps only some."""
    tree = ast.parse(definitions.read_text(encoding="utf-8"), filename=str(definitions))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _name(node.func) == "notebook_definitions"]
    return [f"{definitions}:{keyword.lineno}: notebook_definitions({keyword.arg or '**'}=...) has no component "
            "attribute; keep a definitions.py project for it" for call in calls for keyword in call.keywords
            if keyword.arg not in SETTINGS]


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
