"""`%%sql` input cells: each query's tables, parameters and columns, and the findings on it.

nb_assets' own `%%sql <name>` cells are read here; jupysql's forms by
jupysql_cells.py. sqlglot (sql.lineage) and the static analysis (IPython) are
imported inside the functions: only a notebook that is parsed needs them.
"""

from __future__ import annotations

import ast
from typing import Iterator

from nb_assets.spec import Cell, Finding, Param, SqlInput

SQL_MAGIC = "%%sql"


def is_sql_cell(cell: Cell) -> bool:
    """Any `%%sql` cell: nb_assets' own form or one of jupysql's."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SQL_MAGIC)


def sql_inputs(cells: tuple[Cell, ...], parameters: tuple[Param, ...], findings: list[Finding], dialect: str) -> Iterator[SqlInput]:
    """Every `%%sql` input, in notebook order; problems with them go into `findings`."""
    from nb_assets.analysis.jupysql_cells import is_own_form, jupysql_forms

    known_params = {p.name for p in parameters}
    seen: set[str] = set()
    for cell in filter(is_sql_cell, cells):
        if not is_own_form(cell):
            continue  # jupysql's forms (`%%sql`, `%%sql x <<`, `--save`): read below, in notebook order
        first_line, _, query = cell.source.lstrip().partition("\n")
        name = first_line[len(SQL_MAGIC):].strip()
        if name in seen:
            findings.append(Finding("duplicate-input", "error", f"SQL input {name!r} is defined twice; give each input its own name", cell.number, 1))
            continue
        seen.add(name)
        yield _sql_input(name, query, cell.number, 1, cells, known_params, findings, dialect)
    for form in jupysql_forms(cells, dialect, findings):
        name = form.name
        while name in seen:  # `x <<` again: jupysql rebinds x; each query is its own input
            name = f"{form.name}_{form.cell}" if name == form.name else f"{name}_"
        seen.add(name)
        yield _sql_input(name, form.query, form.cell, form.line - 1, cells, known_params, findings, dialect)


def _sql_input(name: str, query: str, cell: int, offset: int, cells: tuple[Cell, ...], known_params: set[str],
               findings: list[Finding], dialect: str) -> SqlInput:
    """One query's lineage and findings; `offset` lines of the cell come before the query text."""
    from nb_assets.sql.lineage import TABLE_FUNCTION, analyze_query, call_to_resolve, reads_nothing
    from nb_assets.sql.source_calls import as_relations, source_calls

    lineage = analyze_query(as_relations(query, dialect), dialect=dialect)  # source('x') reads "source.x"
    findings.extend(Finding("source-call", "error", f"SQL input {name!r}: {p}", cell) for p in source_calls(query, dialect)[1])
    for problem in lineage.problems:
        line = problem.line + offset if problem.line is not None else None
        findings.append(Finding(problem.rule, "error", f"SQL input {name!r}: {problem.message}", cell, line))
    for param in lineage.params:
        if param not in known_params:
            findings.append(Finding("unknown-sql-param", "error", _unknown_param(name, param, cells), cell))
    for call in lineage.calls:
        if call.in_from and not reads_nothing(call):
            # Provisional: seeing the warehouse's catalog through replaces it
            # with nothing (a table macro) or an error (anything else).
            line = call.line + offset if call.line is not None else None
            findings.append(Finding(TABLE_FUNCTION, "warning", f"SQL input {name!r}: {call_to_resolve(call.name)}", cell, line))
    if not query.strip():
        findings.append(Finding("sql-syntax", "error", f"SQL input {name!r} has no query", cell, 1))
    return SqlInput(name, query, lineage.tables, lineage.params, cell, lineage.columns, lineage.calls)


def _unknown_param(sql_input: str, param: str, cells: tuple[Cell, ...]) -> str:
    """Say what to change: most often the value is right there, in a cell that lacks the tag."""
    binds = f"SQL input {sql_input!r} binds ${param}"
    assigned_in = next((number for number, names in _assigned_names(cells).items() if param in names), None)
    if assigned_in is None:
        return f"{binds}, which is not a notebook parameter; add it to the parameters cell"
    tagged = next((c.number for c in cells if c.cell_type == "code" and "parameters" in c.tags), None)
    if tagged is None:
        return (
            f"{binds}; {param} is assigned in cell {assigned_in}, which is not tagged `parameters`: "
            f"add the tag `parameters` to cell {assigned_in} (papermill's convention) to make it the parameters cell"
        )
    return (
        f"{binds}; {param} is assigned in cell {assigned_in}, not in the parameters cell (cell {tagged}): "
        f"move `{param} = ...` into cell {tagged}, as a literal"
    )


def _assigned_names(cells: tuple[Cell, ...]) -> dict[int, set[str]]:
    """Cell number → names bound by its top-level assignments, in notebook order."""
    from nb_assets.analysis.checks import cell_trees

    assigned: dict[int, set[str]] = {}
    for number, tree in sorted(cell_trees(cells).items()):
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names = {n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}
            if names and isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                assigned.setdefault(number, set()).update(names)
    return assigned
