"""The YAML schema of a `NotebookComponent`, generated from the `NotebookAsset` dataclass.

There is one declaration model (project/declaration.py). This module walks its
fields' type hints and derives a pydantic model (a `dg.Model`: unknown keys are
refused, so `dg check defs` names the line of a misspelt or unknown attribute),
and converts a validated model back into the very dataclass the Python API
builds. Nested dataclasses (`SandboxLimits`, `DailyPartitions`, `Reclassify`)
become nested models the same way; a field whose YAML form is not its Python
shape takes the form `declarations.yaml` already uses (`YAML_FORMS`), so both
YAML files read alike. A new field in `NotebookAsset` appears here by itself.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import dagster as dg
import pydantic

from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.declaration_output_checks import checks_from_yaml

# Set by the loader, never by a user (declarations_yaml skips the same two; a Source's declared_at likewise).
NOT_ATTRIBUTES = frozenset({"instance", "declared_at"})
_SIMPLE = (str, int, float, bool, type(None))

Convert = Callable[[Any], Any]


def _as_checks(value: Any) -> Any:
    try:
        return checks_from_yaml(value)
    except ValueError as exc:  # pydantic reports a ValueError from a validator with the attribute's path
        raise ValueError(str(exc)) from exc


# field name → (its YAML type, the conversion to the dataclass's value): the form declarations.yaml reads.
YAML_FORMS: dict[str, tuple[Any, Convert]] = {
    "checks": (dict[str, list[dict[str, Any]]], _as_checks),
}


def yaml_type(hint: Any, models: dict[type, type[pydantic.BaseModel]]) -> tuple[Any, Convert]:
    """The YAML-facing type of a Python type hint and how to convert a validated value back."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint in _SIMPLE:
        return hint, _same
    if hint is Path:
        return str, _same  # the declaration takes `str | Path`; paths stay as written
    if origin is Literal:
        return hint, _same
    if origin in (Union, types.UnionType):
        parts = [yaml_type(a, models) for a in args]
        kinds = list(dict.fromkeys(t for t, _ in parts))
        if len(kinds) == 1:
            return kinds[0], parts[0][1]
        non_none = [(t, c) for t, c in parts if t is not type(None)]
        if len(non_none) == 1:
            inner, convert = non_none[0]
            return inner | None, lambda v: None if v is None else convert(v)
        return Union[tuple(kinds)], _same  # noqa: UP007  # only plain types reach here
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        item = args[0] if args else Any
        inner, convert = yaml_type(item, models)
        return list[inner], lambda v: tuple(convert(i) for i in v)  # type: ignore[valid-type]
    if origin in (dict, Mapping) or hint is dict:
        value = args[1] if args else Any
        inner, convert = yaml_type(value, models)
        return dict[str, inner], lambda v: {k: convert(i) for k, i in v.items()}  # type: ignore[valid-type]
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        model = model_of(hint, models, skip=NOT_ATTRIBUTES)  # a Source's declared_at too
        return model, lambda v: from_model(hint, v, models)
    raise TypeError(f"NotebookComponent: no YAML form for {hint!r}; add one to YAML_FORMS")


def _same(value: Any) -> Any:
    return value


def model_of(cls: type, models: dict[type, type[pydantic.BaseModel]] | None = None,
             skip: frozenset[str] = frozenset(), doc: str | None = None) -> type[pydantic.BaseModel]:
    """A `dg.Model` with one attribute per field of dataclass `cls`, each described from its docstring."""
    models = {} if models is None else models
    if cls in models:
        return models[cls]
    hints = typing.get_type_hints(cls)
    described = field_docs(cls.__doc__ or "")
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = YAML_FORMS[f.name][0] if cls is NotebookAsset and f.name in YAML_FORMS else yaml_type(hints[f.name], models)[0]
        fields[f.name] = (kind, pydantic.Field(default=_default(f), description=described.get(f.name)))
    with warnings.catch_warnings():  # Source.schema shadows BaseModel.schema, a deprecated method nobody calls here
        warnings.filterwarnings("ignore", message=r'Field name "schema"', category=UserWarning)
        model = pydantic.create_model(f"{cls.__name__}Attributes", __base__=dg.Model, __doc__=doc or cls.__doc__, **fields)
    models[cls] = model
    return model


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default if isinstance(f.default, _SIMPLE) else None
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return list(value) if isinstance(value, tuple) else value
    return ...  # required (pydantic: a default of Ellipsis)


def from_model(cls: type, model: pydantic.BaseModel, models: dict[type, type[pydantic.BaseModel]] | None = None,
               **extra: Any) -> Any:
    """The dataclass `cls` from a validated model: only the attributes written, so the dataclass's
    own defaults stay the one source of defaults."""
    models = {} if models is None else models
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name in model.model_fields_set:
        raw = getattr(model, name)
        if cls is NotebookAsset and name in YAML_FORMS:
            values[name] = YAML_FORMS[name][1](_plain(raw))
        else:
            values[name] = yaml_type(hints[name], models)[1](raw)
    return cls(**values, **extra)


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, pydantic.BaseModel) else value


def field_docs(doc: str) -> dict[str, str]:
    """`name: text` paragraphs of a dataclass docstring (the project's convention), by field name."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.isidentifier() and not line.startswith(" "):
            current = head
            found[current] = rest.strip()
        elif current and line.startswith("    ") and line.strip():
            found[current] += " " + line.strip()
        else:
            current = None
    return found


def rendered(context: dg.ResolutionContext, model: pydantic.BaseModel) -> Any:
    """`model` with its templates ("{{ env.OWNER }}") rendered by dg, then validated again."""
    return type(model).model_validate(context.resolve_value(model.model_dump(exclude_unset=True)))
