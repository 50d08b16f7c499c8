"""The project the Schedule form schedules a notebook in, and the notebook's declaration there.

Two kinds, as `nb-assets schedule` tells them apart: a project `dg` made (component_files.
find_dg_project finds it around the notebook; its notebooks are NotebookComponents, one
defs.yaml each), else the nearest definitions.py (its notebooks in declarations.yaml, read
through definitions.py itself). The form runs the command from `root`, passing
`--definitions` only for the second kind, so both pick the same project. Reading a declared
notebook here is what prefills the form and turns its Schedule button into an update.
No widgets and no Dagster.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError
from nb_assets.locations import nearest_project
from nb_assets.project.component_files import DgProject, find_dg_project
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.definitions_file import ProjectDeclarations


@dataclass(frozen=True)
class FormProject:
    """Where the form's command runs, and which kind of project it reads there."""

    root: Path  # the command's working folder: the dg project's root, or the folder of definitions.py
    dg: DgProject | None = None

    @property
    def definitions(self) -> Path | None:
        """The definitions file the command is given (None in a dg project: it finds the project itself)."""
        return None if self.dg is not None else self.root / "definitions.py"

    def declarations(self) -> ProjectDeclarations:
        """The project's notebooks, policy and warehouse, read as the command reads them."""
        from nb_assets.project.component_files import component_declarations
        from nb_assets.project.definitions_file import load_declarations

        if self.dg is not None:
            return component_declarations(self.dg)
        assert self.definitions is not None
        return load_declarations(self.definitions)

    def declared(self, notebook: Path) -> Declared | None:
        """The notebook's declaration, and the file (and line) declaring it; None when it is not declared."""
        from nb_assets.project.component_files import component_files

        if self.dg is not None:
            found = next((c for c in component_files(self.dg) if (self.root / c.decl.path).resolve() == notebook.resolve()), None)
            return None if found is None else Declared(found.decl, found.file, _line(found.decl))
        decl = next((d for d in self.declarations().notebooks if (self.root / d.path).resolve() == notebook.resolve()), None)
        if decl is None:
            return None
        if decl.declared_at is None:  # declared in definitions.py's Python, which no tool rewrites
            assert self.definitions is not None
            return Declared(decl, self.definitions, None, in_python=True)
        file = Path(str(decl.declared_at).rpartition(":")[0])
        return Declared(decl, file if file.is_absolute() else self.root / file, _line(decl))

    def declaration_file(self, notebook: Path, declared: Declared | None) -> Path:
        """The file the command writes the notebook's declaration to: where it is declared, else in a
        dg project its new defs.yaml, else declarations.yaml beside definitions.py."""
        from nb_assets.analysis.parser import parse_notebook
        from nb_assets.project.component_files import new_component_file

        if declared is not None:
            return declared.file
        if self.dg is None:
            return self.root / "declarations.yaml"
        try:
            return new_component_file(self.dg, notebook, parse_notebook(notebook).name)
        except (DeclarationError, OSError, ValueError):  # the command says what is wrong; this only names a file
            return self.dg.defs_dir / "notebooks" / notebook.stem / "defs.yaml"

    def policy_file(self) -> Path | None:
        """The policy the project names (relative paths read from the project's folder), or None."""
        from nb_assets.project.component_files import project_settings

        if self.dg is not None:
            return project_settings(self.dg)[1]
        policy = self.declarations().policy
        return None if policy is None else policy if policy.is_absolute() else self.root / policy

    def shown(self, path: Path) -> str:
        """`path` relative to the project's folder, when it is inside it."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


@dataclass(frozen=True)
class Declared:
    """A declared notebook: its declaration (path relative to the project) and where it is written."""

    decl: NotebookAsset
    file: Path
    line: int | None
    in_python: bool = False


def form_project(notebook: Path) -> FormProject | None:
    """The project around `notebook`: the dg project find_dg_project finds, else the nearest
    definitions.py's folder, else None. Raises DeclarationError for a malformed dg configuration."""
    folder = notebook.resolve().parent
    dg = find_dg_project(folder)
    if dg is not None:
        return FormProject(dg.root, dg)
    root = nearest_project(folder)
    return None if root is None else FormProject(root)


def field_values(decl: NotebookAsset) -> dict[str, Any]:
    """The form's fields as `decl` fills them (owners, trigger, cron, timezone, purpose, instances,
    daily partitions, freshness), and its parameters as the parameter fields show them."""
    trigger = "both" if decl.cron and decl.on_inputs_landed else "inputs" if decl.on_inputs_landed else "cron"
    # Shell-quoted, as the form reads a line back (schedule_runner): a value may hold spaces.
    instances = "\n".join(shlex.join([name, *(f"{k}={param_text(v)}" for k, v in params.items())])
                          for name, params in decl.instances.items())
    return {"owners": ", ".join(decl.owners), "trigger": trigger, "cron": decl.cron or "", "timezone": decl.timezone or "",
            "purpose": decl.purpose or "", "instances": instances,
            "daily_from": decl.partitions.start if decl.partitions is not None else "", "freshness": decl.freshness or "",
            "params": {name: param_text(value) for name, value in decl.params.items()}}


def kept_flags(decl: NotebookAsset) -> list[str]:
    """Flags for what the declaration sets that the form has no field for (its group, where its outputs
    load, its partition column): an update sends them as they are, since a flag left out clears its field."""
    words = ["--group", decl.group] if decl.group else []
    words += [w for table, template in decl.outputs.items() for w in ("--output", f"{table}={template}")]
    if decl.partitions is not None and decl.partitions.column != "ds":
        words += ["--partition-column", decl.partitions.column]
    return words


def param_text(value: Any) -> str:
    """A declared parameter value as `--param K=V` text that reads back as the same value
    (analysis.parameters.coerce_cli_value: JSON for lists, dicts and booleans)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _line(decl: NotebookAsset) -> int | None:
    at = str(decl.declared_at or "").rpartition(":")[2]
    return int(at) if at.isdigit() else None
