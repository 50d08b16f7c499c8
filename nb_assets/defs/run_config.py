"""A notebook asset's Dagster run config, generated from its `parameters` cell.

Each parameter becomes an optional field of the parameter's type, so Dagster
checks a launchpad override before the run starts: an unknown name or a value
of the wrong type is refused, naming the parameter. A field left out keeps the
declared value (`params=`, the instance's, else the notebook's default).

A plain config schema (`dg.Field`s), not a generated `dg.Config` class: one
pydantic model per notebook cost ~1.3 ms each at load (benchmarks/load_time.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from nb_assets.project.declaration import PARTITION_PARAM, NotebookAsset
from nb_assets.spec import NotebookSpec

_TYPES: dict[str, Any] = {
    "int": dg.Int,
    "float": dg.Float,
    "str": dg.String,
    "bool": dg.Bool,
    "list": [dg.Any],
    "dict": dg.Permissive(),
    "none": dg.Any,
}


def overridable(spec: NotebookSpec, decl: NotebookAsset) -> list[str]:
    """The parameters run config may set: all but a partitioned notebook's day."""
    return [p.name for p in spec.parameters if not (decl.partitions and p.name == PARTITION_PARAM)]


def run_config_schema(spec: NotebookSpec, decl: NotebookAsset) -> dict[str, dg.Field]:
    """One optional field per overridable parameter, typed by its default."""
    declared = {**{p.name: p.default for p in spec.parameters}, **decl.params}
    names = set(overridable(spec, decl))
    return {
        p.name: dg.Field(dg.Noneable(_TYPES[p.type]), is_required=False, description=f"{p.type}; left out: {declared.get(p.name)!r}")
        for p in spec.parameters
        if p.name in names
    }


def overrides(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields the run's config set (None means left out)."""
    return {name: value for name, value in (config or {}).items() if value is not None}
