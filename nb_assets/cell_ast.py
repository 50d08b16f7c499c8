"""IPython cell source → Python `ast`, with the cell's own line numbers.

Magics and shell escapes (`!cmd`, `%%bash`) become the calls IPython would
make (`get_ipython().system(...)`), so the static rules can see them. Pure:
no Dagster, no Docker; IPython's input transformer only.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from IPython.core.inputtransformer2 import TransformerManager

from nb_assets import static_rules as T

__all__ = ["ParsedCell", "is_sql_input", "parse_cell", "walk_once"]


@dataclass(frozen=True)
class ParsedCell:
    number: int
    tree: ast.Module | None
    error: SyntaxError | None = None


_TRANSFORMER = TransformerManager()


def parse_cell(source: str) -> ast.Module:
    """Raises SyntaxError whose lineno is a line of `source`."""
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if lines and lines[first].startswith("%%"):  # a cell magic: the rest of the cell is its body
        name, _, args = lines[first][2:].partition(" ")
        body = "\n".join(lines[first + 1:])
        if name in T.PYTHON_MAGICS:
            return _offset(parse_cell, body, first + 1)
        call = f"get_ipython().run_cell_magic({name!r}, {args.strip()!r}, {body!r})"
        return _offset(ast.parse, call, first)
    try:
        # No escape characters: plain Python, the common case; skip IPython's transformer.
        python = _TRANSFORMER.transform_cell(source) if ("%" in source or "!" in source) else source
    except Exception:  # the transformer gives up on some broken input; let ast report it
        python = source
    tree = ast.parse(python) if python == source else _parse_mapped(python, lines)
    if python != source or "run_line_magic" in source:  # no magic, nothing to inline: skip the walk
        _inline_magic_code(tree)
    return tree


@lru_cache(maxsize=8192)
def walk_once(tree: ast.AST) -> tuple[ast.AST, ...]:
    """Every node of a cell's tree, walked once: each rule scans the same trees."""
    return tuple(ast.walk(tree))


def _offset(parse: Callable[[str], ast.Module], source: str, offset: int) -> ast.Module:
    try:
        tree = parse(source)
    except SyntaxError as exc:
        exc.lineno = (exc.lineno or 1) + offset
        raise
    return ast.increment_lineno(tree, offset)


def _parse_mapped(python: str, original: list[str]) -> ast.Module:
    """Parse transformed code; escapes joined from continuation lines map to their first line."""
    new = python.splitlines()
    to_original = list(range(1, len(new) + 1))
    if len(new) != len(original):
        matcher = difflib.SequenceMatcher(a=original, b=new, autojunk=False)
        for _, i1, i2, j1, j2 in matcher.get_opcodes():
            for j in range(j1, j2):
                to_original[j] = min(i1 + min(j - j1, max(i2 - i1 - 1, 0)), len(original) - 1) + 1
    mapped = lambda line: to_original[min(max(line, 1), len(new)) - 1] if new else 1  # noqa: E731
    try:
        tree = ast.parse(python)
    except SyntaxError as exc:
        exc.lineno = mapped(exc.lineno or 1)
        raise
    for node in ast.walk(tree):
        if hasattr(node, "lineno"):
            node.lineno, node.end_lineno = mapped(node.lineno), mapped(node.end_lineno or node.lineno)
    return tree


def _inline_magic_code(tree: ast.Module) -> None:
    """`%time stmt` and friends run `stmt` as Python: parse it and check it like the cell's own code."""
    for node in list(ast.walk(tree)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run_line_magic" and T.literal_arg(node, 0, "magic_name") in T.PYTHON_MAGICS):
            continue
        words = (T.literal_arg(node, 1, "line") or "").split(None)
        for skip in range(min(len(words), 5)):  # leading options such as `-n 10`
            try:
                code = ast.parse(" ".join(words[skip:]))
            except SyntaxError:
                continue
            for sub in ast.walk(code):
                if hasattr(sub, "lineno"):
                    sub.lineno = sub.end_lineno = node.lineno
            tree.body.extend(code.body)
            break


def is_sql_input(source: str) -> bool:
    first = next((line for line in source.splitlines() if line.strip()), "")
    return first.split()[:1] == ["%%sql"]
