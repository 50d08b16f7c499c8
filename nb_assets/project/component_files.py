"""Notebooks declared as `nb_assets.NotebookComponent`s in a `dg` project, read and written as YAML.

A project `dg` made (`create-dagster project`) says so in its pyproject.toml
(`[tool.dg]`) or a dg.toml, and keeps its components under its defs folder
(`src/<root_module>/defs/` unless `defs_module` names another), one `defs.yaml`
each. `nb-assets schedule` reads the notebooks declared there without Dagster
(this module only reads YAML and TOML), writes a new notebook's defs.yaml, and
rewrites one's attributes in place. A component's attributes are the keys of a
declarations.yaml entry, read by the same reader (declarations_yaml.py), with
`path` relative to the defs.yaml's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from nb_assets.errors import DeclarationError
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.declarations_yaml import compose, declaration_fields, last_line, read_declaration
from nb_assets.project.definitions_file import ProjectDeclarations
from nb_assets.project.project_settings import ProjectSettings

# The `type:` dg resolves: the package's lazy public name (nb_assets._WHERE), or the class where it is defined.
COMPONENT_CLASS = "NotebookComponent"
COMPONENT_TYPE = f"nb_assets.{COMPONENT_CLASS}"
_TYPES = {COMPONENT_TYPE, f"nb_assets.defs.component.{COMPONENT_CLASS}"}
COMPONENT_FILE = "defs.yaml"

@dataclass(frozen=True)
class DgProject:
    root: Path  # the folder holding pyproject.toml or dg.toml
    defs_dir: Path  # where the components' defs.yaml files are
    package_base: Path | None = None  # where its modules import from: src/ when there is one, else the root
    target_module: str | None = None  # the code location's module (code_location_target_module)
    config_file: Path | None = None  # the dg.toml or pyproject.toml that says it is a dg project


@dataclass(frozen=True)
class ComponentFile:
    """One defs.yaml declaring a notebook: the file, and the declaration (path relative to the project)."""

    file: Path
    decl: NotebookAsset


def find_dg_project(start: Path) -> DgProject | None:
    """The dg project holding `start` (a folder): the nearest folder with a dg configuration (dg.toml, or
    pyproject.toml's `[tool.dg]`), when it is a project's; None when there is none."""
    for folder in (start.resolve(), *start.resolve().parents):
        if dg_config(folder) is not None:
            return dg_project_at(folder)  # a workspace's projects are below it, not around `start`
    return None


def dg_project_at(folder: Path) -> DgProject | None:
    """The dg project whose configuration is in `folder`, as dg reads it: its defs folder
    (`defs_module`, default `<root_module>.defs`) and code location module (`code_location_target_module`,
    default `<root_module>.definitions`), below src/ when there is one. None when `folder` has no dg
    configuration, holds a workspace, or is a definitions.py project that dg serves: its defs module is a
    file (the demo's dg.toml names definitions.py), so it has no defs folder of components."""
    found = dg_config(folder)
    if found is None or found[1].get("directory_type", "project") != "project":
        return None
    config_file, config = found
    project = config.get("project") or {}
    root_module = project.get("root_module")
    if not isinstance(root_module, str):
        raise DeclarationError(f"{config_file}: a dg project names its package: [project] root_module is missing")
    base = folder / "src" if (folder / "src").is_dir() else folder
    defs_dir = base.joinpath(*(project.get("defs_module") or f"{root_module}.defs").split("."))
    if defs_dir.with_suffix(".py").is_file() and not defs_dir.is_dir():
        return None
    target = project.get("code_location_target_module") or f"{root_module}.definitions"
    return DgProject(folder, defs_dir, base, target, config_file)


def dg_config(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The dg configuration in `folder` and the file holding it: dg.toml's top level, or pyproject.toml's
    [tool.dg]; dg reads dg.toml first. None when `folder` has neither."""
    dg_toml, pyproject = folder / "dg.toml", folder / "pyproject.toml"
    try:
        if dg_toml.is_file():
            return dg_toml, tomllib.loads(dg_toml.read_text(encoding="utf-8"))
        if pyproject.is_file():
            section = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("dg")
            return (pyproject, section) if isinstance(section, dict) else None
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"{dg_toml if dg_toml.is_file() else pyproject}: malformed TOML: {exc}") from exc
    return None


def component_files(project: DgProject, overlay: Mapping[Path, str] | None = None) -> list[ComponentFile]:
    """Every NotebookComponent under the defs folder, in path order. `overlay`: defs.yaml path → the
    text to read instead of the file (or for a file not written yet), as the project would be."""
    texts = {p.resolve(): p.read_text(encoding="utf-8") for p in project.defs_dir.rglob(COMPONENT_FILE) if p.is_file()}
    texts.update({p.resolve(): text for p, text in (overlay or {}).items()})
    found: list[ComponentFile] = []
    for path in sorted(texts):
        found += [ComponentFile(path, _relative_to_project(decl, path, project.root))
                  for decl in _notebook_components(texts[path], path)]
    return found


def _notebook_components(text: str, path: Path) -> list[NotebookAsset]:
    """The NotebookComponents of one defs.yaml (which may hold several documents, `---` between them)."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        compose(text, path)  # raises with the file and line
        raise
    found = []
    for document in documents:
        if not isinstance(document, yaml.MappingNode):
            continue
        keys = {k.value: v for k, v in document.value}
        kind = keys.get("type")
        if isinstance(kind, yaml.ScalarNode) and kind.value in _TYPES:
            attributes = keys.get("attributes")
            if attributes is None:
                raise DeclarationError(f"{path}:{document.start_mark.line + 1}: a {COMPONENT_TYPE} needs attributes: (path: ...)")
            found.append(read_declaration(attributes, path))
    return found


def _relative_to_project(decl: NotebookAsset, defs_yaml: Path, root: Path) -> NotebookAsset:
    """`decl` with its path (relative to the defs.yaml's folder) made relative to the project's root."""
    return replace(decl, path=os.path.relpath(defs_yaml.parent / decl.path, root))


def project_settings(project: DgProject) -> tuple[str, Path | None, str]:
    """The warehouse, policy file and sandbox every component of the project uses: its
    NotebookProjectSettings' (read as YAML; `{{ env.NAME }}` rendered as dg renders it), the
    environment overriding them, else the defaults. Two settings components are refused, as the load does."""
    from nb_assets.project.settings_yaml import declared_settings

    found = declared_settings(project.defs_dir)
    if len(found) > 1:
        raise DeclarationError(f"nb_assets.NotebookProjectSettings is declared {len(found)} times "
                               f"({', '.join(str(path) for path, _ in found)}); a project has one: merge them")
    named = {k: _rendered(str(v)) for _, attributes in found for k, v in attributes.items()
             if k in ("warehouse", "policy", "sandbox") and v}
    settings = ProjectSettings(**{k: v for k, v in named.items() if v})  # type: ignore[arg-type]
    return settings.warehouse_at(project.root), settings.policy_at(project.root), settings.sandbox_kind()


_ENV_TEMPLATE = re.compile(r"\{\{\s*env\.(\w+)\s*\}\}")


def _rendered(value: str) -> str | None:
    """`value` with dg's `{{ env.NAME }}` templates filled from the environment; None when it holds another
    template, or a variable that is not set (the load then fails naming it; the CLI takes the default)."""
    rendered = _ENV_TEMPLATE.sub(lambda m: os.environ.get(m.group(1), "\0"), value)
    return None if "{{" in rendered or "\0" in rendered else rendered


def component_declarations(project: DgProject, overlay: Mapping[Path, str] | None = None) -> ProjectDeclarations:
    """The project's notebooks as the CLI reads a definitions.py project's: every path relative to its root."""
    from nb_assets.project.settings_yaml import declared_settings, settings_declared

    warehouse, policy, sandbox = project_settings(project)
    found = declared_settings(project.defs_dir)  # one at most: project_settings refuses two
    notifications, sources, drops = settings_declared(*found[0]) if found else (None, [], [])
    return ProjectDeclarations([c.decl for c in component_files(project, overlay)], policy, project.root, warehouse, sandbox,
                               notifications=notifications, sources=sources, file_drops=drops)


def new_component_file(project: DgProject, notebook: Path, name: str) -> Path:
    """Where `schedule --write` declares `notebook`: beside it when it is in the defs folder (as
    `dg scaffold defs` lays one out), else in its own folder `notebooks/<name>/` of the defs folder.
    Refuses a place another defs.yaml holds."""
    inside = notebook.resolve().is_relative_to(project.defs_dir.resolve())
    target = (notebook.parent if inside else project.defs_dir / "notebooks" / name) / COMPONENT_FILE
    if target.exists():
        raise DeclarationError(f"{target} exists already and does not declare {notebook.name}; a folder holds one "
                               "component: move the notebook to a folder of its own under the defs folder")
    return target


def component_yaml(decl: NotebookAsset, defs_yaml: Path, root: Path) -> str:
    """A new defs.yaml declaring `decl` (its path relative to `root`), with `path` relative to the file's folder."""
    attributes = _attributes_yaml(decl, defs_yaml, root)
    return f"type: {COMPONENT_TYPE}\n\nattributes:\n" + "".join(f"  {line}" for line in attributes.splitlines(keepends=True))


def with_updated_component(text: str, defs_yaml: Path, decl: NotebookAsset, root: Path) -> str:
    """`text` (the file `defs_yaml`) with the attributes of its component declaring `decl.path` replaced
    by `decl`'s; the rest of the file (its type, other keys, comments, other documents) as it is."""
    lines = text.splitlines(keepends=True)
    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        keys = {k.value: (k, v) for k, v in document.value} if isinstance(document, yaml.MappingNode) else {}
        kind, (key, node) = keys.get("type", (None, None))[1], keys.get("attributes", (None, None))
        if not (isinstance(kind, yaml.ScalarNode) and kind.value in _TYPES and node is not None):
            continue
        if (defs_yaml.parent / read_declaration(node, defs_yaml).path).resolve() != (root / decl.path).resolve():
            continue
        if node.flow_style or node.start_mark.line == key.start_mark.line or not isinstance(node, yaml.MappingNode):
            raise DeclarationError(f"{defs_yaml}:{key.start_mark.line + 1}: attributes: is not written one key a line "
                                   "below it, so it cannot be replaced in place; edit it by hand")
        first, last = node.start_mark.line, last_line(node)
        indent = " " * node.start_mark.column
        attributes = "".join(f"{indent}{line}" for line in _attributes_yaml(decl, defs_yaml, root).splitlines(keepends=True))
        return "".join(lines[:first]) + attributes + "".join(lines[last + 1:])
    raise DeclarationError(f"{defs_yaml}: declares no {COMPONENT_TYPE} for {decl.path}, so there is nothing to update")


def _attributes_yaml(decl: NotebookAsset, defs_yaml: Path, root: Path) -> str:
    fields = declaration_fields(decl)
    fields["path"] = Path(os.path.relpath(root / decl.path, defs_yaml.parent)).as_posix()
    text = yaml.safe_dump(fields, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    if text.startswith("{"):  # every value a scalar: PyYAML would write the whole mapping on one line
        text = yaml.safe_dump(fields, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    return text
