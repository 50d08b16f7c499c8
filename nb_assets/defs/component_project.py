"""One project build per dg load, shared by every `NotebookComponent` in the project.

The project-wide pieces (the resource, the executor, the landing, file-drop, source,
automation, failure and freshness sensors, the source tables, and policy propagation)
need the whole graph: a notebook reading another's output takes its zones through it.
So the first NotebookComponent that builds asks the component tree for all of them
(`ComponentTree.get_all_components`, the tree its load context holds) and for the
project's `NotebookProjectSettings`, builds the project once (`build_project`, what
`notebook_definitions` builds), and hands the result to each sibling. Each component
then returns its own notebook's assets and the resource they need, the SAME object in
each (`Definitions.merge` keeps a resource given twice as the same object once). The
rest is given once, as a dg load refuses it twice even as the same object: it stamps
each component's asset specs with that component's defs.yaml ("conflicting AssetSpecs"),
so a source table comes from the component of the first notebook reading it, and it
refuses a sensor given by two components ("Duplicate definition"), so the first
component in the tree gives the sensors and the executor.

A load makes new component objects (a reload too), so the build lives on them:
nothing outlives the load that made it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import dagster as dg

from nb_assets.defs.build import ProjectBuild, build_project
from nb_assets.defs.component_settings import project_settings
from nb_assets.project.declaration import NotebookAsset


class Member(Protocol):
    """What a NotebookComponent offers this module (component.py defines it; no import cycle)."""

    project: ProjectBuild | None

    def declaration(self, project_root: Path) -> NotebookAsset: ...


def shared_build(context: dg.ComponentLoadContext, me: Member, members: Sequence[Member]) -> ProjectBuild:
    """The project's build for this load: made once, by whichever member builds first."""
    if me.project is not None:
        return me.project
    if not any(m is me for m in members):  # a component built outside a project's tree: a project of one
        members = [me]
    settings = project_settings(context)
    root = context.project_root
    build = build_project(
        [m.declaration(root) for m in members], warehouse=settings.warehouse_at(root), base_dir=root,
        policy=settings.policy_at(root), sandbox=settings.sandbox_kind(), notifications=settings.notifications,
        sources=list(settings.sources), file_drops=list(settings.file_drops),
    )
    for member in members:
        member.project = build
    return build


def member_definitions(build: ProjectBuild, notebook_file: Path, *, first: bool) -> dg.Definitions:
    """The assets of the notebook at `notebook_file` (every instance of it), the source tables it is the
    first to read, and the shared resource; the `first` member gives the sensors and the executor."""
    files = build.graph.notebook_files
    notebooks = [a for a in build.defs.assets or () if isinstance(a, dg.AssetsDefinition)]
    mine = [a for a in notebooks if files.get(a.node_def.name) == notebook_file]
    # dg stamps each component's asset specs with its own defs.yaml (code references, origin), so a source
    # table given by two components would be two different specs: its first reader's component gives it.
    first_reader: dict[dg.AssetKey, Path | None] = {}
    for asset in notebooks:
        for key in asset.dependency_keys:
            first_reader.setdefault(key, files.get(asset.node_def.name))
    sources = [a for a in build.defs.assets or () if isinstance(a, dg.AssetSpec) and first_reader.get(a.key) == notebook_file]
    return dg.Definitions(
        assets=[*mine, *sources], resources=build.defs.resources,
        sensors=build.defs.sensors if first else None, executor=build.defs.executor if first else None,
    )


def absolute(decl: NotebookAsset, folder: Path) -> NotebookAsset:
    """`decl` with its notebook's path made absolute from `folder` (its defs.yaml's)."""
    return dataclasses.replace(decl, path=decl.notebook_file(folder).resolve())
