"""The disk cache of parsed notebooks: where a spec is kept, and reading it only when it is safe.

Keyed by path, content, dialect and the parser's own source (`_PARSER_MODULES`),
so a changed notebook or a changed rule is parsed again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import pickle
import stat
from pathlib import Path

from nb_assets.spec import NotebookSpec


def cached_spec(path: str, content_hash: str, dialect: str = "duckdb") -> NotebookSpec | None:
    """The spec the disk cache holds for this path and content, or None; never parses."""
    return load_spec(spec_cache_file(path, content_hash, dialect))


def spec_cache_file(path: str, content_hash: str, dialect: str = "duckdb") -> Path:
    """Where the spec of this path, content and dialect is kept: `$NB_ASSETS_CACHE/specs`,
    default `~/.cache/nb_assets/specs`."""
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
    "nb_assets.analysis.notebook_file", "nb_assets.analysis.parameters_cell", "nb_assets.analysis.sql_inputs",
    "nb_assets.analysis.output_calls", "nb_assets.analysis.spec_cache",
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


def load_spec(cache: Path) -> NotebookSpec | None:
    """The spec in a cache file, or None if there is none or it cannot be trusted or read."""
    try:
        if not _trusted(cache):
            return None
        with cache.open("rb") as f:
            spec = pickle.load(f)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return spec if isinstance(spec, NotebookSpec) else None


def store_spec(cache: Path, spec: NotebookSpec) -> None:
    """Write a spec to the disk cache; a cache that cannot be written only costs time."""
    try:
        cache.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        cache.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, cache)  # atomic: a concurrent reader sees all or nothing
    except OSError:
        pass  # a cache that cannot be written only costs time

