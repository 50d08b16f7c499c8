"""The policy's model: its zones, the policy itself, and what a notebook reads and writes (a flow).

The rules these follow are in zones.py's docstring; the gate (gate.py) and
propagation (propagation.py) apply them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from nb_assets.errors import UnlabelledSourceError
from nb_assets.spec import below

Mode = Literal["enforce", "log"]
MODES: tuple[Mode, ...] = ("enforce", "log")


@dataclass(frozen=True)
class Zone:
    name: str
    mode: Mode
    description: str = ""


@dataclass(frozen=True)
class Policy:
    path: str
    zones: Mapping[str, Zone]
    purposes: Mapping[str, frozenset[str]]  # purpose -> zones it may read
    tables: Mapping[str, frozenset[str]]  # source table -> labels
    default_labels: frozenset[str] | None = None
    default_purpose: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict)  # table -> line of its label

    def where(self, table: str) -> str:
        return f"{self.path}:{self.lines.get(table, 1)}"

    def source_labels(self, table: str) -> frozenset[str]:
        if table in self.tables:
            return self.tables[table]
        if self.default_labels is None:
            raise UnlabelledSourceError(
                f"{self.path}: source table {table} has no labels; add it under "
                "'tables:' or set 'default_labels:'", table,
            )
        return self.default_labels


@dataclass(frozen=True)
class NotebookFlow:
    name: str
    purpose: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    reclassify: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    # Views ("s.v") and macros ("s.m()") among and below the inputs -> what each reads directly.
    through: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def reached(self) -> tuple[str, ...]:
        """The inputs and every view, macro and table below them."""
        return below(self.through, self.inputs)

    def base_tables(self) -> tuple[str, ...]:
        return tuple(t for t in self.reached() if t not in self.through)
