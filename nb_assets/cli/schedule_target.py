"""Where `nb-assets schedule` declares a notebook, and the project as it would be with it.

Two kinds of project: one whose definitions.py loads a declarations.yaml (the
entry is appended there, or with --update replaced in place), and one `dg`
made, whose notebooks are `nb_assets.NotebookComponent`s (a new defs.yaml, or
with --update its attributes rewritten). Either way the file's new text is
built first, the project is read as it would be with it (every check sees what
the load would), and the load check runs on that text in a child process:
nothing is written before all of them pass.

With --update the declaration is what the flags say, as a new one would be (the
Schedule form sends every field): a flag left out clears that field. The fields
no flag can set (`KEPT_ON_UPDATE`) are kept from the entry as it was.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nb_assets.errors import DeclarationError
from nb_assets.project.component_files import DgProject
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.definitions_file import ProjectDeclarations

# NotebookAsset fields no `schedule` flag sets: --update keeps them as the entry had them.
KEPT_ON_UPDATE = ("key_prefix", "tags", "allow", "reclassify", "limits", "sandbox", "checks")


@dataclass(frozen=True)
class Source:
    """The project as it is now, and how to read it again with one file's text changed."""

    project: ProjectDeclarations
    describe: str  # the file the project is read through, for messages
    dg: DgProject | None = None  # a project dg made: its notebooks are NotebookComponents


@dataclass(frozen=True)
class Target:
    """The declaration's file, its text before and after, and the project as it would be."""

    file: Path
    before: str
    text: str
    project: ProjectDeclarations
    decl: NotebookAsset  # as the project reads it back (declared_at names the file and line)
    loads: Callable[[Path], str | None]  # the load check in a child process, given a work folder: None or the error
    kept: tuple[str, ...] = ()  # fields --update kept from the entry


def read_project(args: argparse.Namespace) -> Source:
    """The project: the definitions file given, else the dg project around the working folder, else definitions.py."""
    from nb_assets.project.component_files import component_declarations, find_dg_project
    from nb_assets.project.definitions_file import load_declarations

    dg = find_dg_project(Path.cwd()) if args.definitions is None else None
    if dg is not None:
        return Source(component_declarations(dg), f"the dg project {dg.root} (its defs folder {dg.defs_dir})", dg)
    args.definitions = args.definitions or Path("definitions.py")
    return Source(load_declarations(args.definitions), str(args.definitions))


def require_declared_as_asked(source: Source, existing: NotebookAsset | None, notebook: Path, update: bool,
                              definitions: Path | None) -> None:
    """--write refuses a declared notebook (saying to use --update); --update refuses one not declared,
    or declared in Python, which no tool rewrites."""
    from nb_assets.project.declarations_yaml import already_declared, declared_in_python

    if existing is not None and existing.declared_at is None and definitions is not None:
        raise DeclarationError(declared_in_python(existing, definitions))
    if existing is not None and not update:
        raise DeclarationError(already_declared(existing, source.describe))
    if existing is None and update:
        raise DeclarationError(f"--update: {notebook} is not declared in {source.describe}, so there is nothing to "
                               "update; declare it with --write")


def updated(decl: NotebookAsset, existing: NotebookAsset | None) -> tuple[NotebookAsset, tuple[str, ...]]:
    """`decl` (the flags) with the fields no flag sets taken from `existing`; and which of them were set there."""
    if existing is None:
        return decl, ()
    kept = {name: getattr(existing, name) for name in KEPT_ON_UPDATE}
    defaults = NotebookAsset(decl.path)
    return dataclasses.replace(decl, **kept), tuple(n for n in KEPT_ON_UPDATE if kept[n] != getattr(defaults, n))


def cleared(decl: NotebookAsset, existing: NotebookAsset | None) -> tuple[str, ...]:
    """The fields `existing` set that the update leaves at their default: no flag gave them again."""
    if existing is None:
        return ()
    defaults = NotebookAsset(decl.path)
    return tuple(f.name for f in dataclasses.fields(NotebookAsset) if f.name not in ("path", "declared_at", "instance")
                 and getattr(existing, f.name) != getattr(defaults, f.name) and getattr(decl, f.name) == getattr(defaults, f.name))


def yaml_target(source: Source, args: argparse.Namespace, decl: NotebookAsset, existing: NotebookAsset | None,
                notebook: Path) -> Target:
    """The declarations.yaml the definitions load, with `decl` appended or (updating) its entry replaced."""
    from nb_assets.cli.schedule_workflow import declared_entry
    from nb_assets.project.declarations_yaml import candidate, with_declaration, with_updated_declaration
    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.project.load_check import project_loads

    if existing is not None:  # the file that declares it, whichever the definitions load it from
        declarations = Path(str(existing.declared_at).rpartition(":")[0]).resolve()
    else:
        declarations = (args.declarations or args.definitions.resolve().parent / "declarations.yaml").resolve()
    before = declarations.read_text(encoding="utf-8") if declarations.exists() else ""
    text = (with_updated_declaration if existing is not None else with_declaration)(before, declarations, decl)
    with candidate(declarations, text):
        project = load_declarations(args.definitions)
    read = declared_entry(project, notebook)
    if read is None:
        raise DeclarationError(f"{args.definitions} does not load {declarations}; add "
                               f"`*load_declarations_yaml(BASE_DIR / {declarations.name!r})` to its notebook list")
    definitions = args.definitions
    return Target(declarations, before, text, project, read,
                  lambda work: project_loads(definitions, declarations, text, work))


def component_target(source: Source, decl: NotebookAsset, existing: NotebookAsset | None, notebook: Path,
                     name: str) -> Target:
    """The defs.yaml declaring the notebook in a dg project: a new one, or (updating) its attributes rewritten."""
    from nb_assets.cli.schedule_workflow import declared_entry
    from nb_assets.project.component_files import (
        component_declarations, component_yaml, new_component_file, with_updated_component,
    )
    from nb_assets.project.component_load_check import components_load

    dg = source.dg
    assert dg is not None  # called for a dg project only
    if existing is not None:
        file = Path(str(existing.declared_at).rpartition(":")[0])
        before = file.read_text(encoding="utf-8")
        text = with_updated_component(before, file, decl, dg.root)
    else:
        file, before = new_component_file(dg, notebook, name), ""
        text = component_yaml(decl, file, dg.root)
    project = component_declarations(dg, {file: text})
    read = declared_entry(project, notebook)
    assert read is not None  # the text just built declares it
    return Target(file, before, text, project, read, lambda work: components_load(dg, {file: text}, work))
