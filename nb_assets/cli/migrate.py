"""`nb-assets migrate-to-components [PROJECT]`: a definitions.py project's notebooks as dg components.

Every notebook the definitions declare (in Python or in declarations.yaml)
becomes one `nb_assets.NotebookComponent` defs.yaml in the dg project around
PROJECT (component_files.new_component_file places it), and what
`notebook_definitions(...)` gave them all (warehouse, policy, sandbox,
notifications, sources, file drops) becomes the project's one
`nb_assets.NotebookProjectSettings` defs.yaml (project/settings_yaml.py). All or
nothing: what a component cannot say yet is refused before anything is written,
each with its file and line, and the new files must pass `dg check defs` (in a
copy of the project) first. It writes only new files: definitions.py and
declarations.yaml stay as they are, for the user to retire once the components load.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError

EXIT_OK = 0
# notebook_definitions(...) arguments the NotebookProjectSettings component carries (base_dir: its paths are rebased).
SETTINGS = {"warehouse", "base_dir", "policy", "sandbox", "notifications", "sources", "file_drops"}
# The other arguments, as the components build with them (defs.build.build_project's defaults, which the
# CLI may not import: tests/integration/test_migrate.py holds the two equal). Given so, they are carried.
COMPONENT_DEFAULTS: dict[str, Any] = {"translator": None, "sensor_interval_s": 15, "sensor_status": "RUNNING",
                                      "read_dsn": None}


def add_migrate_command(sub: Any) -> None:
    migrate = sub.add_parser("migrate-to-components",
                             help="declare a definitions.py project's notebooks as NotebookComponent defs.yaml files")
    migrate.add_argument("project", type=Path, nargs="?", default=Path("."),
                         help="the folder of definitions.py, in a project dg made (default: this folder)")
    migrate.add_argument("--definitions", type=Path, default=None, help="default: PROJECT/definitions.py")
    migrate.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from nb_assets.project.component_files import component_files, component_yaml, find_dg_project, new_component_file
    from nb_assets.project.component_load_check import components_load
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.project.settings_yaml import carried_settings
    from nb_assets.spec import notebook_name

    definitions = (args.definitions or args.project / "definitions.py").resolve()
    declared = load_declarations(definitions)
    dg = find_dg_project(args.project)
    if dg is None:
        raise DeclarationError(f"{args.project.resolve()} is not in a project dg made (no pyproject.toml with [tool.dg], "
                               "nor dg.toml, there or above): make one (`create-dagster project`, docs/components.md) "
                               "or add its [tool.dg] section, then run this again; nothing written")
    problems = unsupported_arguments(definitions, declared.options)
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
    try:
        settings = carried_settings(declared, dg.root, os.environ)
    except DeclarationError as exc:
        problems.append(f"{definitions}: notebook_definitions(...): {exc}")
        settings = None
    if settings is not None and files:
        problems += _settings_file(dg.defs_dir, settings.attributes, definitions, files)
    if problems:
        raise DeclarationError(f"{len(problems)} thing(s) a component cannot say yet; nothing written:\n"
                               + "\n".join(f"- {p}" for p in problems))
    if not files:
        print(f"{definitions} declares no notebook: nothing to write")
        return EXIT_OK
    component_files(dg, files)  # each reads back as the notebook it declares
    print(f"checking the project with {len(files)} new component file(s): `dg check defs`, in a copy of the project")
    with _settings_environment(dg.root, settings.attributes if settings else {}):
        error = components_load(dg, files, dg.root / ".nb_assets" / "migrate" / time.strftime("%Y%m%dT%H%M%S"))
    if error:
        raise DeclarationError(f"Dagster would not load the project with these components; nothing written:\n{error}")
    for target, text in files.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {os.path.relpath(target)}")
    for note in settings.notes if settings else ():
        print(f"note: {note}")
    print(f"{definitions} still declares these notebooks: once `dg check defs` passes, stop loading it (and its "
          "declarations.yaml) so that each notebook has one declaration")
    return EXIT_OK


def _settings_file(defs_dir: Path, attributes: Mapping[str, Any], definitions: Path, files: dict[Path, str]) -> list[str]:
    """Adds the project's NotebookProjectSettings defs.yaml to `files`, unless the project has one saying
    the same already; a project has one, so one saying otherwise is a problem to merge by hand."""
    from nb_assets.project.settings_yaml import SETTINGS_FOLDER, declared_settings, settings_yaml

    declared = declared_settings(defs_dir)
    if any(found == attributes for _, found in declared):
        return []
    if declared:
        return [f"{path}: declares nb_assets.NotebookProjectSettings already, other than {definitions.name}'s "
                f"({dict(attributes) or 'no attributes'}); a project has one: merge them by hand" for path, _ in declared]
    if not attributes:
        return []  # nothing but the defaults: the components use them without a settings file
    target = defs_dir / SETTINGS_FOLDER / "defs.yaml"
    if target.exists():
        return [f"{target} exists already; move it, or the settings cannot be written there"]
    files[target] = settings_yaml(attributes, definitions)
    return []


@contextmanager
def _settings_environment(root: Path, attributes: Mapping[str, Any]) -> Iterator[None]:
    """The new settings' warehouse and policy in NB_ASSETS_WAREHOUSE/POLICY while the copy is checked:
    components_load names the project's current ones there, which the new file would change. A variable
    already set wins anyway, as it will where the project runs."""
    from nb_assets.project.project_settings import POLICY_ENV, WAREHOUSE_ENV, ProjectSettings

    named = ProjectSettings(warehouse=attributes.get("warehouse"), policy=attributes.get("policy"))
    values = {WAREHOUSE_ENV: named.warehouse_at(root), POLICY_ENV: str(named.policy_at(root) or "")}
    added = {k: v for k, v in values.items() if v and k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def unsupported_arguments(definitions: Path, given: Mapping[str, Any]) -> list[str]:
    """The notebook_definitions(...) arguments of `definitions` no component carries (a translator, a
    sensor interval, read_dsn, ...), each with its line: read from the file's syntax, for the lines. One
    whose value (`given`, the captured call's) is what the components build with anyway is carried."""
    tree = ast.parse(definitions.read_text(encoding="utf-8"), filename=str(definitions))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _name(node.func) == "notebook_definitions"]
    problems = []
    for keyword in (k for call in calls for k in call.keywords if k.arg not in SETTINGS):
        name = keyword.arg
        if name in COMPONENT_DEFAULTS and name in given and _same(given[name], COMPONENT_DEFAULTS[name]):
            continue
        problems.append(f"{definitions}:{keyword.lineno}: notebook_definitions({keyword.arg or '**'}=...) has no "
                        "component attribute (nb_assets.NotebookProjectSettings), and its value is not the default "
                        "the components use; keep a definitions.py project for it, or drop it")
    return problems


def _same(value: Any, default: Any) -> bool:
    value = getattr(value, "value", value)  # dg.DefaultSensorStatus.RUNNING is "RUNNING"; no Dagster import here
    try:
        return bool(value == default)
    except Exception:  # an object whose == raises is not the default
        return False


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
