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


def compose(text: str, path: Path) -> yaml.Node | None:
    """`text`'s YAML node tree (marks give each node's line), or an error naming `path` and the line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DeclarationError(f"{path}:{line}: malformed YAML: {getattr(err, 'problem', None) or err}") from err


def read_declaration(node: yaml.Node, path: Path) -> NotebookAsset:
    """One declaration's mapping node, read as `path` (also a component's `attributes:`, which take the same keys)."""
    return _Reader(str(path)).declaration(node)


def read_declarations(text: str, path: Path) -> list[NotebookAsset]:
    """The declarations in `text`, read as the file `path` (errors and `declared_at` name it)."""
    return [read_declaration(node, path) for node in _entries(compose(text, path), path)]


def _entries(root: yaml.Node | None, path: Path) -> list[yaml.Node]:
    """The nodes of the `notebooks:` list (each a declaration's mapping)."""
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
    return list(items.value)


def declaration_fields(decl: NotebookAsset) -> dict[str, Any]:
    """The declaration as YAML's plain values: only the fields that differ from their defaults."""
    fields: dict[str, Any] = {"path": str(decl.path)}
    for name, field in _FIELDS.items():
        if name == "path":
            continue
        value = getattr(decl, name)
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        if value == default or value in ((), [], {}):
            continue
        fields[name] = _plain(value)
    return fields


def declaration_yaml(decl: NotebookAsset) -> str:
    """One list item for the file: only the fields that differ from their defaults."""
    text = yaml.safe_dump([declaration_fields(decl)], sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
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


def with_updated_declaration(text: str, path: Path, decl: NotebookAsset) -> str:
    """`text` (the file `path`) with the entry declaring `decl.path` replaced by `decl`, in place:
    every byte before and after that entry stays as it is (comments inside it go with it).
    Refuses a notebook the file does not declare, and an entry that does not start its line with `- `."""
    entries = _entries(compose(text, path), path)
    same = lambda a, b: (path.parent / a).resolve() == (path.parent / b).resolve()  # noqa: E731 - ./x, ../p/x, /abs/x
    node = next((n for n in entries if same(read_declaration(n, path).path, decl.path)), None)
    if node is None:
        raise DeclarationError(f"{path}: declares no {decl.path}, so there is nothing to update; "
                               "declare it with `nb-assets schedule NOTEBOOK --write`")
    lines = text.splitlines(keepends=True)
    first, last = node.start_mark.line, last_line(node)
    before_key = lines[first][: node.start_mark.column].rstrip()
    if not before_key.endswith("-") or before_key[:-1].strip():  # e.g. an item of a flow list, `notebooks: [{...}]`
        raise DeclarationError(f"{path}:{first + 1}: {decl.path}'s entry does not start its own line with `- `, so it "
                               "cannot be replaced in place; edit it by hand")
    indent = " " * len(before_key[:-1])
    entry = "".join(f"{indent}{line[2:]}" if line.strip() else line for line in declaration_yaml(decl).splitlines(keepends=True))
    updated = "".join(lines[:first]) + entry + "".join(lines[last + 1:])
    after = read_declarations(updated, path)  # what is written must read back, the others as they were
    others = lambda found: [d for d in found if not same(d.path, decl.path)]  # noqa: E731
    if others(after) != others(read_declarations(text, path)) or len(after) != len(entries):
        raise DeclarationError(f"{path}:{first + 1}: replacing {decl.path}'s entry would change other entries; edit it by hand")
    return updated


def last_line(node: yaml.Node) -> int:
    """The last line (0-based) of `node`'s own text: a block collection ends where its last value ends,
    not at the next token (which may be a comment about the next entry)."""
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        return last_line(last[1] if isinstance(last, tuple) else last)
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def already_declared(decl: NotebookAsset, where: str) -> str:
    """Refusing to declare a notebook twice, with what to do instead. `where`: the file
    declaring it, when `decl` was not read from YAML (and so has no line)."""
    return (
        f"{decl.declared_at or where}: {decl.path} is already declared there. To change its owners, trigger or "
        "parameters, run the same command with --update (it replaces that entry), or edit that entry (to run it "
        "with other parameters too, give it instances:); to schedule it a second time, copy the notebook to a new "
        "file name and schedule the copy"
    )


def declared_in_python(decl: NotebookAsset, definitions: Path) -> str:
    """Why a notebook declared in the definitions' Python code cannot be updated by a tool, naming
    the line that names it there (when one does)."""
    relative = str(decl.path)
    text = definitions.read_text(encoding="utf-8") if definitions.is_file() else ""
    line = next((n for n, s in enumerate(text.splitlines(), 1) if f'"{relative}"' in s or f"'{relative}'" in s), None)
    return (
        f"{definitions}{f':{line}' if line else ''}: {relative} is already declared there, in Python, which "
        "nb-assets does not rewrite: edit that entry there, or move it to declarations.yaml (then --update can change it)"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, OutputCheck):
        return check_as_yaml(value)
    if isinstance(value, Reclassify):
        return {"zones": list(value.zones), "reason": value.reason}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # limits, partitions: what differs from the defaults
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.default is dataclasses.MISSING or getattr(value, f.name) != f.default}
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
