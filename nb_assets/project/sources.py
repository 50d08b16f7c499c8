"""The project's source registry meets its notebooks: what each reads must be declared,
its location's `$params` must be the notebook's, and its zones label it for the policy
exactly as `tables:` labels a source table. Dagster-free (the CLI runs the same checks)."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from nb_assets.errors import DeclarationError
from nb_assets.policy.zones import Policy
from nb_assets.sources.model import PARAM, Source, duplicate_names, find_source, is_relation
from nb_assets.spec import NotebookSpec
from nb_assets.sql.source_calls import is_absolute, is_url, placed_hint

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
                f"(or under `sources:` in declarations.yaml, loaded with load_sources_yaml); declared: {declared}"
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


def with_source_hints(spec: NotebookSpec, sources: Sequence[Source], base_dir: str | Path) -> NotebookSpec:
    """`spec` with each hint to declare a file it reads literally placed in the project at `base_dir`:
    the file named relative to the project, and, when a declared source already holds it (a folder,
    a glob, the same file or URL), the hint is to read that source instead."""
    root = Path(base_dir).resolve()
    folder = Path(spec.path).resolve().parent.as_posix()

    def covering(location: str) -> tuple[str, str] | None:
        found = next((s for s in sources if isinstance(s, Source) and _holds(s, location, root)), None)
        return (found.name, found.location) if found else None

    findings = tuple(replace(f, message=placed_hint(f.message, folder, root.as_posix(), covering)) for f in spec.findings)
    return spec if findings == spec.findings else replace(spec, findings=findings)


def _holds(source: Source, location: str, root: Path) -> bool:
    """Whether `location` (a URL, or a path relative to `root` or absolute) is one the source reads;
    a `$param` in the source's location matches any value."""
    declared = source.url or source.path
    if declared is None or source.connection is not None or is_url(declared) != is_url(location):
        return False
    if is_url(declared):
        return declared == location or ("$" in declared and fnmatch.fnmatchcase(location, _pattern(declared)))

    def absolute(path: str) -> str:
        return posixpath.normpath(path if is_absolute(path) else posixpath.join(root.as_posix(), path))
    target, pattern = absolute(location), absolute(_pattern(declared))
    if declared.endswith("/") or (not any(c in pattern for c in "*?[") and (root / declared).is_dir()):
        return target.startswith(pattern.rstrip("/") + "/")
    return fnmatch.fnmatchcase(target, pattern)


def _pattern(location: str) -> str:
    """A location with each `$param` as a wildcard."""
    return PARAM.sub("*", location)


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
    return [] if node is None else sources_from_node(node, path)


def sources_from_node(node: yaml.Node, path: Path) -> list[Source]:
    """The sources of a YAML list (declarations.yaml's `sources:`, a NotebookProjectSettings' attribute);
    errors name `path` and the line."""
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
