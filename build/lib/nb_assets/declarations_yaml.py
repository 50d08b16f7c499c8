"""Notebook declarations kept in YAML, so a tool can add one without rewriting Python.

`nb-assets schedule --write` appends to this file; `definitions.py` loads it
next to (or instead of) its Python list::

    notebooks:
      - path: notebooks/daily_kpis.ipynb
        owners: [a@example.com]
        cron: "0 6 * * *"
        purpose: finance_reporting
        params: {ds: "2026-11-25"}
        limits: {timeout_s: 300}
        reclassify:
          mart.kpis: {zones: [public], reason: aggregates only}

Every key is a `NotebookAsset` field; errors name the file and the line.
No Dagster import: the CLI reads this file too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NoReturn

import yaml

from nb_assets.declaration import DailyPartitions, NotebookAsset, Reclassify
from nb_assets.errors import DeclarationError
from nb_assets.sandbox import SandboxLimits

HEADER = (
    "# Notebook declarations, loaded by definitions.py (nb_assets.load_declarations_yaml).\n"
    "# `nb-assets schedule NOTEBOOK --write` appends here; review changes like code.\n"
)
_FIELDS = {f.name: f for f in dataclasses.fields(NotebookAsset) if f.name != "instance"}  # set by expansion, not by users
_LIMIT_FIELDS = {f.name for f in dataclasses.fields(SandboxLimits)}


def load_declarations_yaml(path: str | Path) -> list[NotebookAsset]:
    """The declarations in `path`; a missing file declares nothing."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DeclarationError(f"{path}:{line}: malformed YAML: {getattr(err, 'problem', None) or err}") from err
    if root is None:
        return []
    reader = _Reader(str(path))
    top = reader.mapping(root, "the declarations file")
    if set(top) - {"notebooks"}:
        reader.fail(root, f"unknown top-level key(s) {sorted(set(top) - {'notebooks'})}; expected 'notebooks:'")
    items = top.get("notebooks")
    if items is None or (isinstance(items, yaml.ScalarNode) and items.value in ("", "null", "~")):
        return []
    if not isinstance(items, yaml.SequenceNode):
        reader.fail(items, "notebooks: must be a list of declarations (- path: ...)")
    return [reader.declaration(node) for node in items.value]


def declaration_yaml(decl: NotebookAsset) -> str:
    """One list item for the file: only the fields that differ from their defaults."""
    fields: dict[str, Any] = {"path": str(decl.path)}
    for name, field in _FIELDS.items():
        if name == "path":
            continue
        value = getattr(decl, name)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        if value == default or value in ((), [], {}):
            continue
        fields[name] = _plain(value)
    text = yaml.safe_dump([fields], sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    return "\n".join(f"  {line}" if line else line for line in text.splitlines()) + "\n"


def append_declaration(path: Path, decl: NotebookAsset) -> None:
    """Add `decl` at the end of the file, leaving what reviewers already read as it is."""
    existing = load_declarations_yaml(path)
    if any(Path(d.path) == Path(decl.path) for d in existing):
        raise DeclarationError(f"{path}: {decl.path} is already declared; edit its entry instead")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if not existing and "notebooks:" not in text:
        text = text or HEADER
        text = text.rstrip("\n") + "\nnotebooks:\n"
    elif not existing:  # `notebooks: []` or an empty key: start the list afresh
        text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("notebooks:"))
        text = text.rstrip("\n") + "\nnotebooks:\n"
    path.write_text(text.rstrip("\n") + "\n" + declaration_yaml(decl), encoding="utf-8")
    load_declarations_yaml(path)  # what was written must read back


def _plain(value: Any) -> Any:
    if isinstance(value, Reclassify):
        return {"zones": list(value.zones), "reason": value.reason}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node, message: str) -> NoReturn:
        raise DeclarationError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        items: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if key.value in items:
                self.fail(key, f"duplicate key '{key.value}' in {what}")
            items[str(key.value)] = value
        return items

    def value(self, node: yaml.Node) -> Any:
        return yaml.safe_load(yaml.serialize(node))

    def declaration(self, node: yaml.Node) -> NotebookAsset:
        fields = self.mapping(node, "a notebook declaration")
        if "path" not in fields:
            self.fail(node, "a notebook declaration needs 'path:'")
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            key = next(k for k, _ in node.value if k.value == unknown[0])
            self.fail(key, f"unknown key '{unknown[0]}'; a declaration takes: {', '.join(_FIELDS)}")
        kwargs: dict[str, Any] = {}
        for name, value_node in fields.items():
            value = self.value(value_node)
            if name == "limits":
                value = self.limits(value_node, value)
            elif name == "reclassify":
                value = self.reclassify(value_node, value)
            elif name == "partitions":
                value = self.partitions(value_node, value)
            kwargs[name] = value
        try:
            return NotebookAsset(**kwargs)
        except (TypeError, ValueError) as exc:
            self.fail(node, f"invalid declaration: {exc}")

    def limits(self, node: yaml.Node, value: Any) -> SandboxLimits:
        if not isinstance(value, dict) or set(value) - _LIMIT_FIELDS:
            self.fail(node, f"limits: takes a mapping of {', '.join(sorted(_LIMIT_FIELDS))}")
        return SandboxLimits(**value)

    def partitions(self, node: yaml.Node, value: Any) -> DailyPartitions:
        if not isinstance(value, dict) or "start" not in value or set(value) - {"start", "column"}:
            self.fail(node, "partitions: takes {start: YYYY-MM-DD, column: ds} (daily partitions)")
        return DailyPartitions(str(value["start"]), str(value.get("column", "ds")))  # YAML reads a bare date as a date

    def reclassify(self, node: yaml.Node, value: Any) -> dict[str, Reclassify]:
        if not isinstance(value, dict) or not all(
            isinstance(v, dict) and set(v) == {"zones", "reason"} for v in value.values()
        ):
            self.fail(node, "reclassify: maps an output table to {zones: [...], reason: ...}")
        return {table: Reclassify(tuple(v["zones"]), str(v["reason"])) for table, v in value.items()}
