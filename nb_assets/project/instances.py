"""Parameterized instances: one declared notebook, several parameter sets.

`expand_instances` turns `NotebookAsset(..., instances={...})` into one
declaration per instance before anything is parsed, and `instance_spec` gives
each instance's parsed notebook its own name and output tables, so the rest of
the pipeline (policy, lineage, assets, runs) sees ordinary notebooks. The
notebook still writes `output("mart.revenue", df)`; the host loads that file
into the instance's table (`Output.written_as`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from nb_assets.project.declaration import NotebookAsset, at
from nb_assets.errors import DeclarationError
from nb_assets.inbox.contract import TABLE_NAME
from nb_assets.spec import NotebookSpec, Output, notebook_name

INSTANCE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def expand_instances(notebooks: Sequence[NotebookAsset]) -> tuple[list[NotebookAsset], list[str]]:
    """One declaration per instance (others as they are), and the problems found."""
    expanded: list[NotebookAsset] = []
    problems: list[str] = []
    for decl in notebooks:
        if not decl.instances:
            expanded.append(decl)
            continue
        if not isinstance(decl.instances, Mapping):
            problems.append(at(decl, f"{decl.path}: instances= maps each instance name to its parameters, e.g. {{emea: {{region: EMEA}}}}"))
            continue
        if decl.instance is not None:
            problems.append(at(decl, f"{decl.path}: instance= is set by instances=; declare instances={{name: params}} instead"))
            continue
        for name, params in decl.instances.items():
            if not isinstance(name, str) or not INSTANCE_NAME.match(name):
                problems.append(at(decl, f"{decl.path}: instance name {name!r} must be lowercase letters, digits and _ (e.g. 'emea')"))
                continue
            if not isinstance(params, dict):
                problems.append(at(decl, f"{decl.path} (instance {name!r}): parameters must be a dict, got {type(params).__name__}"))
                continue
            group = f"{decl.group or notebook_name(decl.path)}_{name}"
            expanded.append(replace(decl, instances={}, instance=name, params={**decl.params, **params}, group=group))
    return expanded, problems


def label(decl: NotebookAsset, path: str) -> str:
    """How messages name a notebook: its path, plus the instance when it is one."""
    return f"{path} (instance {decl.instance!r})" if decl.instance else path


def instance_spec(spec: NotebookSpec, decl: NotebookAsset) -> NotebookSpec:
    """The notebook as this declaration runs it: its instance's name and output tables."""
    where = label(decl, spec.path)
    unknown = sorted(set(decl.outputs) - set(spec.output_tables))
    if unknown:
        raise DeclarationError(f"{where}: outputs= maps {unknown}, which the notebook does not write (it writes: {', '.join(spec.output_tables) or 'nothing'})")
    if not decl.instance and not decl.outputs:
        return spec
    values: dict[str, Any] = {**{p.name: p.default for p in spec.parameters}, **decl.params, "instance": decl.instance}
    outputs = tuple(_mapped(o, decl, values, where) for o in spec.outputs)
    name = f"{spec.name}_{decl.instance}" if decl.instance else spec.name
    return replace(spec, name=name, outputs=outputs)


def _mapped(output: Output, decl: NotebookAsset, values: dict[str, Any], where: str) -> Output:
    template = decl.outputs.get(output.table) or (f"{output.table}_{{instance}}" if decl.instance else output.table)
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    missing = [f for f in fields if f not in values or values[f] is None]
    if missing:
        known = ", ".join(k for k, v in values.items() if v is not None)
        raise DeclarationError(f"{where}: output template {template!r} names {missing}, which are not parameters (known: {known})")
    try:
        table = template.format(**values).lower()
    except (ValueError, IndexError, KeyError) as exc:
        raise DeclarationError(f"{where}: output template {template!r} is not a format string: {exc}") from exc
    if not TABLE_NAME.match(table):
        raise DeclarationError(f"{where}: output {output.table} maps to {table!r}, which is not a schema.table name (lowercase letters, digits, _)")
    return replace(output, table=table, written_as=output.table if table != output.table else None)
