"""`.ipynb` file → NotebookSpec. No Dagster, no Docker, no kernel.

Reads the notebook contract (docs/notebook-contract.md): the `parameters` cell, `%%sql <name>`
input cells, `output("schema.table", df)` calls and the first markdown cell.
Problems an author can fix become Findings naming the cell; a file that is
not a notebook at all raises NotebookParseError naming the file.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import importlib.metadata
import importlib.util
import pickle
import stat
from pathlib import Path
from typing import Iterator

from nb_assets.errors import NotebookParseError
from nb_assets.inbox.contract import TABLE_NAME  # the names output() accepts at run time
from nb_assets.analysis.source_cells import source_reads
from nb_assets.spec import Cell, Finding, NotebookSpec, Output, Param, SourceRead, SqlInput, notebook_name

# sql_lineage and static_analysis (sqlglot, IPython) are imported on a cache
# miss only: every Dagster process loads the definitions, few parse anything.

SQL_MAGIC = "%%sql"
RUNTIME_EXTENSION = "nb_assets.notebook"
PROJECT_KERNEL = "python3"  # what the runner starts (inbox_papermill.kernel_name)
_LITERAL_TYPES = {int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict", type(None): "none"}


def parse_notebook(path: str | Path, dialect: str = "duckdb") -> NotebookSpec:
    """Parse one notebook file; cached by content so re-declaring is cheap.

    `dialect` is the warehouse's SQL dialect (locations.dialect_of): the
    `%%sql` inputs are read, and checked, as that warehouse would run them.

    Two caches: in this process, and on disk (`$NB_ASSETS_CACHE/specs`, default
    `~/.cache/nb_assets/specs`), keyed by path, content and the parser's own
    source, so a changed notebook or a changed rule is parsed again.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookParseError(f"{path}: cannot read notebook: {exc.strerror or exc}") from exc
    return _parse_cached(str(path), hashlib.sha256(raw).hexdigest(), raw, dialect)


@functools.lru_cache(maxsize=4096)
def _parse_cached(path: str, content_hash: str, raw: bytes, dialect: str = "duckdb") -> NotebookSpec:
    cache = spec_cache_file(path, content_hash, dialect)
    spec = _load_cached(cache)
    if spec is None:
        spec = _parse(path, content_hash, raw, dialect)
        _store_cached(cache, spec)
    return spec


def cached_spec(path: str, content_hash: str, dialect: str = "duckdb") -> NotebookSpec | None:
    """The spec the disk cache holds for this path and content, or None; never parses."""
    return _load_cached(spec_cache_file(path, content_hash, dialect))


def parse_uncached(path: str, raw: bytes, dialect: str = "duckdb") -> tuple[NotebookSpec, Path]:
    """Parse without looking in the caches; also returns the cache file the spec
    belongs in, for `store_spec` (which a caller may run on another thread)."""
    content_hash = hashlib.sha256(raw).hexdigest()
    return _parse(path, content_hash, raw, dialect), spec_cache_file(path, content_hash, dialect)


def store_spec(cache: Path, spec: NotebookSpec) -> None:
    """Write a spec to the disk cache; a cache that cannot be written only costs time."""
    _store_cached(cache, spec)


def spec_cache_file(path: str, content_hash: str, dialect: str = "duckdb") -> Path:
    # the DuckDB key is unchanged, so existing caches stay warm
    tail = "" if dialect == "duckdb" else f"\0{dialect}"
    key = hashlib.sha256(f"{_parser_version()}\0{path}\0{content_hash}{tail}".encode()).hexdigest()
    root = Path(os.environ.get("NB_ASSETS_CACHE") or Path.home() / ".cache" / "nb_assets")
    return root / "specs" / key[:2] / f"{key}.pickle"


_PARSER_MODULES = (
    "nb_assets.spec", "nb_assets.sql.lineage", "nb_assets.sql.columns", "nb_assets.sql.syntax_hints",
    "nb_assets.sql.escape_hatches", "nb_assets.analysis.cell_ast", "nb_assets.analysis.checks", "nb_assets.analysis.rules",
    "nb_assets.inbox.contract", "nb_assets.analysis.parser",
    "nb_assets.inbox.jupysql", "nb_assets.analysis.jupysql_cells", "nb_assets.inbox.checks", "nb_assets.analysis.output_checks",
    "nb_assets.sql.source_calls", "nb_assets.analysis.source_cells",
)


@functools.cache
def _parser_version() -> str:
    """Changes whenever the code that produces a NotebookSpec changes (read, not imported)."""
    digest = hashlib.sha256(importlib.metadata.version("sqlglot").encode())
    for name in _PARSER_MODULES:
        digest.update(Path(_source_of(name)).read_bytes())
    return digest.hexdigest()


def _source_of(module: str) -> str:
    """A module's file, found without running it (only its parent packages are imported)."""
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        raise ImportError(f"no source for {module}")
    return found.origin


def _trusted(path: Path) -> bool:
    """Unpickling runs code: only files (and folders) this user owns and no one else can write."""
    for p in (path, path.parent, path.parent.parent):
        info = p.lstat()
        if info.st_uid != os.geteuid() or info.st_mode & 0o022 or stat.S_ISLNK(info.st_mode):
            return False
    return True


def _load_cached(cache: Path) -> NotebookSpec | None:
    try:
        if not _trusted(cache):
            return None
        with cache.open("rb") as f:
            spec = pickle.load(f)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return spec if isinstance(spec, NotebookSpec) else None


def _store_cached(cache: Path, spec: NotebookSpec) -> None:
    try:
        cache.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        cache.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, cache)  # atomic: a concurrent reader sees all or nothing
    except OSError:
        pass  # a cache that cannot be written only costs time


def _parse(path: str, content_hash: str, raw: bytes, dialect: str = "duckdb") -> NotebookSpec:
    from nb_assets.analysis.checks import analyze

    cells, metadata = read_notebook(path, raw)
    findings: list[Finding] = list(_kernel_findings(metadata))
    parameters = tuple(_parameters(cells, findings))
    inputs = tuple(_sql_inputs(cells, parameters, findings, dialect))
    reads = tuple(source_reads(cells, findings, {i.name for i in inputs}))  # %%source cells (analysis/source_cells.py)
    outputs = tuple(_outputs(cells, findings, dialect))
    findings.extend(_contract_findings(cells, (*inputs, *reads), outputs))
    findings.extend(analyze(cells))
    return NotebookSpec(
        path=path,
        name=notebook_name(path),
        content_hash=content_hash,
        description=next((c.source.strip() for c in cells if c.cell_type == "markdown"), None),
        cells=cells,
        parameters=parameters,
        inputs=inputs,
        outputs=outputs,
        source_reads=reads,
        findings=tuple(sorted(findings, key=lambda f: (f.cell or 0, f.line or 0, f.rule))),
    )


def read_cells(path: str, raw: bytes) -> tuple[Cell, ...]:
    """Structural checks only; full JSON-schema validation is slow and not needed."""
    return read_notebook(path, raw)[0]


def read_notebook(path: str, raw: bytes) -> tuple[tuple[Cell, ...], dict]:
    """The cells (read_cells) and the notebook's metadata."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookParseError(f"{path}: not a notebook: invalid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise NotebookParseError(f"{path}: not a Jupyter notebook (no 'cells' list)")
    if doc.get("nbformat") != 4:
        raise NotebookParseError(f"{path}: nbformat {doc.get('nbformat')!r} is not supported; save it as nbformat 4")
    cells = []
    for number, cell in enumerate(doc["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise NotebookParseError(f"{path}: cell {number} is not a valid notebook cell")
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        tags = cell.get("metadata", {}).get("tags", [])
        cells.append(Cell(number, cell["cell_type"], source, tuple(str(t) for t in tags)))
    metadata = doc.get("metadata")
    return tuple(cells), metadata if isinstance(metadata, dict) else {}


def _kernel_findings(metadata: dict) -> Iterator[Finding]:
    """Every notebook runs in the project's Python kernel (the runner tells papermill so);
    say so where the file names no kernel, or another language."""
    kernelspec = metadata.get("kernelspec")
    if not isinstance(kernelspec, dict) or not kernelspec.get("name"):
        yield Finding(
            "no-kernelspec", "warning",
            f"the notebook has no kernelspec metadata; it runs in the project's Python kernel ({PROJECT_KERNEL}). "
            "To record that in the file, open it in Jupyter, pick that kernel and save",
        )
    elif str(kernelspec.get("language") or "python").lower() != "python":
        yield Finding(
            "no-kernelspec", "warning",
            f"the notebook names a {kernelspec.get('language')} kernel ({kernelspec.get('name')}); "
            f"nb-assets runs every notebook in the project's Python kernel ({PROJECT_KERNEL})",
        )


def is_sql_cell(cell: Cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SQL_MAGIC)


def _parameters(cells: tuple[Cell, ...], findings: list[Finding]) -> Iterator[Param]:
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


def _sql_inputs(cells: tuple[Cell, ...], parameters: tuple[Param, ...], findings: list[Finding], dialect: str) -> Iterator[SqlInput]:
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


def _outputs(cells: tuple[Cell, ...], findings: list[Finding], dialect: str = "duckdb") -> Iterator[Output]:
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


def _contract_findings(
    cells: tuple[Cell, ...], inputs: tuple[SqlInput | SourceRead, ...], outputs: tuple[Output, ...],
) -> Iterator[Finding]:
    from nb_assets.analysis.jupysql_cells import config_lines, runtime_hint

    yield from config_lines(cells)
    uses_runtime = [c.number for c in cells if c.cell_type == "code" and RUNTIME_EXTENSION in c.source and "load_ext" in c.source]
    first_sql = min((i.cell for i in inputs), default=None)
    if first_sql is not None and not any(n < first_sql for n in uses_runtime):
        magic = "%%sql" if any(isinstance(i, SqlInput) and i.cell == first_sql for i in inputs) else "%%source"
        hint = runtime_hint(cells) or f"add `%load_ext nb_assets.notebook` in a cell before the first {magic} cell"
        yield Finding("missing-runtime", "error", hint, first_sql)
    read = {t for i in inputs if isinstance(i, SqlInput) for t in i.tables}
    for out in outputs:
        if out.table in read:
            yield Finding("reads-own-output", "error", f"the notebook both reads and writes {out.table}; write a new table instead", out.cell, out.line)
