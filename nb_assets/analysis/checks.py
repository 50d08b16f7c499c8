"""Static checks that keep scheduled notebooks free of side effects.

Each rule is a pure function from a notebook's cells to Findings; `RULES`
holds them and `analyze` runs them. Code cells are IPython: `!cmd` and magics
are first turned into the Python IPython would run (`get_ipython().system(...)`)
so one `ast` walk sees them, and line numbers are mapped back to the cell as
written. Names are resolved through the notebook's imports and aliases
(`import requests as r; r.get` is `requests.get`), never by regex on code.
The runtime sandbox enforces the same limits; these checks tell the author
before the schedule does. What is banned lives in analysis/rules.py.
"""

from __future__ import annotations

import ast
import builtins
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial

from nb_assets.analysis import rules as T
from nb_assets.analysis.cell_ast import ParsedCell, index, is_sql_input, parse_cell
from nb_assets.spec import Cell, Finding

__all__ = ["RULES", "Rule", "analyze", "apply_allowances", "cell_trees"]


@dataclass(frozen=True)
class Rule:
    """A named check; calling it with a notebook's cells yields its Findings."""

    id: str
    description: str
    check: Callable[[Sequence[Cell]], Iterable[Finding]]

    def __call__(self, cells: Sequence[Cell]) -> Iterable[Finding]:
        return self.check(cells)


def apply_allowances(findings: Iterable[Finding], allow: Mapping[str, str]) -> tuple[Finding, ...]:
    """Downgrade findings of allowed rules (rule id → written reason) to warnings that carry the reason."""
    for rule, reason in allow.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"allowing rule {rule!r} needs a written reason")
    return tuple(
        replace(f, severity="warning", message=f"{f.message} (allowed: {allow[f.rule].strip()})")
        if f.rule in allow else f
        for f in findings
    )


@lru_cache(maxsize=64)
def _parse_notebook(cells: tuple[Cell, ...]) -> tuple[tuple[ParsedCell, ...], _Names]:
    parsed = []
    for cell in cells:
        if cell.cell_type != "code" or is_sql_input(cell.source):
            continue  # markdown and raw are not run; SQL inputs are checked by sql_lineage
        try:
            parsed.append(ParsedCell(cell.number, parse_cell(cell.source)))
        except (SyntaxError, ValueError) as exc:  # ValueError: e.g. null bytes in source
            parsed.append(ParsedCell(cell.number, None, exc if isinstance(exc, SyntaxError) else SyntaxError(str(exc))))
    return tuple(parsed), _Names([p.tree for p in parsed if p.tree is not None])


def _notebook(cells: Sequence[Cell]) -> tuple[tuple[ParsedCell, ...], _Names]:
    key = tuple(cells)
    try:
        hash(key)
    except TypeError:  # e.g. tags given as a list: parse without the cache
        return _parse_notebook.__wrapped__(key)
    return _parse_notebook(key)


# --- names: what a reference means, through imports and aliases ------------------------------------

@dataclass(frozen=True)
class _Binding:
    qualname: str  # what the name refers to
    origin: str  # the import or alias a finding for it is reported at


_BUILTINS = frozenset(dir(builtins))


class _Names:
    """Notebook-wide name table (cells share one namespace).

    Flow-insensitive on purpose: a name bound anywhere to something banned is
    banned everywhere, so rebinding a name in a later cell or inside a function
    cannot hide a use. A reference resolves to every qualified name it may mean.
    """

    def __init__(self, trees: Sequence[ast.Module]) -> None:
        self._memo: dict[int, tuple[str, ...]] | None = None  # only once bindings are final
        self.sites: tuple[_Site, ...] | None = None  # filled by _sites(), once per notebook
        self.bindings: dict[str, list[_Binding]] = {}
        self.local: set[str] = set()  # names the notebook binds at top level: they shadow builtins
        self.stars: list[str] = []
        self.buffers: set[str] = set()  # names holding an in-memory buffer (io.StringIO())
        indexes = [index(tree) for tree in trees]
        for node in (n for ix in indexes for n in ix.of(ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.Import):
                for a in node.names:
                    name = a.asname or a.name.split(".")[0]
                    self._bind(name, a.name if a.asname else name, a.name)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name == "*":
                        self.stars.append(node.module)
                    else:
                        self._bind(a.asname or a.name, f"{node.module}.{a.name}")
        for node in (n for ix in indexes for n in ix.top_level):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.local.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.local.add(node.name)
            elif isinstance(node, ast.ImportFrom) and node.level:  # relative import: the project's own code
                self.local.update(a.asname or a.name for a in node.names)
        for node in (n for ix in indexes for n in ix.of(ast.Assign)):  # aliases: `run = os.system`, `ip = get_ipython()`
            if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if isinstance(node.value, ast.Call) and self.refers_to(node.value.func, T.IN_MEMORY):
                    self.buffers.add(node.targets[0].id)
                for qualname in self.resolve(node.value):
                    self._bind(node.targets[0].id, qualname)
        self._memo = {}  # every rule resolves the same nodes; the cached trees keep ids stable

    def _bind(self, name: str, qualname: str, origin: str | None = None) -> None:
        binding = _Binding(qualname, origin or qualname)
        if binding not in self.bindings.setdefault(name, []):
            self.bindings[name].append(binding)

    def resolve(self, node: ast.AST) -> tuple[str, ...]:
        """The qualified names a Name/Attribute/special Call may refer to; () for ordinary values."""
        if self._memo is None:
            return self._resolve(node)
        found = self._memo.get(id(node))
        if found is None:
            found = self._memo[id(node)] = self._resolve(node)
        return found

    def _resolve(self, node: ast.AST) -> tuple[str, ...]:
        if isinstance(node, ast.Name):
            if node.id in self.bindings:
                return tuple(b.qualname for b in self.bindings[node.id])
            if node.id in self.local:
                return ()
            if node.id in ("get_ipython", "__builtins__"):
                return ("IPython.get_ipython" if node.id == "get_ipython" else "builtins",)
            return (f"builtins.{node.id}",) if node.id in _BUILTINS else tuple(f"{m}.{node.id}" for m in self.stars)
        if isinstance(node, ast.Attribute):
            return tuple(f"{base}.{node.attr}" for base in self.resolve(node.value))
        if not isinstance(node, ast.Call):
            return ()
        found = []
        for func in self.resolve(node.func):
            magic = (T.literal_arg(node, 0, "magic_name") or "").split()[:1]
            if func in T.DYNAMIC_IMPORTS and T.literal_arg(node, 0, "name"):
                found.append(T.literal_arg(node, 0, "name"))
            elif func == "IPython.get_ipython":
                found.append("ipython")
            elif func in ("ipython.run_line_magic", "ipython.magic", "ipython.run_cell_magic") and magic:
                found.append(f"ipython.{'%%' if func.endswith('cell_magic') else '%'}{magic[0].lstrip('%')}")
        return tuple(q for q in found if q)

    def refers_to(self, node: ast.AST, qualnames: Iterable[str]) -> bool:
        return not set(self.resolve(node)).isdisjoint(qualnames)

    def is_buffer(self, node: ast.AST) -> bool:
        if (isinstance(node, ast.Constant) and node.value is None) or (isinstance(node, ast.Name) and node.id in self.buffers):
            return True
        return self.refers_to(node.func if isinstance(node, ast.Call) else node, T.IN_MEMORY)

    def covered(self, node: ast.AST, table: Sequence[T.Entry]) -> bool:
        """True when the finding for `node` is reported elsewhere: at an inner reference or at the import."""
        inner = node.value if isinstance(node, ast.Attribute) else node.func if isinstance(node, ast.Call) else None
        if inner is None:
            bindings = self.bindings.get(node.id, []) if isinstance(node, ast.Name) else []
            return any(T.match(b.origin, table) for b in bindings)
        return any(T.match(q, table) for q in self.resolve(inner)) or self.covered(inner, table)


# --- rules ------------------------------------------------------------------------------------------

def cell_trees(cells: Sequence[Cell]) -> dict[int, ast.Module]:
    """Cell number → syntax tree of each parsable Python cell (the trees the rules check)."""
    return {cell.number: cell.tree for cell in _notebook(cells)[0] if cell.tree is not None}


def _trees(cells: Sequence[Cell]) -> Iterator[tuple[int, ast.Module, _Names]]:
    parsed, names = _notebook(cells)
    for cell in parsed:
        if cell.tree is not None:
            yield cell.number, cell.tree, names


_Site = tuple[int, ast.AST, tuple[str, ...], bool]  # cell, node, qualified names, is an import


def _sites(cells: Sequence[Cell]) -> tuple[_Site, ...]:
    """Every import and every reference that resolves to a qualified name, found
    once per notebook and shared by the rules that look names up in a table."""
    parsed, names = _notebook(cells)
    if names.sites is None:
        found: list[_Site] = []
        for number, tree, _ in _trees(cells):
            for node in index(tree).of(ast.Import, ast.ImportFrom, ast.Call, ast.Name, ast.Attribute):
                if isinstance(node, ast.Import):
                    found.append((number, node, tuple(a.name for a in node.names), True))
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    quals = tuple(node.module if a.name == "*" else f"{node.module}.{a.name}" for a in node.names)
                    found.append((number, node, quals, True))
                elif isinstance(node, ast.Call) or (isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load)):
                    if quals := names.resolve(node):
                        found.append((number, node, quals, False))
        names.sites = tuple(found)
    return names.sites


def _references(cells: Sequence[Cell], rule: str, table: Sequence[T.Entry]) -> Iterator[Finding]:
    """Imports and references resolving to a name in `table`; each use is reported once, at the import if any."""
    names = _notebook(cells)[1]
    for number, node, quals, is_import in _sites(cells):
        hits = [(q, entry) for q in quals if (entry := T.match(q, table))]
        # `covered` is costly: ask it only about references that would be findings
        if not hits or (not is_import and names.covered(node, table)):
            continue
        for qualname, entry in hits:
            yield Finding(rule, entry[1], f"`{T.display(qualname)}` {entry[2]}", number, node.lineno)


def _names_a_file(call: ast.Call, names: _Names, keywords: Iterable[str]) -> bool:
    """Called with a path or file (first argument or one of `keywords`), not None or an in-memory buffer."""
    arg = T.argument(call, 0, keywords)
    return arg is not None and not names.is_buffer(arg)


def _is_output(node: ast.AST, names: _Names) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    unbound = isinstance(func, ast.Name) and func.id == "output" and not names.resolve(func) and func.id not in names.local
    return unbound or names.refers_to(func, ("nb_assets.notebook.output",))


def _direct_data(cells: Sequence[Cell]) -> Iterator[Finding]:
    yield from _references(cells, T.DIRECT_DATA_ACCESS, T.DIRECT_DATA)
    sources = ("filepath_or_buffer", "path", "io", "source", "file", "fname", "uri", "path_or_paths")
    for number, tree, names in _trees(cells):
        for call in index(tree).of(ast.Call):
            for func in names.resolve(call.func):
                if T.match(func, T.DIRECT_DATA):
                    continue  # reported as a reference
                if func in T.OPENERS and not T.writes(T.open_mode(call, T.OPENERS[func])):
                    yield Finding(T.DIRECT_DATA_ACCESS, "warning", f"`{T.display(func)}` in read mode {T.NO_DIRECT}", number, call.lineno)
                elif any(fnmatch.fnmatchcase(func, p) for p in T.DATA_READERS) and _names_a_file(call, names, sources):
                    yield Finding(T.DIRECT_DATA_ACCESS, "error", _literal_read_message(func, call, sources), number, call.lineno)


def _literal_read_message(func: str, call: ast.Call, sources: Sequence[str]) -> str:
    """A literal path or URL gets the declaration to add, in the source registry."""
    from nb_assets.sql.source_calls import declare_hint

    first = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg in sources), None)
    literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    if literal is None:
        return f"`{func}` with a path or URL {T.NO_DIRECT}"
    return f"`{func}` with a path or URL reads data outside the declared inputs; {declare_hint(literal)}"


def _file_write(cells: Sequence[Cell]) -> Iterator[Finding]:
    yield from _references(cells, T.FILE_WRITE, T.FILE_WRITES)
    for number, tree, names in _trees(cells):
        # output("x.y", df.to_parquet()) hands data to the runtime, which writes where the host says
        calls = index(tree).of(ast.Call)
        in_output = {id(n) for c in calls if _is_output(c, names) for a in c.args for n in ast.walk(a)}
        for call in calls:
            funcs, method, what = names.resolve(call.func), getattr(call.func, "attr", None), None
            if opener := next((f for f in funcs if f in T.OPENERS), None):
                mode = T.open_mode(call, T.OPENERS[opener])
                what = f"`{T.display(opener)}(..., {mode!r})`" if mode else f"`{T.display(opener)}` with a computed mode"
                what = what if T.writes(mode) else None
            elif method is None or (funcs and (any(T.match(f, T.FILE_WRITES) for f in funcs) or method == "open")):
                continue  # plain functions are matched by name above; `open` only on values (Path.open)
            elif method == "savefig" and _names_a_file(call, names, ("fname",)):
                yield Finding(T.FILE_WRITE, "warning", f"`.savefig` {T.SAVEFIG_HINT}", number, call.lineno)
            elif method in T.ALWAYS_WRITE_METHODS or (
                method in T.PATH_WRITE_METHODS and id(call) not in in_output and _names_a_file(call, names, T.PATH_KEYWORDS)
            ):
                what = f"`.{method}(...)`"
            elif method == "open":
                modes = [*call.args[:2], *(k.value for k in call.keywords if k.arg == "mode")]
                mode = next((m.value for m in modes if isinstance(m, ast.Constant) and T.is_write_mode(str(m.value))), None)
                what = f"`.open(..., {mode!r})`" if mode else None
            if what:
                yield Finding(T.FILE_WRITE, "error", f"{what} {T.NO_WRITE}", number, call.lineno)


def _namespace(node: ast.AST, names: _Names) -> bool:
    return isinstance(node, ast.Call) and names.refers_to(node.func, T.NAMESPACES)


def _dynamic_code(cells: Sequence[Cell]) -> Iterator[Finding]:
    yield from _references(cells, T.DYNAMIC_CODE, T.DYNAMIC)
    for number, tree, names in _trees(cells):
        for node in index(tree).of(ast.Call, ast.Subscript):
            if isinstance(node, ast.Call) and names.refers_to(node.func, T.DYNAMIC_IMPORTS) and T.literal_arg(node, 0, "name") is None:
                message = "imports a module whose name is computed, so the checks cannot see it; use a plain import statement"
            elif (isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load) and _namespace(node.value, names)) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("update", "setdefault", "pop", "__setitem__") and _namespace(node.func.value, names)
            ):
                message = "changes variables through globals()/locals(), hidden from the checks; assign them directly"
            else:
                continue
            yield Finding(T.DYNAMIC_CODE, "error", message, number, node.lineno)


def _sql_in_python(cells: Sequence[Cell]) -> Iterator[Finding]:
    for number, tree, _ in _trees(cells):
        # SQL text needs a keyword inside one string literal: most cells have none, skip their walk
        if not any(isinstance(c.value, str) and T.SQL_KEYWORD.search(c.value) for c in index(tree).of(ast.Constant)):
            continue
        stack: list[ast.AST] = [tree]
        while stack:  # outermost first, so one concatenation is one finding
            node = stack.pop()
            if T.builds_sql(node):
                yield Finding(T.SQL_IN_PYTHON, "error", T.SQL_HINT, number, getattr(node, "lineno", None))
            else:
                stack.extend(ast.iter_child_nodes(node))


def _syntax_errors(cells: Sequence[Cell]) -> Iterator[Finding]:
    for cell in _notebook(cells)[0]:
        if cell.error is not None:
            line = max(cell.error.lineno, 1) if cell.error.lineno else None
            yield Finding(T.SYNTAX_ERROR, "error", f"the cell does not parse ({cell.error.msg}); fix the Python syntax", cell.number, line)


RULES: tuple[Rule, ...] = (
    Rule(T.NETWORK_ACCESS, "imports or uses a network client (requests, socket, urllib.request, boto3, ...)",
         partial(_references, rule=T.NETWORK_ACCESS, table=T.NETWORK)),
    Rule(T.SHELL_PROCESS, "runs a shell or process (subprocess, os.system, !cmd, %%bash, %run, %pip)",
         partial(_references, rule=T.SHELL_PROCESS, table=T.SHELL)),
    Rule(T.DIRECT_DATA_ACCESS, "reads data around the %%sql inputs (duckdb, sqlalchemy, pd.read_sql, pd.read_csv(path))", _direct_data),
    Rule(T.FILE_WRITE, "writes files (open(..., 'w'), df.to_csv(path), Path.write_text, shutil, os.remove, %%writefile)", _file_write),
    Rule(T.DYNAMIC_CODE, "runs code the checks cannot see (exec, eval, compile, computed imports, globals()[...] =)", _dynamic_code),
    Rule(T.SQL_IN_PYTHON, "builds SQL text in Python (f-string, %, .format, +) instead of a %%sql cell with $params", _sql_in_python),
    Rule(T.SYNTAX_ERROR, "a code cell does not parse as IPython", _syntax_errors),
)


def analyze(cells: Sequence[Cell], rules: Sequence[Rule] = RULES) -> tuple[Finding, ...]:
    """Every finding of every rule (all cells, not just the first hit), sorted by cell and line."""
    found = {finding for rule in rules for finding in rule(cells)}
    return tuple(sorted(found, key=lambda f: (f.cell or 0, f.line or 0, f.rule, f.message)))
