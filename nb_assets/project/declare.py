"""Declarations → checked notebooks, without Dagster: what a project's load refuses, in one place.

`defs.build` (the load), `nb-assets schedule` and the other CLI commands call
`declare_notebooks` and `apply_policy`, so what the CLI accepts is what the
load accepts. Every notebook is parsed, checked (declaration_checks: owners
and the channels that reach them, names, triggers, partitions; findings;
one table, one writer), seen through the warehouse's views and macros (when it
can be opened) and placed under the policy; a problem of any notebook fails
with every problem of every notebook at once, each naming its notebook and,
for a YAML declaration, the file and line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nb_assets.sql.see_through import Catalog, see_through_all
from nb_assets.project.declaration_output_checks import with_declared_checks
from nb_assets.project.declaration import NotebookAsset, at
from nb_assets.project.declaration_checks import declaration_problems
from nb_assets.errors import DeclarationError, NbAssetsError, PolicyError
from nb_assets.project.instances import expand_instances, instance_spec, label
from nb_assets.locations import dialect_of
from nb_assets.analysis.parser import parse_notebook
from nb_assets.analysis.parameters import resolve_parameters
from nb_assets.project.partitions import partitioned_trigger_problems
from nb_assets.policy.zones import NotebookFlow, Policy, PolicyReport, check_notebook, propagate
from nb_assets.policy.loader import load_policy
from nb_assets.project.sources import notebook_source_problems, registry_problems, with_source_hints, with_source_zones
from nb_assets.sources.model import Source
from nb_assets.spec import NotebookSpec

# Checks right before a run, given the catalog the run's queries will read
# (None: the notebook reads nothing); returns facts for metadata.
Gate = Callable[[Catalog | None], dict[str, Any]]
log = logging.getLogger("nb_assets")


@dataclass(frozen=True)
class DeclaredNotebook:
    decl: NotebookAsset
    spec: NotebookSpec

    def check_reads(self) -> tuple[str, ...]:
        """Tables the output checks read besides the notebook's own outputs (relationships' targets, sql's tables)."""
        from nb_assets.analysis.output_checks import check_tables

        checks = [c for cs in self.spec.output_checks.values() for c in cs]
        return tuple(t for t in check_tables(checks) if t not in self.spec.output_tables) if checks else ()

    def flow(self) -> NotebookFlow:
        seen = self.spec.seen_through
        return NotebookFlow(
            name=self.spec.name,
            purpose=self.decl.purpose,
            # Tables its output checks read are inputs for the policy (docs/checks.md): the purpose must
            # allow them, and their zones go with the failing rows a check samples into the output's metadata.
            inputs=tuple(dict.fromkeys((*self.spec.named_relations, *self.check_reads()))),
            outputs=self.spec.output_tables,
            reclassify={t: (tuple(r.zones), r.reason) for t, r in self.decl.reclassify.items()},
            through=dict(seen.through) if seen is not None else {},
        )


def declare_notebooks(
    notebooks: Sequence[NotebookAsset],
    base_dir: str | Path | None = None,
    warehouse: str | Path | None = None,
    dialect: str | None = None,
    *,
    notifications: Any = None,
    catalog: Catalog | str | None = None,
    sources: Sequence[Source] = (),
) -> list[DeclaredNotebook]:
    """Parse and check every notebook; raise one DeclarationError listing all problems.

    `%%sql` inputs are read in `dialect`, by default the warehouse's (dialect_of).
    With `notifications` (a notify.Notifications), every owner must be reachable.

    With a `warehouse`, its views and macros are seen through now if it can be
    opened; if not, one line says so and the gate does it before each run. A caller
    that opened the warehouse's `catalog` already (open_catalog's answer) passes it."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    declared: list[DeclaredNotebook] = []
    expanded, problems = expand_instances(notebooks)
    problems.extend(registry_problems(sources))
    for decl in expanded:
        try:
            spec = parse_notebook(decl.notebook_file(base), dialect or dialect_of(warehouse))
            spec = with_source_hints(spec, sources, base)  # a file it reads literally: the declared source holding it
            where = label(decl, spec.path)
            spec = _with_allowances(spec, decl.allow)
            resolve_parameters(spec, decl.params, where)
            spec = instance_spec(spec, decl)
            spec, check_problems = with_declared_checks(spec, decl.checks, where, dialect or dialect_of(warehouse),
                                                        instance=decl.instance is not None)
            problems.extend(at(decl, p) for p in check_problems)
        except NbAssetsError as exc:
            problems.append(at(decl, str(exc)))
            continue
        problems.extend(at(decl, p) for p in declaration_problems(decl, spec, where, notifications))
        problems.extend(at(decl, p) for p in notebook_source_problems(spec, sources, where))  # project/sources.py
        declared.append(DeclaredNotebook(decl, spec))
    if warehouse is not None and any(d.spec.inputs for d in declared):
        declared = seen_through_now(declared, warehouse, catalog)
    problems.extend(at(d.decl, f.describe(d.spec.path)) for d in declared for f in d.spec.errors)
    problems.extend(_conflicts(declared))
    problems.extend(partitioned_trigger_problems(declared))
    if problems:
        raise DeclarationError(f"{len(problems)} problem(s) in declared notebooks:\n" + "\n".join(f"- {p}" for p in problems))
    return declared


def _with_allowances(spec: NotebookSpec, allow: Mapping[str, str]) -> NotebookSpec:
    if not allow:
        return spec
    from nb_assets.analysis.checks import RULES, apply_allowances

    # Only the eligibility rules can be allowed: a broken contract (an unknown
    # SQL parameter, a non-literal output) would just fail later, less clearly.
    allowable = sorted(rule.id for rule in RULES)
    unknown = sorted(set(allow) - set(allowable))
    if unknown:
        raise DeclarationError(f"{spec.path}: allow= names {unknown}, which cannot be allowed (allowable: {allowable})")
    try:
        return replace(spec, findings=apply_allowances(spec.findings, allow))
    except ValueError as exc:
        raise DeclarationError(f"{spec.path}: {exc}") from exc


def _conflicts(declared: Sequence[DeclaredNotebook]) -> list[str]:
    problems: list[str] = []
    names: dict[str, str] = {}
    writers: dict[str, str] = {}
    for item in declared:
        other = names.setdefault(item.spec.name, item.spec.path)
        if other != item.spec.path:
            problems.append(at(item.decl, f"{item.spec.path}: notebook name {item.spec.name!r} is also used by {other}; rename one file"))
        # Keyed by name, not path: two instances of one notebook must not write one table either.
        who = label(item.decl, item.spec.path)
        for table in item.spec.output_tables:
            writer = writers.setdefault(table, who)
            if writer != who:
                problems.append(at(item.decl, f"{who}: writes {table}, which {writer} writes too; one table, one writer"))
    return problems


def seen_through_now(
    declared: Sequence[DeclaredNotebook], warehouse: str | Path, catalog: Catalog | str | None = None,
) -> list[DeclaredNotebook]:
    """Each notebook seen through the warehouse's current catalog (`catalog`, when the caller
    opened it already), or as it is if that cannot be read."""
    if catalog is None:
        from nb_assets.warehouse.backends import open_catalog  # DuckDB loads only where a warehouse is given

        catalog = open_catalog(warehouse)
    if isinstance(catalog, str):
        if catalog not in _said:  # once per process: a definitions file is often loaded twice
            _said.add(catalog)
            log.warning("nb_assets: %s; views and table macros will be seen through before each run instead", catalog)
        return list(declared)
    return seen_through(declared, catalog)


_said: set[str] = set()


def seen_through(declared: Sequence[DeclaredNotebook], catalog: Catalog) -> list[DeclaredNotebook]:
    specs = see_through_all([d.spec for d in declared], catalog)
    return [replace(d, spec=spec) for d, spec in zip(declared, specs)]


def apply_policy(
    declared: Sequence[DeclaredNotebook], policy_path: str | Path | None, relations: Collection[str] | None = None,
    sources: Sequence[Source] = (),
) -> PolicyReport | None:
    """Propagate zones over the whole graph; enforce-mode violations refuse declaration.
    With the warehouse's `relations`, a table it lacks is called that ("no such table"), not unlabelled."""
    if policy_path is None:
        return None
    policy = with_source_zones(load_policy(policy_path), sources)  # a declared source is labelled by its zones
    report = propagate(policy, [d.flow() for d in declared], relations=relations)
    blocking = report.blocking()
    if blocking:
        decls = {d.spec.name: d.decl for d in declared}
        raise DeclarationError(
            f"{len(blocking)} policy violation(s) in {policy_path}:\n"
            + "\n".join(f"- {at(decls[v.notebook], v.message()) if v.notebook in decls else v.message()}" for v in blocking)
        )
    return report


def policy_gate(
    policy_path: str | Path, declared: Sequence[DeclaredNotebook], item: DeclaredNotebook, sources: Sequence[Source] = (),
) -> Gate:
    """Re-read the policy, and see every notebook through the catalog the run
    reads, right before a run: both may have changed since loading."""

    def gate(catalog: Catalog | None) -> dict[str, Any]:
        policy: Policy = with_source_zones(load_policy(policy_path), _current_sources(sources))
        current = seen_through(declared, catalog) if catalog is not None else list(declared)
        flows = [d.flow() for d in current]
        report = propagate(policy, flows)
        flow = next(f for f in flows if f.name == item.spec.name)
        violations = check_notebook(policy, flow, report.labels, report.writers)
        blocking = [v for v in violations if v.mode == "enforce"]
        if blocking:
            raise PolicyError(f"{item.spec.path}: refused before any data was fetched:\n" + "\n".join(v.message() for v in blocking))
        return {
            "policy/labels": {t: sorted(report.labels.get(t, ())) for t in (*flow.reached(), *flow.outputs)},
            "policy/purpose": flow.purpose,
            "policy/violations": [v.message() for v in violations],
        }

    return gate


def _current_sources(sources: Sequence[Source]) -> list[Source]:
    """The sources as declared now: one read from a declarations.yaml is read again, so a zone
    changed there since the project loaded is what the gate judges."""
    from nb_assets.project.sources import load_sources_yaml

    current: list[Source] = []
    reread: dict[str, list[Source]] = {}
    for source in sources:
        at_file = (source.declared_at or "").rpartition(":")[0]
        if at_file:
            if at_file not in reread:
                try:
                    reread[at_file] = load_sources_yaml(at_file)
                except NbAssetsError:
                    reread[at_file] = []
            source = next((s for s in reread[at_file] if s.name == source.name), source)
        current.append(source)
    return current
