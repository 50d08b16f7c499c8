"""Reading a policy file: YAML → `Policy`, every error naming ``path:line``.

The file's format and rules are described in policy.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn

import yaml

from nb_assets.errors import PolicyError
from nb_assets.policy.zones import MODES, TAG_PART, Policy, Zone

_TOP_KEYS = ("zones", "purposes", "default_purpose", "tables", "default_labels")
_ZONE_KEYS = ("mode", "description")


def load_policy(path: str | Path) -> Policy:
    """The policy in the YAML file at `path`; a PolicyError names the line of the first problem."""
    src = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(f"{src}: cannot read policy file: {err}") from err
    try:
        # compose keeps node marks, so every later error can name its line
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(err, "problem", None) or str(err)
        raise PolicyError(f"{src}:{line}: malformed YAML: {problem}") from err
    if root is None:
        raise PolicyError(f"{src}:1: empty policy file; declare at least 'zones:' and 'purposes:'")
    return _Reader(src).policy(root)


class _Reader:
    """Walks composed YAML nodes, failing with path:line on the first problem."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node, message: str) -> NoReturn:
        raise PolicyError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(
        self, node: yaml.Node, what: str, allowed: Sequence[str] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = self.scalar(key, f"a key in {what}")
            if allowed is not None and name not in allowed:
                self.fail(key, f"unknown key '{name}' in {what}; expected one of: {', '.join(allowed)}")
            if name in items:
                self.fail(key, f"duplicate key '{name}' in {what}")
            items[name] = (key, value)
        return items

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{what} must be a single value")
        return str(node.value).strip()

    def name(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what)
        if not TAG_PART.match(value):
            self.fail(node, f"{what} '{value}' must be 1-63 characters of letters, digits, '_', '.', '-'")
        return value

    def zone_list(
        self, node: yaml.Node, what: str, zones: Mapping[str, Zone], allow_empty: bool
    ) -> frozenset[str]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list of zones, e.g. [public]")
        if not node.value and not allow_empty:
            self.fail(node, f"{what} is empty; give at least one zone")
        names = set()
        for item in node.value:
            name = self.scalar(item, f"an entry of {what}")
            if name not in zones:
                self.fail(item, f"unknown zone '{name}' in {what}; declared zones: {', '.join(zones)}")
            names.add(name)
        return frozenset(names)

    def zone(self, key: yaml.Node, node: yaml.Node) -> Zone:
        name = self.name(key, "zone name")
        fields = self.mapping(node, f"zones.{name}", allowed=_ZONE_KEYS)
        if "mode" not in fields:
            self.fail(node, f"zones.{name} needs 'mode: enforce' or 'mode: log'")
        mode_node = fields["mode"][1]
        mode = self.scalar(mode_node, f"zones.{name}.mode")
        if mode not in MODES:
            self.fail(mode_node, f"zones.{name}.mode is '{mode}'; expected 'enforce' or 'log'")
        description = ""
        if "description" in fields:
            description = self.scalar(fields["description"][1], f"zones.{name}.description")
        return Zone(name, mode, description)  # type: ignore[arg-type]  # checked against MODES

    def policy(self, root: yaml.Node) -> Policy:
        top = self.mapping(root, "the policy file", allowed=_TOP_KEYS)
        for required in ("zones", "purposes"):
            if required not in top:
                self.fail(root, f"missing required key '{required}:'")
        zones = {z.name: z for z in (self.zone(k, v) for k, v in self.mapping(top["zones"][1], "zones").values())}
        if not zones:
            self.fail(top["zones"][1], "zones: declares no zone")
        purposes = {
            self.name(k, "purpose name"): self.zone_list(v, f"purposes.{name}", zones, allow_empty=True)
            for name, (k, v) in self.mapping(top["purposes"][1], "purposes").items()
        }
        default_purpose = None
        if "default_purpose" in top:
            node = top["default_purpose"][1]
            default_purpose = self.scalar(node, "default_purpose")
            if default_purpose not in purposes:
                self.fail(node, f"default_purpose '{default_purpose}' is not declared under purposes:")
        tables: dict[str, frozenset[str]] = {}
        lines: dict[str, int] = {}
        if "tables" in top:
            for name, (k, v) in self.mapping(top["tables"][1], "tables").items():
                table = name.lower()  # table names are compared lowercased everywhere
                if table in tables:
                    self.fail(k, f"table {table} is labelled twice")
                tables[table] = self.zone_list(v, f"tables.{name}", zones, allow_empty=False)
                lines[table] = k.start_mark.line + 1
        default_labels = None
        if "default_labels" in top:
            default_labels = self.zone_list(top["default_labels"][1], "default_labels", zones, False)
        return Policy(
            path=self.path,
            zones=MappingProxyType(zones),
            purposes=MappingProxyType(purposes),
            tables=MappingProxyType(tables),
            default_labels=default_labels,
            default_purpose=default_purpose,
            lines=MappingProxyType(lines),
        )
