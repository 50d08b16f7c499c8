"""The `parameters` cell: each `name = literal` assignment, a notebook parameter with its default."""

from __future__ import annotations

import ast
import json
from typing import Iterator

from nb_assets.spec import Cell, Finding, Param

_LITERAL_TYPES = {int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict", type(None): "none"}


def parameters_of(cells: tuple[Cell, ...], findings: list[Finding]) -> Iterator[Param]:
    """The parameters of the one cell tagged `parameters`; problems with it go into `findings`."""
    tagged = [c for c in cells if c.cell_type == "code" and "parameters" in c.tags]
    for extra in tagged[1:]:
        findings.append(Finding("parameters-cell", "error", "only one cell may be tagged 'parameters'", extra.number))
    if not tagged:
        return
    cell = tagged[0]
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        findings.append(Finding("parameters-cell", "error", f"parameters cell does not parse: {exc.msg}", cell.number, exc.lineno))
        return
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not isinstance(target, ast.Name) or value is None:
            findings.append(Finding(
                "parameters-cell", "error",
                "the parameters cell may hold only `name = literal` assignments", cell.number, node.lineno,
            ))
            continue
        try:
            default = ast.literal_eval(value)
            if isinstance(default, tuple):
                default = list(default)
            json.dumps(default)  # parameters travel as JSON into the sandbox
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            findings.append(Finding(
                "parameters-cell", "error",
                f"parameter {target.id!r} needs a JSON-like literal default (number, string, bool, list, dict, None)",
                cell.number, node.lineno,
            ))
            continue
        yield Param(target.id, _LITERAL_TYPES.get(type(default), "str"), default, cell.number)
