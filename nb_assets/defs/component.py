"""`nb_assets.NotebookComponent`: one scheduled notebook declared in a `dg` project's defs.yaml.

    type: nb_assets.NotebookComponent
    attributes:
      path: weekly_kpis.ipynb
      owners: [analytics@example.com]
      cron: "0 6 * * 1"
      purpose: finance_reporting

The attributes are the fields of `NotebookAsset` (component_schema.py derives
the schema from that dataclass), and `build_defs` is `build_definitions` over
the one declaration, so a notebook declared here and the same one declared in
a definitions.py build the same assets. The project-level settings come from
the environment, as a deployment sets them for definitions.py today:
NB_ASSETS_WAREHOUSE (default: warehouse.duckdb in the project root),
NB_ASSETS_POLICY (default: the project root's policy.yaml, when there is one)
and NB_ASSETS_SANDBOX (default auto).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path

import dagster as dg
import pydantic

from nb_assets.defs.build import build_definitions
from nb_assets.defs.component_schema import NOT_ATTRIBUTES, from_model, model_of
from nb_assets.defs.component_scaffold import NotebookScaffolder
from nb_assets.project.declaration import NotebookAsset

WAREHOUSE_ENV, POLICY_ENV, SANDBOX_ENV = "NB_ASSETS_WAREHOUSE", "NB_ASSETS_POLICY", "NB_ASSETS_SANDBOX"


@dataclasses.dataclass(frozen=True)
class ProjectSettings:
    """What a project gives every notebook once: where the warehouse is, the policy, the sandbox."""

    warehouse: str
    policy: Path | None
    sandbox: str

    @classmethod
    def from_environment(cls, project_root: Path) -> ProjectSettings:
        named = os.environ.get(POLICY_ENV)
        default = project_root / "policy.yaml"
        return cls(
            warehouse=os.environ.get(WAREHOUSE_ENV) or str(project_root / "warehouse.duckdb"),
            policy=Path(named) if named else default if default.is_file() else None,
            sandbox=os.environ.get(SANDBOX_ENV) or "auto",
        )


@dg.scaffold_with(NotebookScaffolder)
class NotebookComponent(dg.Component, dg.Resolvable):
    """A scheduled Jupyter notebook as Dagster assets (nb_assets).

    Its `%%sql` inputs' tables are the assets' upstream dependencies, each `output()` is an asset,
    and the notebook runs in a sandbox with no network. The attributes are those of
    nb_assets.NotebookAsset; `path` is relative to this defs.yaml's folder. The project's warehouse,
    policy file and sandbox come from NB_ASSETS_WAREHOUSE (default warehouse.duckdb in the project
    root), NB_ASSETS_POLICY (default policy.yaml there, if present) and NB_ASSETS_SANDBOX.
    """

    def __init__(self, notebook: NotebookAsset) -> None:
        self.notebook = notebook

    @classmethod
    def model(cls) -> type[pydantic.BaseModel]:
        """The YAML attributes: generated from NotebookAsset, never written out twice."""
        return model_of(NotebookAsset, skip=NOT_ATTRIBUTES, doc=inspect.getdoc(NotebookComponent))

    @classmethod
    def resolve_from_model(cls, context: dg.ResolutionContext, model: pydantic.BaseModel) -> NotebookComponent:
        # Strings may be templates ("{{ env.OWNER }}"): rendered first, then validated again.
        rendered = type(model).model_validate(context.resolve_value(model.model_dump(exclude_unset=True)))
        where = context.source_position_tree.lookup(context.path) if context.source_position_tree else None
        declared_at = f"{where.filename}:{where.start.line}" if where else None  # errors name the defs.yaml line
        return cls(from_model(NotebookAsset, rendered, declared_at=declared_at))

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The notebook's assets, sensors and resource, as `notebook_definitions` builds them; a notebook
        that breaks the contract or the policy fails the load with the same findings as `nb-assets check`."""
        settings = ProjectSettings.from_environment(context.project_root)
        return build_definitions(
            [self.notebook], warehouse=settings.warehouse, base_dir=context.component_path.file_path,
            policy=settings.policy, sandbox=settings.sandbox,
        )

    def __repr__(self) -> str:
        return f"NotebookComponent({self.notebook!r})"
