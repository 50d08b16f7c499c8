"""Seeing through the warehouse catalog: views and macros -> the tables behind them.

Pure: the catalog arrives as plain data (catalog.py reads it from DuckDB), and
each view's or macro's SQL goes through the same sql_lineage analysis as a
notebook's input cells, recursively. No DuckDB, no Dagster.

Names follow DuckDB's binding rules (checked against DuckDB in the tests):
- a notebook's query and a macro's body bind in the main schema;
- a view's body binds in the view's own schema first, then main;
- a bare function name is that schema's macro when there is one (a macro
  shadows a built-in, even `range`), else a built-in.

Views are named "schema.view" and macros "schema.macro()": a table and a
table macro may share a name. A view or macro whose SQL cannot be read, or
that reads outside the warehouse, is an error: what it reads would be unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import sqlglot
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from nb_assets.spec import Finding, NotebookSpec, SeenThrough, SqlCall, SqlInput
from nb_assets.sql.lineage import DIALECT, TABLE_FUNCTION, TABLE_FUNCTIONS_READING_NOTHING, analyze_query, reads_nothing

CATALOG = "sql-catalog"  # a view or macro on the way cannot be seen through
MAX_DEPTH = 32
_RESOLUTION_RULES = {TABLE_FUNCTION, CATALOG}  # replaced each time a spec is seen through


@dataclass(frozen=True)
class Macro:
    table: bool  # AS TABLE (called in FROM) or scalar
    body: str  # a table macro's SELECT; a scalar macro's expression


@dataclass(frozen=True)
class Catalog:
    """The user-defined objects of one warehouse, as plain data."""

    warehouse: str  # for messages: where the catalog was read
    relations: frozenset[str]  # every table and view, "schema.name"
    views: Mapping[str, str]  # "schema.view" -> its CREATE VIEW statement as the catalog keeps it
    macros: Mapping[str, tuple[Macro, ...]] = field(default_factory=dict)  # "schema.name" -> overloads
    dialect: str = DIALECT  # the SQL of its views and macros (sql_lineage.dialect_of)
    foreign: frozenset[str] = frozenset()  # foreign tables (postgres_fdw and the like): another server's data


@dataclass(frozen=True)
class _Node:
    reads: tuple[str, ...]  # tables, views and macros it reads directly
    problem: str | None = None  # why it cannot be seen through
    scalar: bool = False  # a scalar macro: kept only where it reaches something


def see_through(spec: NotebookSpec, catalog: Catalog) -> NotebookSpec:
    """`spec` with `seen_through` set and resolution findings replaced."""
    return see_through_all([spec], catalog)[0]


def see_through_all(specs: Sequence[NotebookSpec], catalog: Catalog) -> list[NotebookSpec]:
    """Each spec resolved against one catalog, each view and macro analyzed once."""
    resolver = _Resolver(catalog)
    return [resolver.spec(spec) for spec in specs]


def view_query(create_view: str, dialect: str = DIALECT) -> str | None:
    """The query of a `CREATE VIEW name [(columns)] AS query` statement, or None."""
    try:
        tokens = sqlglot.tokenize(create_view, read=dialect)
    except TokenError:
        return None
    depth = 0
    seen_view = False
    for token in tokens:
        if token.token_type == TokenType.VIEW:
            seen_view = True
        elif token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif token.token_type == TokenType.ALIAS and depth == 0 and seen_view:
            query = create_view[token.end + 1 :].strip()
            return query[:-1].rstrip() if query.endswith(";") else query
    return None


def kind_of(name: str) -> Literal["view", "macro"]:
    return "macro" if name.endswith("()") else "view"


class _Resolver:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.nodes: dict[str, _Node] = {}

    def spec(self, spec: NotebookSpec) -> NotebookSpec:
        findings = [f for f in spec.findings if f.rule not in _RESOLUTION_RULES]
        reads: list[tuple[str, tuple[str, ...]]] = []
        reached: dict[str, None] = {}
        for sql_input in spec.inputs:
            names, unknown = self._direct(sql_input.tables, sql_input.calls, "main")
            findings.extend(self._unknown_call(sql_input, call) for call in unknown)
            for name in names:
                self._visit(name, ())
            kept = self._kept(names)
            reads.append((sql_input.name, kept))
            for name in kept:
                for step, problem in self._problems(name):
                    findings.append(Finding(CATALOG, "error", f"SQL input {sql_input.name!r}: {step}{problem}", sql_input.cell))
                reached.update(dict.fromkeys(self._reach(name)))
        through = tuple((name, self._kept(self.nodes[name].reads)) for name in reached if name in self.nodes)
        seen = SeenThrough(self.catalog.warehouse, tuple(reads), through)
        ordered = sorted(dict.fromkeys(findings), key=lambda f: (f.cell or 0, f.line or 0, f.rule))
        return replace(spec, findings=tuple(ordered), seen_through=seen)

    # --- names ---------------------------------------------------------------

    def _direct(self, tables: Iterable[str], calls: Iterable[SqlCall], schema: str) -> tuple[tuple[str, ...], list[SqlCall]]:
        """What a query names, resolved: relations and macros; and the table functions nothing defines."""
        names: dict[str, None] = {}
        unknown: list[SqlCall] = []
        for table in tables:
            names.setdefault(self._relation(table, schema), None)
        for call in calls:
            macro = self._macro(call.name, schema)
            if macro is not None:
                names.setdefault(f"{macro}()", None)
            elif call.in_from and not reads_nothing(call):
                unknown.append(call)
        return tuple(names), unknown

    def _relation(self, name: str, schema: str) -> str:
        # sql_lineage qualified bare names with `schema`; DuckDB falls back to main.
        bare = name.partition(".")[2]
        if schema != "main" and name.startswith(f"{schema}.") and name not in self.catalog.relations:
            return f"main.{bare}"
        return name

    def _macro(self, name: str, schema: str) -> str | None:
        candidates = [name] if "." in name else [f"{s}.{name}" for s in dict.fromkeys((schema, "main"))]
        return next((c for c in candidates if c in self.catalog.macros), None)

    # --- the graph -------------------------------------------------------------

    def _visit(self, name: str, stack: tuple[str, ...]) -> None:
        if name in self.nodes:
            return
        if name.endswith("()"):
            node = self._macro_node(name[:-2])
        elif name in self.catalog.views:
            node = self._view_node(name)
        elif name in self.catalog.foreign:
            node = _Node((), f"{name} is a foreign table: its rows come from another server (a foreign data wrapper "
                             "such as postgres_fdw), outside the warehouse's lineage; refused — load it into a table")
        else:
            return  # a base table
        path = (*stack, name)
        looping = next((r for r in node.reads if r in path), None)
        if looping is not None:  # the catalog forbids this; a hand-edited file need not
            node = _Node((), f"{name} reads itself: {' → '.join((*path[path.index(looping) :], looping))}")
        elif len(path) > MAX_DEPTH:
            node = _Node((), f"{name} is more than {MAX_DEPTH} views and macros deep; not followed further")
        self.nodes[name] = node
        for read in node.reads:
            self._visit(read, (*stack, name))

    def _view_node(self, name: str) -> _Node:
        query = view_query(self.catalog.views[name], self.catalog.dialect)
        if query is None:
            return _Node((), f"view {name}: its definition could not be read, so what it reads is unknown")
        return self._body_node(f"view {name}", query, name.partition(".")[0])

    def _macro_node(self, name: str) -> _Node:
        overloads = self.catalog.macros[name]
        reads: dict[str, None] = {}
        for macro in overloads:
            query = macro.body if macro.table else f"SELECT {macro.body}"
            node = self._body_node(f"macro {name}()", query, "main")
            if node.problem:
                return node
            reads.update(dict.fromkeys(node.reads))
        return _Node(tuple(reads), scalar=not any(m.table for m in overloads))

    def _body_node(self, what: str, query: str, schema: str) -> _Node:
        lineage = analyze_query(query, default_schema=schema, dialect=self.catalog.dialect)
        if lineage.problems:
            return _Node((), f"{what}: {lineage.problems[0].message}")
        names, unknown = self._direct(lineage.tables, lineage.calls, schema)
        if unknown:
            return _Node((), f"{what}: {_unknown_message(unknown[0].name, self.catalog.warehouse)}")
        return _Node(names)

    def _reaches(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        """Whether a name leads to a table or a problem: scalar macros that do not are plain functions."""
        node = self.nodes.get(name)
        if node is None:
            return True  # a base table
        if node.problem or not node.scalar:
            return True
        return any(self._reaches(r, seen | {name}) for r in node.reads if r not in seen)

    def _kept(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(n for n in names if self._reaches(n))

    def _reach(self, name: str) -> list[str]:
        """`name` and every view and macro below it, depth first."""
        order: dict[str, None] = {}
        stack = [name]
        while stack:
            current = stack.pop()
            if current in order or current not in self.nodes:
                continue
            order[current] = None
            stack.extend(reversed(self._kept(self.nodes[current].reads)))
        return list(order)

    def _problems(self, name: str) -> list[tuple[str, str]]:
        """(path prefix, problem) for each view or macro under `name` that cannot be seen through."""
        found: list[tuple[str, str]] = []
        for current in self._reach(name):
            problem = self.nodes[current].problem
            if problem:
                path = self._path(name, current)
                prefix = f"through {' → '.join(path)}: " if len(path) > 1 else ""
                found.append((prefix, problem))
        return found

    def _path(self, start: str, goal: str) -> list[str]:
        paths = {start: [start]}
        queue = [start]
        while queue:
            current = queue.pop(0)
            if current == goal:
                return paths[current]
            for read in self.nodes.get(current, _Node(())).reads:
                if read not in paths:
                    paths[read] = [*paths[current], read]
                    queue.append(read)
        return [start, goal]

    def _unknown_call(self, sql_input: SqlInput, call: SqlCall) -> Finding:
        line = call.line + 1 if call.line is not None else None  # +1: the %%sql line
        message = f"SQL input {sql_input.name!r}: {_unknown_message(call.name, self.catalog.warehouse)}"
        return Finding(TABLE_FUNCTION, "error", message, sql_input.cell, line)


def _unknown_message(name: str, warehouse: str) -> str:
    return (
        f"{name}() is neither a table function known to read nothing ({', '.join(TABLE_FUNCTIONS_READING_NOTHING)}) "
        f"nor a table macro in {warehouse}; a table function could read anything, so it is refused — "
        "read warehouse tables, or define a table macro over them"
    )
