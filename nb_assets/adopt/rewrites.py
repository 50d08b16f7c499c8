"""One cell at a time: the edits that make a plain notebook's cell schedulable.

Pure text and `ast`/sqlglot work, no I/O: each rewrite takes a cell's source and
returns what replaces it (zero, one or several cells), the declarations the
project needs for it, and a note saying why, so `nb-assets adopt` can show a
diff a person reviews before `--write`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

RUNTIME_LINE = "%load_ext nb_assets.notebook"
_INSTALL = re.compile(r"^\s*[%!](?:pip|conda|mamba|micromamba)\b")
_LOAD_JUPYSQL = re.compile(r"^\s*%(?:re)?load_ext\s+sql\s*$")
_LOAD_RUNTIME = re.compile(r"^\s*%(?:re)?load_ext\s+nb_assets\.notebook\s*$")
_CONNECTION = re.compile(r"^\s*%sql\s+[A-Za-z][A-Za-z0-9+._-]*://\S*\s*$")
_SQL_CONFIG = re.compile(r"^\s*%config\s+SqlMagic\b")
_JUPYSQL_TOOL = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*=\s*)?%(sqlcmd|sqlplot|sqlrender)\b")
_SHELL_DOWNLOAD = re.compile(r"^\s*!\s*(?:wget|curl)\b.*?(https?://\S+)")
_URL = re.compile(r"""https?://[^\s'"]+""")
# SQL that reads a file by its path: FROM 'x.csv', read_csv('x.csv', ...), read_parquet('x.parquet').
_SQL_FILE = re.compile(
    r"""(?P<call>\b(?:read_csv_auto|read_csv|read_parquet|read_json_auto|read_json|parquet_scan)\s*\(\s*'(?P<p1>[^']+)'[^)]*\))"""
    r"""|(?P<lit>(?<=\bfrom\s)\s*'(?P<p2>[^']+\.(?:csv|tsv|parquet|json|ndjson)(?:\.gz)?)')""",
    re.IGNORECASE,
)
_READERS = {"read_csv": "csv", "read_parquet": "parquet", "read_json": "json", "read_excel": "excel", "read_table": "csv"}
_READ_ONLY = ("select", "with", "from", "values", "table", "(")


@dataclass(frozen=True)
class NewCell:
    cell_type: str  # "code" | "markdown"
    source: str
    tags: tuple[str, ...] = ()


@dataclass
class CellEdit:
    """What replaces one cell; `cells is None` means the cell stays as it is."""

    cells: list[NewCell] | None = None
    declarations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def source_name(location: str) -> str:
    """A declared source's name from a path or URL: `data/bank_cleaned.csv` → `bank_cleaned`."""
    stem = PurePosixPath(location.split("?")[0].rstrip("/")).name.split(".")[0]
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_") or "data"
    return name if not name[0].isdigit() else f"s_{name}"


def source_declaration(location: str, fmt: str | None = None) -> str:
    """The agreed Python API (nb_assets.Source); a URL is `url=`, anything else `path=`."""
    kind = "url" if _URL.match(location) else "path"
    fmt = fmt or _format_of(location)
    return f'Source("{source_name(location)}", {kind}="{location}", format="{fmt}", zones=[])'


def _format_of(location: str) -> str:
    suffixes = PurePosixPath(location.split("?")[0]).suffixes
    for suffix in suffixes:
        if suffix[1:] in ("csv", "tsv", "parquet", "json", "ndjson"):
            return {"tsv": "csv", "ndjson": "json"}.get(suffix[1:], suffix[1:])
    return "csv"


def rewrite_python(source: str, runtime_loaded: bool) -> CellEdit:
    """A code cell that is not a `%%` cell magic: line magics and Python statements."""
    edit = CellEdit()
    kept: list[str] = []
    changed = False
    for line in source.splitlines():
        if _INSTALL.match(line):
            edit.notes.append(f"removed `{line.strip()}`: the sandbox has no network; add what it installs to the sandbox image")
        elif _LOAD_JUPYSQL.match(line) or _LOAD_RUNTIME.match(line):
            if runtime_loaded or any(_LOAD_RUNTIME.match(k) for k in kept):
                edit.notes.append(f"removed `{line.strip()}`: the runtime is already loaded")
            else:
                kept.append(RUNTIME_LINE)
                runtime_loaded = True
                if not _LOAD_RUNTIME.match(line):
                    edit.notes.append(f"`{line.strip()}` → `{RUNTIME_LINE}`: the runtime reads jupysql's %%sql forms")
                    changed = True
                continue
        elif _CONNECTION.match(line):
            edit.notes.append(f"removed `{_redact(line.strip())}`: scheduled runs read the project's warehouse")
        elif _SQL_CONFIG.match(line):
            edit.notes.append(f"removed `{line.strip()}`: jupysql's display settings")
        elif _JUPYSQL_TOOL.match(line):
            edit.notes.append(f"removed `{line.strip()}`: jupysql's %{_JUPYSQL_TOOL.match(line).group(1)} does not run in scheduled notebooks")  # type: ignore[union-attr]
        elif _SHELL_DOWNLOAD.match(line):
            url = _SHELL_DOWNLOAD.match(line).group(1)  # type: ignore[union-attr]
            edit.notes.append(f"removed `{line.strip()}`: the host fetches declared sources before the run")
            edit.declarations.append(source_declaration(url))
        else:
            kept.append(line)
            continue
        changed = True
    text = "\n".join(kept)
    reader = _reader_rewrite(text)
    if reader is not None:
        reader.declarations[:0] = edit.declarations
        reader.notes[:0] = edit.notes
        return reader
    if _downloads(text):
        edit.notes.append(
            "removed a cell that downloads data at run time (" + ", ".join(sorted(set(_URL.findall(text))))
            + "): scheduled notebooks have no network; declare the data as a source, or load it into the warehouse"
        )
        edit.declarations.extend(source_declaration(u) for u in sorted(set(_URL.findall(text))))
        edit.cells = []
        return edit
    if changed:
        edit.cells = [NewCell("code", text)] if text.strip() and not _only_comments(text) else []
    return edit


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("#") for line in text.splitlines())


def _redact(text: str) -> str:
    return re.sub(r"//[^@/\s]*@", "//***@", text)


def _downloads(text: str) -> bool:
    """A cell that passes a URL literal to something other than a reader adopt rewrites."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return bool(_URL.search(text))
    return any(
        isinstance(node, ast.Constant) and isinstance(node.value, str) and _URL.match(node.value)
        for call in ast.walk(tree) if isinstance(call, ast.Call)
        for node in (*call.args, *(k.value for k in call.keywords))
    )


def _reader_rewrite(text: str) -> CellEdit | None:
    """`df = pd.read_csv("literal")` → a `%%source df name` cell and a Source declaration.

    Only an assignment to one name whose call's first argument is a string literal:
    anything else is left for the author (check names it).
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    lines = text.splitlines()
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        call = node.value
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        attr = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if attr not in _READERS or not call.args:
            continue
        first = call.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        location, var = first.value, node.targets[0].id
        before = "\n".join(lines[: node.lineno - 1])
        after = "\n".join(lines[(node.end_lineno or node.lineno):])
        cells = [NewCell("code", part) for part in (before,) if part.strip()]
        cells.append(NewCell("code", f"%%source {var} {source_name(location)}"))
        cells += [NewCell("code", part) for part in (after,) if part.strip()]
        return CellEdit(
            cells, [source_declaration(location, _format_of(location) if "." in location else _READERS[attr])],
            [f"`{var} = ...{attr}({location!r})` → a `%%source {var} {source_name(location)}` cell: the host fetches the file before the run"],
        )
    return None


def rewrite_sql(source: str) -> CellEdit:
    """A `%%sql` cell: files read by path become declared sources; cells that write become notes."""
    first, _, body = source.lstrip().partition("\n")
    query = body if body.strip() else ""
    if _writes(query):
        files = sorted({m.group("p1") or m.group("p2") for m in _SQL_FILE.finditer(query)})
        note = (
            "this cell wrote to the database, which scheduled notebooks do not: they read the warehouse and "
            "declared sources, and write tables with output(\"schema.table\", df)"
        )
        edit = CellEdit([NewCell("markdown", f"*Removed by `nb-assets adopt`: {note}.*\n\n```sql\n{query.strip()}\n```")])
        edit.notes.append(f"turned a writing %%sql cell into a note ({_first_words(query)})")
        for path in files:
            table = _created_table(query)
            edit.declarations.append(source_declaration(path))
            if table:
                edit.notes.append(
                    f"{table} was loaded from {path}: land it in the warehouse (`nb-assets land {table} --from {path}`) "
                    f"or read it as source('{source_name(path)}')"
                )
        return edit
    found = list(_SQL_FILE.finditer(query))
    if not found:
        return CellEdit()
    edit = CellEdit()

    def replaced(match: re.Match[str]) -> str:
        path = match.group("p1") or match.group("p2")
        edit.declarations.append(source_declaration(path))
        edit.notes.append(f"`{match.group(0).strip()}` → source('{source_name(path)}'): the host fetches the file before the run")
        return f"source('{source_name(path)}')"

    edit.cells = [NewCell("code", first + "\n" + _SQL_FILE.sub(replaced, query))]
    return edit


def _first_words(query: str) -> str:
    return " ".join(query.split()[:3])


def _created_table(query: str) -> str | None:
    match = re.search(r"create\s+(?:or\s+replace\s+)?(?:temp\w*\s+)?table\s+(?:if\s+not\s+exists\s+)?([\w.]+)", query, re.IGNORECASE)
    if not match:
        return None
    name = match.group(1).lower()
    return name if "." in name else f"main.{name}"


def _writes(query: str) -> bool:
    """Any statement that is not a read: judged by sqlglot where it parses, by its first word otherwise."""
    try:
        import sqlglot
        from sqlglot import exp

        statements = [s for s in sqlglot.parse(query, read="duckdb") if s is not None]
        return any(not isinstance(s, (exp.Query, exp.Values)) for s in statements)
    except Exception:  # sqlglot's errors are many kinds; the first word is a fair fallback
        words = re.sub(r"--[^\n]*", "", query).strip().lower()
        return bool(words) and not words.startswith(_READ_ONLY)
