"""What a project folder is, for the code image and the code server: a definitions.py project or a dg project.

A definitions.py project (the demo) is loaded with `-f definitions.py`. A dg project is found as
`nb-assets schedule` finds one (project/component_files.py `dg_project_at`, dg's own rules): its code
location is the module `[project] code_location_target_module` (default `<root_module>.definitions`),
below `src/` when there is one. A dg config whose defs module is the root's definitions.py (the
demo's dg.toml, there for `dg dev`) is a definitions.py project: it deploys as before.

This module reads files only (no Dagster: the deploy layer never imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nb_assets.errors import DeclarationError
from nb_assets.project.component_files import component_files, dg_project_at
from nb_assets.project.settings_yaml import declared_settings

# Beside definitions.py (or a dg project's pyproject.toml): what the project reads at load time.
ROOT_FILES = ("definitions.py", "policy.yaml", "declarations.yaml")
DG_ROOT_FILES = ("pyproject.toml", "dg.toml", "policy.yaml", "declarations.yaml")
SKIPPED_PARTS = ("__pycache__", ".ipynb_checkpoints")


@dataclass(frozen=True)
class ProjectLayout:
    """Where a project's code is, relative to its root (`root`)."""

    root: Path
    module: str | None = None  # a dg project's code location module; None: definitions.py
    package_base: Path | None = None  # the folder the module imports from (src/ or the root)
    config_file: Path | None = None  # the dg.toml or pyproject.toml that made it a dg project

    @property
    def is_dg(self) -> bool:
        return self.module is not None

    def files(self) -> list[Path]:
        """The project's files that go into the code image, relative to `root`, in a stable order."""
        names = DG_ROOT_FILES if self.is_dg else ROOT_FILES
        found = [Path(n) for n in names if (self.root / n).is_file()]
        if self.is_dg:
            found += [p for p in self._settings_files() if p not in found]
        folders = [self.package_folder()] if self.is_dg else [self.root / "notebooks"]
        for folder in folders:
            found += [p.relative_to(self.root) for p in sorted(folder.rglob("*"))
                      if p.is_file() and not any(part in SKIPPED_PARTS for part in p.parts)]
        found += [p.relative_to(self.root) for p in self._declared_elsewhere() if p.relative_to(self.root) not in found]
        return found

    def package_folder(self) -> Path:
        """A dg project's top package (its notebooks live beside their defs.yaml, below it)."""
        assert self.module is not None and self.package_base is not None
        return self.package_base / self.module.split(".")[0]

    def notebooks(self) -> list[Path]:
        """The project's notebooks: below notebooks/, or below a dg project's package and wherever its components' are."""
        folder = self.package_folder() if self.is_dg else self.root / "notebooks"
        found = [p for p in sorted(folder.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
        return found + [p for p in self._declared_elsewhere() if p not in found]

    def _declared_elsewhere(self) -> list[Path]:
        """The notebooks a dg project's components declare outside its package (schedule --write and
        migrate-to-components leave a notebook where it is, e.g. notebooks/): into the image too. One
        outside the project is refused, naming its defs.yaml."""
        dg = dg_project_at(self.root) if self.is_dg else None
        if dg is None:
            return []
        found = []
        for component in component_files(dg):
            notebook = (self.root / component.decl.path).resolve()
            if not notebook.is_relative_to(self.root):
                raise DeclarationError(f"{component.file}: its notebook {notebook} is outside the project {self.root}, "
                                       "so the code image cannot carry it: move it into the project")
            if not notebook.is_relative_to(self.package_folder().resolve()):
                found.append(notebook)
        return sorted(found)

    def _settings_files(self) -> list[Path]:
        """The policy file a NotebookProjectSettings names, when it is a file of the project elsewhere than policy.yaml."""
        found = []
        for _, attributes in declared_settings(self.package_folder()):
            policy = attributes.get("policy")
            if isinstance(policy, str) and "{{" not in policy:  # a template resolves in the code server
                path = (self.root / policy).resolve()
                if path.is_file() and path.is_relative_to(self.root):
                    found.append(path.relative_to(self.root))
        return found


def project_layout(project_dir: Path) -> ProjectLayout:
    """The layout of the project at `project_dir`; a dg config naming a module that is not there is refused,
    naming the config file."""
    root = project_dir.resolve()
    dg = dg_project_at(root)
    if dg is None or dg.target_module is None or dg.package_base is None:
        return ProjectLayout(root)  # a definitions.py project, the demo's dg.toml (for `dg dev`) included
    target = dg.package_base / Path(*dg.target_module.split("."))
    if not (target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()):
        raise DeclarationError(
            f"{dg.config_file}: the code location module {dg.target_module} is not in the project: neither "
            f"{target.with_suffix('.py')} nor {target / '__init__.py'} exists")
    return ProjectLayout(root, module=dg.target_module, package_base=dg.package_base, config_file=dg.config_file)
