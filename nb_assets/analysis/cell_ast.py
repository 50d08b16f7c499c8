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

from nb_assets.analysis import rules as T

__all__ = ["ParsedCell", "TreeIndex", "index", "is_sql_input", "parse_cell", "walk_once"]


@dataclass(frozen=True)
class ParsedCell:
    number: int
    tree: ast.Module | None
    error: SyntaxError | None = None


_TRANSFORMER = TransformerManager()


@lru_cache(maxsize=4096)
def parse_cell(source: str) -> ast.Module:
    """Raises SyntaxError whose lineno is a line of `source`.

    Cached by source: boilerplate cells (the runtime's `%load_ext`, shared
    helpers) repeat across notebooks. The tree is shared, so callers must not
    change it.
    """
    return _parse_cell(source)


def _parse_cell(source: str) -> ast.Module:
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if lines and lines[first].startswith("%%"):  # a cell magic: the rest of the cell is its body
        name, _, args = lines[first][2:].partition(" ")
        body = "\n".join(lines[first + 1:])
        if name in T.PYTHON_MAGICS:
            return _offset(_parse_cell, body, first + 1)  # not the cached one: _offset moves its lines
        call = f"get_ipython().run_cell_magic({name!r}, {args.strip()!r}, {body!r})"
        return _offset(ast.parse, call, first)
    try:
        # No escape characters: plain Python, the common case; skip IPython's transformer.
        python = _transform(source) if ("%" in source or "!" in source) else source
    except Exception:  # the transformer gives up on some broken input; let ast report it
        python = source
    tree = ast.parse(python) if python == source else _parse_mapped(python, lines)
    if python != source or "run_line_magic" in source:  # no magic, nothing to inline: skip the walk
        _inline_magic_code(tree)
    return tree


@lru_cache(maxsize=4096)
def _transform(source: str) -> str:
    return _TRANSFORMER.transform_cell(source)


# Nodes that open a scope: what is inside them is not the notebook's global scope.
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class TreeIndex:
    """One walk of a cell's tree, shared by every rule.

    nodes: all nodes in `ast.walk` order; by_type: the same, grouped by exact
    node class; top_level: the nodes in the notebook's global scope (inside no
    function, class, lambda or comprehension; scope nodes themselves included).
    """

    nodes: tuple[ast.AST, ...]
    by_type: dict[type, list[ast.AST]]
    top_level: tuple[ast.AST, ...]

    def of(self, *types: type) -> list[ast.AST]:
        """Nodes of these exact classes (ast node classes are not subclassed)."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        return [n for t in types for n in self.by_type.get(t, [])]


@lru_cache(maxsize=8192)
def index(tree: ast.AST) -> TreeIndex:
    """Breadth first like `ast.walk`, without its generator and per-field overhead."""
    nodes: list[ast.AST] = [tree]
    top: list[bool] = [False]  # the Module itself is not a statement of the notebook
    by_type: dict[type, list[ast.AST]] = {}
    top_level: list[ast.AST] = []
    node_type, i = ast.AST, 0
    while i < len(nodes):
        node, outer = nodes[i], top[i]
        i += 1
        by_type.setdefault(type(node), []).append(node)
        if outer:
            top_level.append(node)
        inner = (outer or i == 1) and not isinstance(node, SCOPES)
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, node_type):
                nodes.append(value)
                top.append(inner)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, node_type):
                        nodes.append(item)
                        top.append(inner)
    return TreeIndex(tuple(nodes), by_type, tuple(top_level))


def walk_once(tree: ast.AST) -> tuple[ast.AST, ...]:
    """Every node of a cell's tree, walked once: each rule scans the same trees."""
    return index(tree).nodes


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
