"""Frozen descriptions of a notebook, as parsed; no Dagster, no Docker.

Cell numbers are 1-based positions in the notebook file as saved (what a
person counts in Jupyter); lines are 1-based within the cell's source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the in-box model of output checks (inbox/checks.py), a sibling layer
    from nb_assets.inbox.checks import OutputCheck

Severity = Literal["error", "warning"]


def notebook_name(path: str | Path) -> str:
    """A Dagster-safe name from the file name: `Daily Revenue.ipynb` → `daily_revenue`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", Path(path).stem).strip("_").lower()
    return name if name and not name[0].isdigit() else f"nb_{name}"


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
class SqlCall:
    """A function a query calls, which the warehouse's catalog may define as a macro."""

    name: str  # as written, lowercased: "shared.ppl" or "ppl"
    in_from: bool  # a table function (FROM, JOIN, LATERAL), not a scalar call
    line: int | None = None  # 1-based, within the query text
    column: int | None = None


@dataclass(frozen=True)
class SqlInput:
    name: str
    query: str
    tables: tuple[str, ...]  # "schema.table", lowercased: the relations the query names
    params: tuple[str, ...]  # `$name` placeholders, in order of first use
    cell: int
    columns: tuple[tuple[str, str], ...] = ()  # (table, column) pairs the query reads
    calls: tuple[SqlCall, ...] = ()  # table functions not known to read nothing, and every scalar call


@dataclass(frozen=True)
class SourceRead:
    """A `%%source <var> <source>` cell: the declared source's fetched copy, bound to `var`."""

    var: str
    source: str  # the declared source's name; lineage names it "source.<name>"
    cell: int

    @property
    def relation(self) -> str:
        return f"source.{self.source}"  # sources.model.relation; spec is the lowest layer and imports nothing


@dataclass(frozen=True)
class SeenThrough:
    """A notebook's reads once the warehouse's views and table macros are seen through.

    Views are named "schema.view" and macros "schema.macro()"; anything not in
    `through` is a base table.
    """

    warehouse: str  # the catalog this was resolved against
    reads: tuple[tuple[str, tuple[str, ...]], ...]  # SQL input name -> the relations and macros it names
    through: tuple[tuple[str, tuple[str, ...]], ...]  # each view / macro reached -> what it reads directly

    @property
    def named(self) -> tuple[str, ...]:
        """What the SQL inputs name, resolved: tables, views, macros; in order of first use."""
        return tuple(dict.fromkeys(name for _, names in self.reads for name in names))

    @property
    def base_tables(self) -> tuple[str, ...]:
        """Every table reached through views and macros, in order of first reach."""
        through = dict(self.through)
        return tuple(name for name in below(through, self.named) if name not in through)


def below(through: Mapping[str, Sequence[str]], names: Iterable[str]) -> tuple[str, ...]:
    """`names` and everything read below them through views and macros, depth first, each once."""
    found: dict[str, None] = {}
    stack = list(reversed(list(names)))
    while stack:
        name = stack.pop()
        if name not in found:
            found[name] = None
            stack.extend(reversed(through.get(name, ())))
    return tuple(found)


@dataclass(frozen=True)
class Output:
    table: str  # "schema.table", lowercased: the warehouse table it loads into
    cell: int
    line: int
    written_as: str | None = None  # the name the notebook passes to output(), when an instance maps it elsewhere
    checks: tuple[OutputCheck, ...] = ()  # run inside the load, before it commits (docs/checks.md)


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
    seen_through: SeenThrough | None = None  # set once resolved against a warehouse catalog
    source_reads: tuple[SourceRead, ...] = ()  # `%%source` cells

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def input_tables(self) -> tuple[str, ...]:
        """The tables the notebook reads: base tables once views and macros are
        seen through, else the relations its SQL names (views look like tables)."""
        if self.seen_through is not None:
            return _with_sources(self.seen_through.base_tables, self.source_reads)
        return self.named_relations

    @property
    def named_relations(self) -> tuple[str, ...]:
        """What the SQL inputs name: tables and views, plus macros ("s.m()") once resolved."""
        if self.seen_through is not None:
            return _with_sources(self.seen_through.named, self.source_reads)
        seen: dict[str, None] = {}
        for sql_input in self.inputs:
            for table in sql_input.tables:
                seen.setdefault(table, None)
        return _with_sources(tuple(seen), self.source_reads)

    @property
    def sources(self) -> tuple[str, ...]:
        """The declared sources the notebook reads, by `%%source` cells and `source('...')` in SQL."""
        names = [t.partition(".")[2] for i in self.inputs for t in i.tables if t.startswith("source.")]  # as relation()
        return tuple(dict.fromkeys([*(r.source for r in self.source_reads), *names]))

    @property
    def output_tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(o.table for o in self.outputs))

    @property
    def output_names(self) -> dict[str, str]:
        """The name each output is written under in the sandbox → the table it loads into."""
        return {o.written_as or o.table: o.table for o in self.outputs}

    @property
    def output_checks(self) -> dict[str, tuple[OutputCheck, ...]]:
        """Output table → its checks (the notebook's and its declaration's), for those that have any."""
        found: dict[str, tuple[OutputCheck, ...]] = {}
        for o in self.outputs:
            if o.checks:
                found[o.table] = found.get(o.table, ()) + o.checks
        return found

    def parameter(self, name: str) -> Param | None:
        return next((p for p in self.parameters if p.name == name), None)


def _with_sources(tables: tuple[str, ...], reads: tuple[SourceRead, ...]) -> tuple[str, ...]:
    """`%%source` cells read their source like a table: it joins the relations, once."""
    return tuple(dict.fromkeys([*tables, *(r.relation for r in reads)]))
