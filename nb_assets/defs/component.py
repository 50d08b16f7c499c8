"""`nb_assets.NotebookComponent`: one scheduled notebook declared in a `dg` project's defs.yaml.

    type: nb_assets.NotebookComponent
    attributes:
      path: weekly_kpis.ipynb
      owners: [analytics@example.com]
      cron: "0 6 * * 1"
      purpose: finance_reporting

The attributes are the fields of `NotebookAsset` (component_schema.py derives
the schema from that dataclass). A project holds any number of them: the first
to build builds the whole project once (component_project.py), as
`notebook_definitions` would over all of them, and each returns its own
notebook's assets with the shared resource and sensors. The project-level
settings come from the project's `NotebookProjectSettings` (component_settings.py),
the environment overriding warehouse, policy and sandbox.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import dagster as dg
import pydantic

from nb_assets.defs.build import ProjectBuild
from nb_assets.defs.component_project import absolute, member_definitions, shared_build
from nb_assets.defs.component_scaffold import NotebookScaffolder
from nb_assets.defs.component_schema import NOT_ATTRIBUTES, from_model, model_of, rendered
from nb_assets.project.declaration import NotebookAsset

__all__ = ["NotebookComponent"]


@dg.scaffold_with(NotebookScaffolder)
class NotebookComponent(dg.Component, dg.Resolvable):
    """A scheduled Jupyter notebook as Dagster assets (nb_assets).

    Its `%%sql` inputs' tables are the assets' upstream dependencies, each `output()` is an asset,
    and the notebook runs in a sandbox with no network. The attributes are those of
    nb_assets.NotebookAsset; `path` is relative to this defs.yaml's folder. A project holds any number
    of them; its warehouse, policy, sandbox, notifications, sources and file drops come from its
    nb_assets.NotebookProjectSettings (NB_ASSETS_WAREHOUSE, NB_ASSETS_POLICY, NB_ASSETS_SANDBOX override).
    """

    def __init__(self, notebook: NotebookAsset, folder: Path | None = None) -> None:
        self.notebook = notebook
        self.folder = folder  # where `path` starts: the defs.yaml's folder (else the project's root)
        self.project: ProjectBuild | None = None  # this load's project build, set by the first sibling to build

    @classmethod
    def model(cls) -> type[pydantic.BaseModel]:
        """The YAML attributes: generated from NotebookAsset, never written out twice."""
        return model_of(NotebookAsset, skip=NOT_ATTRIBUTES, doc=inspect.getdoc(NotebookComponent))

    @classmethod
    def resolve_from_model(cls, context: dg.ResolutionContext, model: pydantic.BaseModel) -> NotebookComponent:
        values_of = rendered(context, model)  # templates rendered, validated again
        where = context.source_position_tree.lookup(context.path) if context.source_position_tree else None
        declared_at = f"{where.filename}:{where.start.line}" if where else None  # errors name the defs.yaml line
        folder = Path(where.filename).parent if where else None
        return cls(from_model(NotebookAsset, values_of, declared_at=declared_at), folder)

    def declaration(self, project_root: Path) -> NotebookAsset:
        """The declaration with its notebook's path made absolute (the project builds from its root)."""
        return absolute(self.notebook, self.folder or project_root)

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """This notebook's assets, and the project's resource, executor, sensors and source tables as
        `notebook_definitions` builds them over all the project's notebooks; a notebook that breaks the
        contract or the policy fails the load with the same findings as `nb-assets check`."""
        siblings = context.component_tree.get_all_components(NotebookComponent)
        build = shared_build(context, self, siblings)
        first = not siblings or siblings[0] is self or not any(s is self for s in siblings)
        return member_definitions(build, self.declaration(context.project_root).notebook_file(context.project_root), first=first)

    def __repr__(self) -> str:
        return f"NotebookComponent({self.notebook!r})"
