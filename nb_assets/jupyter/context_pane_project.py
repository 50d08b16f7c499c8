"""What `%nb_context` knows of the project around a notebook: its declared notebooks, the
zones the policy gives every table, and the tables the warehouse has.

The zones come from the load's own functions (declared_notebooks, policy.propagate),
so a notebook not declared yet gets the zones `nb-assets schedule` would preview for
it, and a misspelled table the words `run` and `check` use (table_names). No Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nb_assets.sql.see_through import Catalog
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.declare import DeclaredNotebook, declare_notebooks, seen_through
from nb_assets.project.sources import notebook_source_problems, with_source_hints, with_source_zones
from nb_assets.project.definitions_file import ProjectDeclarations
from nb_assets.errors import PolicyError
from nb_assets.locations import dialect_of
from nb_assets.policy.zones import Policy, PolicyReport, propagate
from nb_assets.policy.loader import load_policy
from nb_assets.sources.model import Source
from nb_assets.spec import NotebookSpec
from nb_assets.jupyter.cell_links import spec_cell_label
from nb_assets.sql.table_names import missing, no_such_table

Zones = frozenset[str] | None  # None: unknown, because the policy refused to place the notebook


@dataclass(frozen=True)
class ProjectView:
    declared: Sequence[DeclaredNotebook]
    policy: Policy | None
    report: PolicyReport | None  # the declared notebooks' zones
    catalog: Catalog | None  # None: no warehouse, or it cannot be opened now
    sources: Sequence[Source] = ()  # the project's source registry
    base_dir: Path | None = None  # the project's folder, which a declared source's path is relative to

    @property
    def writers(self) -> dict[str, str]:
        return {t: d.spec.name for d in self.declared for t in d.spec.output_tables}

    def find(self, notebook: Path) -> DeclaredNotebook | None:
        return next((d for d in self.declared if Path(d.spec.path).resolve() == notebook), None)

    def as_declared(self, spec: NotebookSpec) -> NotebookSpec:
        """A notebook not declared yet as a declaration with no purpose or allowances would
        have it: seen through the warehouse's views and macros when it opens."""
        if self.catalog is None:
            return spec
        [draft] = seen_through([DeclaredNotebook(NotebookAsset(spec.path), spec)], self.catalog)
        return draft.spec

    def with_sources(self, spec: NotebookSpec) -> NotebookSpec:
        """`spec` with each hint to declare a file or URL it reads literally placed in the project,
        as `nb-assets check` places it: a path relative to the project, and, when a declared source
        holds that file already, the hint is to read the source instead."""
        return spec if self.base_dir is None else with_source_hints(spec, self.sources, self.base_dir)

    def source_problems(self, spec: NotebookSpec, name: str) -> list[str]:
        """Each source `spec` reads that the project does not declare (or whose `$params` it lacks), as check says it."""
        return [f"error: {p}" for p in notebook_source_problems(spec, self.sources, name)] if self.base_dir else []

    def name_clash(self, spec: NotebookSpec) -> str | None:
        """The declared notebook that has this one's name already, as the load says it."""
        other = next((d.spec.path for d in self.declared if d.spec.name == spec.name), None)
        return None if other is None else f"notebook name {spec.name!r} is also used by {other}; rename one file"

    def taken(self) -> dict[str, str]:
        """The tables a new notebook may not write, each with why (one table, one writer)."""
        why = {t: f"{self.policy.where(t)} labels it as a source table" for t in self.policy.tables} if self.policy else {}
        readers: dict[str, list[str]] = {}
        for d in self.declared:
            for t in d.spec.input_tables:
                readers.setdefault(t, []).append(d.spec.name)
        why.update({t: f"it is a source table read by {', '.join(names)}" for t, names in readers.items()})
        why.update({t: f"notebook {name} writes it" for t, name in self.writers.items()})
        return why


def read_project(declarations: ProjectDeclarations) -> ProjectView:
    """The project as its load sees it: every declared notebook checked, seen through the
    warehouse's views and macros when it opens, and placed under the policy."""
    catalog = _catalog(declarations.warehouse)
    declared = declare_notebooks(declarations.notebooks, declarations.base_dir, dialect=dialect_of(declarations.warehouse),
                                 sources=declarations.sources)
    if catalog is not None:
        declared = seen_through(declared, catalog)
    policy = with_source_zones(load_policy(declarations.policy), declarations.sources) if declarations.policy else None
    report = propagate(policy, [d.flow() for d in declared], relations=_relations(catalog)) if policy else None
    return ProjectView(declared, policy, report, catalog, tuple(declarations.sources), declarations.base_dir)


def _catalog(warehouse: str | None) -> Catalog | None:
    if not warehouse:
        return None
    from nb_assets.warehouse.backends import open_catalog  # DuckDB loads only when there is a warehouse to read

    catalog = open_catalog(warehouse)
    return catalog if isinstance(catalog, Catalog) else None


def _relations(catalog: Catalog | None) -> frozenset[str] | None:
    return catalog.relations if catalog is not None else None


def missing_tables(name: str, spec: NotebookSpec, project: ProjectView) -> list[str]:
    """A finding per table a SQL input reads that the warehouse lacks, as `run` would say it."""
    if project.catalog is None:
        return []
    relations, writers, found = project.catalog.relations, project.writers, []
    for sql_input in spec.inputs:
        for table in missing(sql_input.tables, relations):
            where = f"{name} ({spec_cell_label(spec.cells, sql_input.cell)}): [no-such-table] SQL input {sql_input.name!r}"
            if table in writers:  # not a typo: it exists once its writer has run
                found.append(f"warning: {where}: {table} does not exist yet; notebook {writers[table]} writes it")
            else:
                # A warning, as `nb-assets check` says it (docs/notebook-contract.md): the next step still names it.
                found.append(f"warning: {where}: {no_such_table(table, relations)}")
    return found


@dataclass(frozen=True)
class DraftZones:
    inputs: dict[str, Zones]
    outputs: dict[str, Zones]
    problem: str | None = None  # why the policy would refuse this notebook, as schedule says it
    purposes: tuple[str, ...] | None = None  # the policy's purposes that may read its inputs (None: it reads nothing)


def draft_zones(project: ProjectView, spec: NotebookSpec) -> DraftZones:
    """The zones of a notebook not declared yet (`spec`, as_declared gives it): the policy
    propagated over the declared notebooks plus this one, declared with no purpose or
    allowances, as `nb-assets schedule` previews it. An output another notebook or the
    policy already owns is placed under a name of its own, so its zones are still this
    notebook's (the clash is a finding)."""
    policy = project.policy
    if policy is None:
        return DraftZones({t: frozenset() for t in spec.input_tables}, {t: frozenset() for t in spec.output_tables})
    flow, taken = DeclaredNotebook(NotebookAsset(spec.path), spec).flow(), project.taken()
    names = {d.spec.name for d in project.declared}
    as_written = {t: (f"{t} (as {flow.name} writes it)" if t in taken else t) for t in flow.outputs}
    # Zones do not depend on the purpose, but propagate checks every notebook under one: the
    # policy's default, else any of its purposes. The violations it finds are not shown.
    purpose = policy.default_purpose or next(iter(policy.purposes), None)
    flow = replace(flow, purpose=purpose, outputs=tuple(as_written.values()),
                   name=flow.name if flow.name not in names else f"{flow.name} ({spec.path})")
    flows = [*(d.flow() for d in project.declared), flow]
    try:
        labels: Mapping[str, frozenset[str]] = propagate(policy, flows, relations=_relations(project.catalog)).labels
    except PolicyError as exc:
        known = project.report.labels if project.report else {}
        # "no such table" is said already, per SQL input (missing_tables), from the same catalog
        problem = None if ": no such table " in str(exc) else str(exc)
        return DraftZones({t: known.get(t) for t in spec.input_tables}, {t: None for t in spec.output_tables}, problem)
    inputs = {t: labels.get(t, frozenset()) for t in spec.input_tables}
    needed = frozenset().union(*inputs.values())
    purposes = tuple(p for p, zones in policy.purposes.items() if needed <= zones) if inputs else None
    return DraftZones(inputs, {t: labels.get(as_written[t], frozenset()) for t in spec.output_tables}, None, purposes)
