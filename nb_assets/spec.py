"""Frozen descriptions of a notebook, as parsed; no Dagster, no Docker.

Cell numbers are 1-based positions in the notebook file as saved (what a
person counts in Jupyter); lines are 1-based within the cell's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Cell:
    number: int
    cell_type: str  # "code" | "markdown" | "raw"
    source: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    cell: int | None = None
    line: int | None = None

    def describe(self, notebook: str) -> str:
        where = f"cell {self.cell}" if self.cell is not None else "notebook"
        if self.line is not None:
            where += f", line {self.line}"
        return f"{notebook} ({where}): [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # "int" | "float" | "str" | "bool" | "list" | "dict" | "none"
    default: Any
    cell: int


@dataclass(frozen=True)
class SqlInput:
    name: str
    query: str
    tables: tuple[str, ...]  # "schema.table", lowercased
    params: tuple[str, ...]  # `$name` placeholders, in order of first use
    cell: int
    columns: tuple[tuple[str, str], ...] = ()  # (table, column) pairs the query reads


@dataclass(frozen=True)
class Output:
    table: str  # "schema.table", lowercased
    cell: int
    line: int


@dataclass(frozen=True)
class NotebookSpec:
    path: str
    name: str
    content_hash: str
    description: str | None
    cells: tuple[Cell, ...]
    parameters: tuple[Param, ...] = ()
    inputs: tuple[SqlInput, ...] = ()
    outputs: tuple[Output, ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def input_tables(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for sql_input in self.inputs:
            for table in sql_input.tables:
                seen.setdefault(table, None)
        return tuple(seen)

    @property
    def output_tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.table for o in self.outputs))

    def parameter(self, name: str) -> Param | None:
        return next((p for p in self.parameters if p.name == name), None)
