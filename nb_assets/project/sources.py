"""The project's source registry meets its notebooks: what each reads must be declared,
its location's `$params` must be the notebook's, and its zones label it for the policy
exactly as `tables:` labels a source table. Dagster-free (the CLI runs the same checks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from nb_assets.errors import DeclarationError
from nb_assets.policy.zones import Policy
from nb_assets.sources.model import Source, duplicate_names, find_source, is_relation
from nb_assets.spec import NotebookSpec

_YAML_FIELDS = ("name", "url", "path", "connection", "table", "format", "zones", "headers", "allow_private", "schema", "poll_s")


def registry_problems(sources: Sequence[Source]) -> list[str]:
    problems = [f"source {name!r} is declared twice; one name, one source" for name in duplicate_names(sources)]
    problems.extend(f"sources=[...] holds {type(s).__name__}, not a Source" for s in sources if not isinstance(s, Source))
    return problems


def notebook_source_problems(spec: NotebookSpec, sources: Sequence[Source], where: str) -> list[str]:
    """Each source `spec` reads that is not declared, or whose location names a parameter the notebook lacks."""
    problems: list[str] = []
    cells = source_cells(spec)
    params = {p.name for p in spec.parameters}
    for name in spec.sources:
        source = find_source(sources, name)
        cell = f"cell {cells.get(name)}: " if name in cells else ""
        if source is None:
            declared = ", ".join(sorted(s.name for s in sources)) or "none"
            problems.append(
                f"{where}: {cell}reads source {name!r}, which the project does not declare; add "
                f"`Source({name!r}, url=... or path=..., zones=[...])` to sources=[...] in definitions.py "
                f"(or under `sources:` in declarations.yaml); declared: {declared}"
            )
            continue
        absent = [p for p in source.params if p not in params]
        if absent:
            problems.append(
                f"{where}: {cell}source {name!r} binds ${', $'.join(absent)} in its location, which the notebook's "
                "parameters cell does not define"
            )
    return problems


def source_cells(spec: NotebookSpec) -> dict[str, int]:
    """Each source `spec` reads → the first cell reading it (a `%%source` cell, else a SQL input)."""
    cells = {r.source: r.cell for r in spec.source_reads}
    for sql_input in spec.inputs:
        for table in sql_input.tables:
            name = table.partition(".")[2]
            if is_relation(table) and name not in cells:
                cells[name] = sql_input.cell
    return cells


def with_source_zones(policy: Policy, sources: Iterable[Source]) -> Policy:
    """The policy with each declared source labelled by its zones (added to any `tables:` labels for it)."""
    tables = dict(policy.tables)
    for source in sources:
        tables[source.relation] = frozenset(source.zones) | tables.get(source.relation, frozenset())
    return replace(policy, tables=tables)


def load_sources_yaml(path: str | Path) -> list[Source]:
    """The `sources:` list of a declarations.yaml (a missing file or key declares none); errors name the line."""
    path = Path(path)
    if not path.exists():
        return []
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return []
    node = next((v for k, v in root.value if k.value == "sources"), None)
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise DeclarationError(f"{path}:{node.start_mark.line + 1}: sources: takes a list of sources")
    found: list[Source] = []
    for item in node.value:
        at = f"{path}:{item.start_mark.line + 1}"
        value: Any = yaml.safe_load(yaml.serialize(item))
        if not isinstance(value, dict) or "name" not in value:
            raise DeclarationError(f"{at}: a source is a mapping with at least name: and a location")
        unknown = sorted(set(value) - set(_YAML_FIELDS))
        if unknown:
            raise DeclarationError(f"{at}: unknown key '{unknown[0]}'; a source takes: {', '.join(_YAML_FIELDS)}")
        try:
            found.append(Source(**value, declared_at=at))
        except TypeError as exc:
            raise DeclarationError(f"{at}: invalid source: {exc}") from exc
    return found
