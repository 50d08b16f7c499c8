"""What the static rules look for: tables of qualified names and predicates
over single expressions; name resolution and the rules live in analysis/checks.py.

A pattern is matched against the fully qualified name a reference resolves to
(`import requests as r; r.get` → `requests.get`): it matches the name itself,
anything under it (`subprocess` matches `subprocess.run`), or, when it holds
`*`, as a glob (`os.exec*`). Shell escapes and magics are matched by the names
static_analysis gives them: `ipython.system` (`!cmd`), `ipython.getoutput`
(`!!cmd`, `x = !cmd`), `ipython.%name` (line magic), `ipython.%%name` (cell
magic). Kept apart so that reviewing what is banned does not mean reading the
resolver.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable, Sequence

from nb_assets.spec import Severity

Entry = tuple[str, Severity, str]  # (pattern, severity, what is wrong and what to do instead)

NETWORK_ACCESS = "network-access"
SHELL_PROCESS = "shell-process"
DIRECT_DATA_ACCESS = "direct-data-access"
FILE_WRITE = "file-write"
DYNAMIC_CODE = "dynamic-code"
SQL_IN_PYTHON = "sql-in-python"
SYNTAX_ERROR = "syntax-error"


def _entries(severity: Severity, hint: str, *patterns: str) -> tuple[Entry, ...]:
    return tuple((pattern, severity, hint) for pattern in patterns)


NO_NETWORK = (
    "reaches the network, which scheduled notebooks do not have; read warehouse data through a %%sql input cell, "
    "and files or URLs through a declared source (Source(...) in the project's source registry, read by a %%source cell)"
)
NETWORK: tuple[Entry, ...] = _entries(
    "error", NO_NETWORK,
    "socket", "socketserver", "ssl", "requests", "urllib.request", "urllib2", "urllib3", "http.client",
    "http.server", "httplib", "httpx", "aiohttp", "smtplib", "ftplib", "telnetlib", "poplib", "imaplib",
    "nntplib", "paramiko", "boto3", "botocore", "s3fs", "gcsfs", "adlfs", "fsspec", "google.cloud", "azure",
    "websocket", "websockets", "grpc", "pycurl", "xmlrpc", "webbrowser", "asyncio.open_connection",
    "asyncio.start_server", "tornado.httpclient",
)

NO_SHELL = "runs a shell or another program, which scheduled notebooks may not; do the work in Python in the notebook"
SHELL: tuple[Entry, ...] = _entries(
    "error", NO_SHELL,
    "subprocess", "pty", "pexpect", "sh", "plumbum", "os.system", "os.popen", "os.exec*", "os.spawn*",
    "os.posix_spawn*", "os.fork", "os.forkpty", "asyncio.create_subprocess_*",
    "ipython.system", "ipython.system_raw", "ipython.system_piped", "ipython.getoutput",
    "ipython.%system", "ipython.%sx", "ipython.%sc", "ipython.%%!", "ipython.%%sx", "ipython.%%system",
    "ipython.%%bash", "ipython.%%sh", "ipython.%%script", "ipython.%%perl", "ipython.%%ruby",
    "ipython.%%python*", "ipython.%%pypy", "ipython.%%cmd", "ipython.%%powershell", "ipython.%run",
) + _entries(
    # Public notebooks open with `%pip install jupysql ...`: say exactly what to do with the line.
    "error", "installs packages while the notebook runs, and the sandbox has no network: remove the line and add "
    "what it installs to the project's sandbox image (`nb-assets adopt NOTEBOOK --write` removes it)",
    "ipython.%pip", "ipython.%conda", "ipython.%mamba", "ipython.%micromamba",
) + _entries(
    "warning", "starts worker processes; the sandbox limits processes, so prefer vectorised pandas",
    "multiprocessing", "concurrent.futures.ProcessPoolExecutor", "joblib.Parallel",
)

NO_DIRECT = (
    "reads data outside the declared inputs; read warehouse data through a %%sql input cell, "
    "and files or URLs through a declared source (Source(...) in the project's source registry, read by a %%source cell)"
)
DIRECT_DATA: tuple[Entry, ...] = _entries(
    "error", NO_DIRECT,
    "duckdb", "sqlalchemy", "sqlite3", "psycopg", "psycopg2", "asyncpg", "pg8000", "pymysql", "MySQLdb", "mysql.connector",
    "pyodbc", "cx_Oracle", "oracledb", "snowflake.connector", "pymongo", "redis", "clickhouse_driver",
    "adbc_driver_*", "pandas.read_sql*", "pandas.io.sql", "pandas.read_gbq", "polars.read_database*",
)
# Readers that bypass SQL inputs when given a path or URL; an in-memory buffer is fine.
DATA_READERS: tuple[str, ...] = (
    "pandas.read_*", "polars.read_*", "polars.scan_*", "pyarrow.parquet.read_*", "pyarrow.csv.read_csv",
    "pyarrow.feather.read_*", "pyarrow.dataset.dataset", "numpy.load", "numpy.loadtxt", "numpy.genfromtxt",
    "numpy.fromfile", "joblib.load",
)
IN_MEMORY: tuple[str, ...] = ("io.StringIO", "io.BytesIO", "sys.stdout", "sys.stderr")

NO_WRITE = 'writes files; write tables with output("schema.table", df) and let the host load them'
FILE_WRITES: tuple[Entry, ...] = _entries(
    "error", NO_WRITE,
    "os.remove", "os.unlink", "os.rename", "os.renames", "os.replace", "os.makedirs", "os.mkdir", "os.rmdir",
    "os.removedirs", "os.symlink", "os.link", "os.chmod", "os.chown", "os.truncate", "os.mkfifo", "os.open",
    "os.write", "shutil.copy*", "shutil.move", "shutil.rmtree", "shutil.make_archive", "shutil.unpack_archive",
    "shutil.chown", "numpy.save*", "joblib.dump", "ipython.%%writefile", "ipython.%%file", "ipython.%save",
    "ipython.%logstart", "ipython.%store",
)
# Functions that open files: (qualified name, index of the positional `mode` argument). Default mode is read.
OPENERS: dict[str, int] = {
    "builtins.open": 1, "io.open": 1, "codecs.open": 1, "gzip.open": 1, "bz2.open": 1, "lzma.open": 1,
    "tarfile.open": 1, "zipfile.ZipFile": 1, "os.fdopen": 1,
}
# Methods that write when given a path or buffer (without one, most return the data instead).
PATH_WRITE_METHODS = frozenset({
    "to_csv", "to_parquet", "to_json", "to_excel", "to_pickle", "to_feather", "to_hdf", "to_stata", "to_orc",
    "to_xml", "to_html", "to_latex", "to_markdown", "to_string", "to_netcdf", "to_zarr", "tofile",
    "write_csv", "write_parquet", "write_json", "write_ndjson", "write_excel", "write_ipc", "write_avro",
    "write_delta", "sink_parquet", "sink_csv", "sink_ipc", "write_image", "write_html",
})
PATH_KEYWORDS = frozenset({
    "path_or_buf", "path_or_buffer", "path", "buf", "excel_writer", "fname", "file", "filename", "file_name",
    "target",
})
# Methods that always write (pathlib, DataFrame.to_sql); names that also mean something harmless are left out.
ALWAYS_WRITE_METHODS = frozenset({
    "to_sql", "to_gbq", "to_clipboard", "write_database", "write_text", "write_bytes", "touch", "mkdir",
    "unlink", "rmdir", "symlink_to", "hardlink_to",
})
SAVEFIG_HINT = "saves a figure to a file; figures shown in the notebook are kept in the executed notebook, so just display them"

NO_DYNAMIC = "runs code that cannot be checked before the notebook runs; write the code in a cell"
DYNAMIC: tuple[Entry, ...] = _entries(
    "error", NO_DYNAMIC,
    "builtins.exec", "builtins.eval", "builtins.compile", "builtins.breakpoint", "runpy", "ipython.run_cell", "ipython.run_cell_async",
    "ipython.ex", "ipython.ev", "ipython.run_code", "ipython.run_ast_nodes", "ipython.safe_execfile*",
    "ipython.%load", "ipython.%macro",
)
DYNAMIC_IMPORTS = frozenset({"builtins.__import__", "importlib.import_module", "importlib.__import__"})
NAMESPACES = frozenset({"builtins.globals", "builtins.locals", "builtins.vars"})

# Magics whose body (cell) or argument (line) is ordinary Python: checked as such.
PYTHON_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})

# Literal text of a string built in Python, interpolated parts replaced by `_`.
SQL_TEXT = re.compile(
    r"\bselect\b[\s\S]+?\bfrom\b|\binsert\s+into\b|\bupdate\s+\S+\s+set\b|\bdelete\s+from\b"
    r"|\b(?:create|drop|alter)\s+(?:or\s+replace\s+)?(?:temp\w*\s+)?(?:table|view)\b|\bmerge\s+into\b",
    re.IGNORECASE,
)
# Every SQL_TEXT alternative starts with one of these words, and a word lies within one literal.
SQL_KEYWORD = re.compile(r"select|insert|update|delete|create|drop|alter|merge", re.IGNORECASE)
SQL_HINT = "SQL text is built in Python; put the query in a %%sql input cell and bind values as $param"


# --- predicates over single expressions (no name resolution) ---------------------------------------

_MATCHES: dict[tuple[str, int], tuple[Sequence[Entry], Entry | None]] = {}


def match(qualname: str, table: Sequence[Entry]) -> Entry | None:
    """The first entry whose pattern names `qualname` or a module/object it lives in."""
    key = (qualname, id(table))  # memoized: the same names come up in every notebook
    cached = _MATCHES.get(key)
    if cached is None or cached[0] is not table:  # `is`: an id can be reused once a table is gone
        if len(_MATCHES) > 100_000:
            _MATCHES.clear()
        cached = _MATCHES[key] = (table, _match(qualname, table))
    return cached[1]


def _match(qualname: str, table: Sequence[Entry]) -> Entry | None:
    for entry in table:
        pattern = entry[0]
        if qualname == pattern or qualname.startswith(pattern + ".") or ("*" in pattern and fnmatch.fnmatchcase(qualname, pattern)):
            return entry
    return None


def display(qualname: str) -> str:
    """How the author wrote it: `%%bash`, `!cmd`, `exec`, `get_ipython().run_cell`."""
    if qualname.startswith("ipython.%"):
        return qualname.removeprefix("ipython.")
    escapes = {"ipython.system": "!cmd", "ipython.getoutput": "!!cmd"}
    return escapes.get(qualname) or qualname.replace("ipython.", "get_ipython().").removeprefix("builtins.")


def argument(call: ast.Call, index: int, keywords: Iterable[str]) -> ast.expr | None:
    """An argument by position, else by any of the keywords."""
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg in keywords), None)


def literal_arg(call: ast.Call, index: int, keyword: str) -> str | None:
    arg = argument(call, index, (keyword,))
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def open_mode(call: ast.Call, index: int) -> str | None:
    """The literal `mode` of an open-like call ("r" when absent), None when computed."""
    arg = argument(call, index, ("mode",))
    if arg is None:
        return "r"
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def writes(mode: str | None) -> bool:
    """A computed mode might write, so it counts as writing."""
    return mode is None or any(c in mode for c in "wax+")


def is_write_mode(text: str) -> bool:
    """`text` is a mode string (not just any string argument) that writes."""
    return bool(text) and set(text) <= set("rwaxbt+U") and writes(text)


def builds_sql(node: ast.AST) -> bool:
    """An f-string, `%`, `.format()` or `+` whose literal parts read as SQL."""
    if isinstance(node, ast.JoinedStr):
        built, parts = any(isinstance(v, ast.FormattedValue) for v in node.values), [node]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        built, parts = _is_text(node.left), [node.left]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = _concatenated(node)
        built = any(_is_text(p) for p in parts) and not all(isinstance(p, ast.Constant) for p in parts)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        built, parts = _is_text(node.func.value), [node.func.value]
    else:
        return False
    return built and SQL_TEXT.search(" ".join(_text(p) for p in parts)) is not None


def _text(node: ast.AST) -> str:
    """Literal text of a string expression; interpolated parts become ` _ ` (a table name, a value)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values)
    return " _ "


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _concatenated(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _concatenated(node.left) + _concatenated(node.right)
    return [node]
