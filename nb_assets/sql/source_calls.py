"""`source('<name>')` in a SQL input: a declared source read as a table.

Lineage sees it as the relation `source.<name>` (so the graph, the policy and
`nb-assets lineage` treat a source exactly like a source table); the prefetch
compiles it to the relation that holds the host's fetched copy. Token-level on
purpose: the call is replaced by a plain identifier before sqlglot parses, so
every other rule (read-only, escape hatches, parameters) judges the same query.
"""

from __future__ import annotations

import ast
import ntpath
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

SOURCE_SCHEMA = "source"
SOURCE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class SourceCall:
    name: str
    start: int  # offsets of `source('<name>')` in the query text
    end: int


def source_calls(sql: str, dialect: str = "duckdb") -> tuple[list[SourceCall], list[str]]:
    """Every `source('<name>')` in `sql`, and problems (a name that is not a literal source name)."""
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except TokenError:
        return [], []  # the lineage reports the syntax
    calls: list[SourceCall] = []
    problems: list[str] = []
    for i, token in enumerate(tokens[:-1]):
        if token.text.lower() != "source" or tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        if i > 0 and tokens[i - 1].token_type == TokenType.DOT:
            continue  # some_schema.source(...): somebody's macro
        arg = tokens[i + 2] if i + 2 < len(tokens) else None
        close = tokens[i + 3] if i + 3 < len(tokens) else None
        if arg is None or arg.token_type != TokenType.STRING or close is None or close.token_type != TokenType.R_PAREN:
            problems.append("source() takes one declared source's name as a string literal, e.g. source('partner_rates')")
            continue
        if not SOURCE_NAME.match(arg.text):
            problems.append(f"source({arg.text!r}): a source name is lowercase letters, digits and _")
            continue
        calls.append(SourceCall(arg.text, token.start, close.end + 1))
    return calls, problems


def replace_source_calls(sql: str, to: Callable[[str], str], dialect: str = "duckdb") -> str:
    """`sql` with each `source('<name>')` replaced by `to(name)` (an identifier or a qualified name)."""
    calls, _ = source_calls(sql, dialect)
    for call in reversed(calls):
        sql = sql[: call.start] + to(call.name) + sql[call.end :]
    return sql


def as_relations(sql: str, dialect: str = "duckdb") -> str:
    """What lineage analyzes: each call as the relation `source.<name>` (same line, so positions hold)."""
    return replace_source_calls(sql, lambda name: f"{SOURCE_SCHEMA}.{name}", dialect)


def fetched_relation(name: str) -> str:
    """The name the prefetch gives a source's fetched copy inside the warehouse session."""
    return f"nb_assets_source_{name}"


def suggested_name(location: str) -> str:
    """A source name for a file or URL someone wrote literally: `data/penguins.csv` → `penguins`."""
    tail = location.split("?")[0].rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    name = re.sub(r"[^a-z0-9_]+", "_", tail.lower()).strip("_") or "data"
    return name if not name[0].isdigit() else f"s_{name}"


def declare_hint(location: str | None = None, *, project_path: str | None = None,
                 covering: tuple[str, str] | None = None) -> str:
    """What to do instead of reading a file or URL directly: declare it in the source registry.

    `project_path`: where a relative `location` (read from the notebook's folder, as the kernel
    does) is relative to the project, which is what a Source's path is relative to; unknown,
    the hint says so rather than suggest the notebook-relative path. `covering`: a declared
    source (name, location) that already holds the file: the hint is to read that instead.
    Every hint naming a location starts with `declare <location>` or `read <location>`, so
    `placed_hint` can find and re-render it once the project is known.
    """
    if not location:
        return (
            f"declare the file or URL in the project's source registry (`Source('name', path=... or url=..., zones=[...])`: "
            f"{_WHERE}) and read it with a `%%source df name` cell or as `source('name')` in SQL"
        )
    if covering is not None:
        source, where = covering
        return (
            f"read {location!r} through the declared source {source!r} instead (it reads {where}): "
            f"a `%%source df {source}` cell, or `source({source!r})` in SQL"
        )
    name = suggested_name(location)
    read = f"and read it as `source({name!r})` in SQL or with a `%%source df {name}` cell"
    if is_url(location):
        return f"declare {location!r} in the project's source registry, `Source({name!r}, url={location!r}, zones=[...])` ({_WHERE}), {read}"
    if project_path is None and not is_absolute(location):
        return (
            f"declare {location!r} in the project's source registry, `Source({name!r}, path=..., zones=[...])` with its "
            f"path relative to the project, not to the notebook ({_WHERE}), {read}"
        )
    path = project_path or location
    return (f"declare {location!r} in the project's source registry, `Source({name!r}, path={path!r}, zones=[...])` "
            f"(a path relative to the project; {_WHERE}), {read}")


# Where a Source is declared: a project's definitions.py, or its declarations.yaml when definitions.py loads it.
_WHERE = "sources=[...] in definitions.py, or `sources:` in declarations.yaml loaded with load_sources_yaml"
_HINTED = re.compile(r"(?:declare|read) ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") "
                     r"(?:in the project's source registry|through the declared source)")


def is_url(location: str) -> bool:
    """A location with a scheme (`https://`, `s3://`): not a path on this machine."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location) is not None


def is_absolute(location: str) -> bool:
    return is_url(location) or posixpath.isabs(location) or ntpath.isabs(location)


def project_relative(location: str, notebook_dir: str, project_root: str) -> str:
    """A literal path as a Source's path: a relative one is read from the notebook's folder (the
    kernel's working folder), then named from the project root; a URL or absolute path stays."""
    if is_absolute(location):
        return location
    target = posixpath.normpath(posixpath.join(notebook_dir.replace("\\", "/"), location.replace("\\", "/")))
    relative = posixpath.relpath(target, project_root.replace("\\", "/"))
    return target if relative == ".." or relative.startswith("../") else relative


def hinted_location(message: str) -> tuple[str, int] | None:
    """The location a `declare_hint` in `message` names, and where that hint starts; None without one."""
    found = _HINTED.search(message)
    if found is None:
        return None
    try:
        location = ast.literal_eval(found.group(1))
    except (ValueError, SyntaxError):
        return None
    return (location, found.start()) if isinstance(location, str) else None


def placed_hint(message: str, notebook_dir: str, project_root: str | None,
                covering: Callable[[str], tuple[str, str] | None] | None = None) -> str:
    """`message` with its `declare_hint` re-rendered for a notebook in `notebook_dir` of the project at
    `project_root` (absolute paths; None: not known); `covering(project_path)` names a declared source
    that holds the file. A message without a hint is returned as it is."""
    found = hinted_location(message)
    if found is None:
        return message
    location, start = found
    if is_url(location):
        project_path = None
    elif project_root is None:
        project_path = location if is_absolute(location) else None
    else:
        project_path = project_relative(location, notebook_dir, project_root)
    source = covering(project_path or location) if covering is not None and (project_path or is_absolute(location)) else None
    return message[:start] + declare_hint(location, project_path=project_path, covering=source)
