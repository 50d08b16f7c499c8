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

Every key is a `NotebookAsset` field; errors name the file and the line, and
each declaration remembers its line (`declared_at`), so that loading the
project names it too when the declaration breaks a rule. No Dagster import:
the CLI reads this file too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml

from nb_assets.inbox.checks import OutputCheck
from nb_assets.project.declaration import DailyPartitions, NotebookAsset, Reclassify
from nb_assets.project.declaration_output_checks import check_as_yaml, checks_from_yaml
from nb_assets.errors import DeclarationError
from nb_assets.sandbox.base import SandboxLimits

HEADER = (
    "# Notebook declarations, loaded by definitions.py (nb_assets.load_declarations_yaml).\n"
    "# `nb-assets schedule NOTEBOOK --write` appends here; review changes like code.\n"
)
_SET_BY_US = {"instance", "declared_at"}  # set by expansion and by this reader, not by users
_FIELDS = {f.name: f for f in dataclasses.fields(NotebookAsset) if f.name not in _SET_BY_US}
_LIMIT_FIELDS = {f.name for f in dataclasses.fields(SandboxLimits)}
_TOP_KEYS = {"notebooks", "sources"}


def load_declarations_yaml(path: str | Path) -> list[NotebookAsset]:
    """The declarations in `path`; a missing file declares nothing."""
    path = Path(path)
    text = _candidates.get(path.resolve())
    if text is None:
        if not path.exists():
            return []
        text = path.read_text(encoding="utf-8")
    return read_declarations(text, path)


_candidates: dict[Path, str] = {}


@contextmanager
def candidate(path: str | Path, text: str) -> Iterator[None]:
    """While open, `load_declarations_yaml(path)` reads `text` instead of the file: how
    `nb-assets schedule` loads the project with a declaration before writing it."""
    key = Path(path).resolve()
    _candidates[key] = text
    try:
        yield
    finally:
        del _candidates[key]


def read_declarations(text: str, path: Path) -> list[NotebookAsset]:
    """The declarations in `text`, read as the file `path` (errors and `declared_at` name it)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DeclarationError(f"{path}:{line}: malformed YAML: {getattr(err, 'problem', None) or err}") from err
    if root is None:
        return []
    reader = _Reader(str(path))
    top = reader.mapping(root, "the declarations file")
    if set(top) - _TOP_KEYS:  # `sources:` is read by nb_assets.project.sources.load_sources_yaml
        reader.fail(root, f"unknown top-level key(s) {sorted(set(top) - _TOP_KEYS)}; expected 'notebooks:' (and 'sources:')")
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
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(with_declaration(text, path, decl), encoding="utf-8")


def with_declaration(text: str, path: Path, decl: NotebookAsset) -> str:
    """`text` (the file `path`) with `decl` appended; what was there before stays as it is.
    Refuses a notebook the file declares already, naming its entry's line."""
    existing = read_declarations(text, path)
    same = next((d for d in existing if Path(d.path) == Path(decl.path)), None)
    if same is not None:
        raise DeclarationError(already_declared(same, str(path)))
    if not existing and "notebooks:" not in text:
        text = text or HEADER
        text = text.rstrip("\n") + "\nnotebooks:\n"
    elif not existing:  # `notebooks: []` or an empty key: start the list afresh
        text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("notebooks:"))
        text = text.rstrip("\n") + "\nnotebooks:\n"
    text = text.rstrip("\n") + "\n" + declaration_yaml(decl)
    read_declarations(text, path)  # what is written must read back
    return text


def already_declared(decl: NotebookAsset, where: str) -> str:
    """Refusing to declare a notebook twice, with what to do instead. `where`: the file
    declaring it, when `decl` was not read from YAML (and so has no line)."""
    return (
        f"{decl.declared_at or where}: {decl.path} is already declared there. To change its owners, trigger or "
        "parameters, edit that entry (to run it with other parameters too, give it instances:); to schedule it "
        "a second time, copy the notebook to a new file name and schedule the copy"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, OutputCheck):
        return check_as_yaml(value)
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
        kwargs: dict[str, Any] = {"declared_at": f"{self.path}:{node.start_mark.line + 1}"}
        for name, value_node in fields.items():
            value = self.value(value_node)
            if name == "limits":
                value = self.limits(value_node, value)
            elif name == "reclassify":
                value = self.reclassify(value_node, value)
            elif name == "partitions":
                value = self.partitions(value_node, value)
            elif name == "checks":
                try:
                    value = checks_from_yaml(value)
                except ValueError as exc:
                    self.fail(value_node, str(exc))
            kwargs[name] = value
        try:
            return NotebookAsset(**kwargs)
        except (TypeError, ValueError) as exc:
            self.fail(node, f"invalid declaration: {exc}")

    def limits(self, node: yaml.Node, value: Any) -> SandboxLimits:
        if not isinstance(value, dict) or set(value) - _LIMIT_FIELDS:
            self.fail(node, f"limits: takes a mapping of {', '.join(sorted(_LIMIT_FIELDS))}")
        try:
            return SandboxLimits(**value)
        except ValueError as exc:
            self.fail(node, str(exc))

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
