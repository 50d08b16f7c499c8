"""A notebook asset's Dagster run config, generated from its `parameters` cell.

Each parameter becomes an optional field of the parameter's type, so Dagster
checks a launchpad override before the run starts: an unknown name or a value
of the wrong type is refused, naming the parameter. A field left out keeps the
declared value (`params=`, the instance's, else the notebook's default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import dagster as dg
import pydantic

from nb_assets.declaration import PARTITION_PARAM, NotebookAsset
from nb_assets.spec import NotebookSpec

_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list": list[Any],
    "dict": dict[str, Any],
    "none": Any,
}


def overridable(spec: NotebookSpec, decl: NotebookAsset) -> list[str]:
    """The parameters run config may set: all but a partitioned notebook's day, and
    names a config class cannot hold (private `_x`, pydantic's own attributes)."""
    reserved = set(dir(dg.Config))
    names = [p.name for p in spec.parameters if not p.name.startswith("_") and p.name not in reserved]
    return [n for n in names if not (decl.partitions and n == PARTITION_PARAM)]


def run_config_class(spec: NotebookSpec, decl: NotebookAsset) -> type[dg.Config]:
    """A `dg.Config` subclass with one optional field per overridable parameter."""
    declared = {**{p.name: p.default for p in spec.parameters}, **decl.params}
    fields: dict[str, Any] = {}
    for param in spec.parameters:
        if param.name not in overridable(spec, decl):
            continue
        fields[param.name] = (
            Optional[_TYPES[param.type]],
            pydantic.Field(default=None, description=f"{param.type}; left out: {declared.get(param.name)!r}"),
        )
    return pydantic.create_model(f"{spec.name}_parameters", __base__=dg.Config, **fields)  # type: ignore[call-overload,no-any-return]


def overrides(config: dg.Config) -> dict[str, Any]:
    """The fields the run's config set (None means left out)."""
    values = {name: getattr(config, name, None) for name in type(config).model_fields}
    return {name: value for name, value in values.items() if value is not None}
