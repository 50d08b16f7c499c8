"""Notebook parameters: check run-time values against the `parameters` cell.

Unknown names are an error, not papermill's silent no-op, and values must fit
the type of the default (an int is accepted for a float default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from nb_assets.errors import DeclarationError
from nb_assets.spec import NotebookSpec, Param

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "str": (str,),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


def resolve_parameters(spec: NotebookSpec, overrides: Mapping[str, Any], where: str | None = None) -> dict[str, Any]:
    """Defaults overlaid with `overrides`; raises DeclarationError naming every problem
    (and `where` they came from: the notebook, or the notebook and its instance)."""
    problems = [f"unknown parameter {name!r}" for name in overrides if spec.parameter(name) is None]
    values = {p.name: p.default for p in spec.parameters}
    for name, value in overrides.items():
        param = spec.parameter(name)
        if param is None:
            continue
        if not _fits(param, value):
            problems.append(f"parameter {name!r} expects {param.type}, got {type(value).__name__} {value!r}")
        values[name] = list(value) if isinstance(value, tuple) else value
    if problems:
        known = ", ".join(p.name for p in spec.parameters) or "none"
        raise DeclarationError(f"{where or spec.path}: " + "; ".join(problems) + f" (parameters: {known})")
    return values


def _fits(param: Param, value: Any) -> bool:
    if param.type == "none":
        return _json_safe(value)
    if isinstance(value, bool) and param.type != "bool":
        return False  # bool is an int subclass, but True is no row count
    return isinstance(value, _PY_TYPES[param.type]) and _json_safe(value)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def cli_assignments(items: Iterable[str], flag: str) -> dict[str, str]:
    """`K=V` command-line items as a dict; an item without `=` or without a name is refused,
    naming the flag (`nb-assets run --param`, `schedule --param/--instance/--output`)."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DeclarationError(f"{flag} takes K=V, got {item!r}")
        pairs[name] = value
    return pairs


def coerce_cli_value(spec: NotebookSpec, name: str, raw: str) -> Any:
    """`--param k=v` text → a value of the parameter's type."""
    param = spec.parameter(name)
    if param is None:
        known = ", ".join(p.name for p in spec.parameters) or "none"
        raise DeclarationError(f"{spec.path}: unknown parameter {name!r} (parameters: {known})")
    try:
        if param.type == "int":
            return int(raw)
        if param.type == "float":
            return float(raw)
        if param.type == "bool":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return lowered in ("true", "1", "yes")
        if param.type in ("list", "dict"):
            return json.loads(raw)
        if param.type == "none":
            return _json_or_text(raw)
        return raw
    except ValueError as exc:
        raise DeclarationError(f"{spec.path}: parameter {name!r} expects {param.type}, got {raw!r}") from exc


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
