"""`output("schema.table", df)` calls: the tables a notebook writes, known before it runs, and their checks."""

from __future__ import annotations

import ast
from typing import Iterator

from nb_assets.inbox.contract import TABLE_NAME  # the names output() accepts at run time
from nb_assets.spec import Cell, Finding, Output


def outputs_of(cells: tuple[Cell, ...], findings: list[Finding], dialect: str = "duckdb") -> Iterator[Output]:
    """Every output() call with a valid table name, in cell order; problems with them go into `findings`."""
    from nb_assets.analysis.cell_ast import index
    from nb_assets.analysis.checks import cell_trees  # the trees static analysis parses anyway

    for number, tree in cell_trees(cells).items():
        cell = cells[number - 1]
        for node in index(tree).of(ast.Call):  # in ast.walk order
            if _is_output_call(node):
                output = _output_of(node, cell, findings)
                if output is not None:
                    yield output_with_checks(output, node, cell, findings, dialect)


def _is_output_call(node: ast.Call) -> bool:
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "output") or (
        isinstance(func, ast.Attribute) and func.attr == "output"
    )


def _output_of(node: ast.Call, cell: Cell, findings: list[Finding]) -> Output | None:
    first = node.args[0] if node.args else None
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        findings.append(Finding(
            "output-name-literal", "error",
            "output() needs the table name as a string literal, e.g. output(\"mart.orders\", df), so outputs are known before the run",
            cell.number, node.lineno,
        ))
        return None
    if len(node.args) not in (2, 3) or any(k.arg != "checks" for k in node.keywords):
        findings.append(Finding(
            "output-call", "error", "call output(\"schema.table\", dataframe) with two arguments, and optionally checks=[...]",
            cell.number, node.lineno,
        ))
    table = first.value
    if not TABLE_NAME.match(table):  # the runtime accepts exactly these names
        findings.append(Finding(
            "output-name", "error", f"output name {table!r} must be lowercase 'schema.table' (letters, digits, _)",
            cell.number, node.lineno,
        ))
        return None
    return Output(table, cell.number, node.lineno)


def output_with_checks(output: Output, node: ast.Call, cell: Cell, findings: list[Finding], dialect: str) -> Output:
    """The output with the checks its call declares (analysis/output_checks.py reads them)."""
    from nb_assets.analysis.output_checks import checks_of_call

    checks = checks_of_call(node, output.table, cell, findings, dialect)
    return Output(output.table, output.cell, output.line, checks=checks) if checks else output
