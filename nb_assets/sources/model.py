"""A declared source: a named location outside the warehouse and the format of its bytes.

Pure declaration (no I/O, no driver): what `definitions.py` passes to
`notebook_definitions(..., sources=[...])` and what `declarations.yaml` lists
under `sources:`. Locations may name the notebook's parameters (`$ds`); they are
bound as values when a run fetches (`bind_location`), never spliced as code: in
a URL's query they are URL-encoded, in a path segment they must be one plain
segment (no `/`, no `..`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from nb_assets.errors import DeclarationError
from nb_assets.sql.source_calls import SOURCE_SCHEMA

Format = Literal["parquet", "csv", "json", "ndjson"]
Kind = Literal["https", "s3", "file", "postgres", "duckdb", "sqlite", "gs", "az"]
FORMATS: tuple[str, ...] = ("parquet", "csv", "json", "ndjson")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# A bound path segment: a day, an id, a region; never a separator or a parent.
SEGMENT = re.compile(r"^[A-Za-z0-9_.:=+-]{1,200}$")
# Schema types a declaration may name → the Arrow type name the fetch casts to.
SCHEMA_TYPES = ("string", "int64", "int32", "float64", "double", "bool", "date", "timestamp")
_OBJECT_STORES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az", "file": "file"}


def relation(name: str) -> str:
    """The table-like name a source has in lineage and policy: `source.<name>`."""
    return f"{SOURCE_SCHEMA}.{name}"


def is_relation(table: str) -> bool:
    return table.startswith(f"{SOURCE_SCHEMA}.")


def name_of(table: str) -> str:
    """The source's name in a relation `source.<name>` (see `relation`)."""
    return table[len(SOURCE_SCHEMA) + 1:]


@dataclass(frozen=True)
class Header:
    """An HTTP header; its value comes from the environment variable `env` (a secret) or is `value`."""

    value: str | None = None
    env: str | None = None


@dataclass(frozen=True)
class Source:
    """One declared source. Exactly one location: `url` (http/https), `path` (a local file,
    folder or glob, or an fsspec URL such as `s3://bucket/prefix/*.parquet`), or
    `connection` + `table` (a table in another database; the connection's DSN comes from
    the environment variable `NB_ASSETS_CONNECTION_<NAME>`, never from the definitions).

    headers: HTTP header → literal value, or `{"env": "VAR"}` for a secret read from the
        environment when fetching (never written into records or metadata).
    allow_private: allow a URL that resolves to a loopback, link-local or private address.
    schema: column → type (string, int64, int32, float64, double, bool, date, timestamp);
        a fetch missing a column, or one that does not cast, fails before the run.
    poll_s: watch the source for new data every `poll_s` seconds (sources/watch.py): a folder or
        object-store prefix lands when a file is added or changes, an HTTP source when its content
        hash changes; `on_inputs_landed` notebooks then run as for a landed table.
    """

    name: str
    url: str | None = None
    path: str | None = None
    connection: str | None = None
    table: str | None = None
    format: Format | None = None
    zones: Sequence[str] = ()
    headers: Mapping[str, Any] | None = None
    allow_private: bool = False
    schema: Mapping[str, str] | None = None
    poll_s: int | None = None
    declared_at: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        problems = source_problems(self)
        if problems:
            where = f"{self.declared_at}: " if self.declared_at else ""
            raise DeclarationError(f"{where}source {self.name!r}: " + "; ".join(problems))
        object.__setattr__(self, "zones", tuple(self.zones))

    @property
    def relation(self) -> str:
        return relation(self.name)

    @property
    def kind(self) -> Kind:
        """What the location is, for the graph's kinds: https, s3, file, postgres, duckdb, sqlite."""
        if self.url is not None:
            return "https"
        if self.connection is not None:
            return "postgres"  # refined at fetch time from the DSN; Postgres is the common case
        scheme = urlsplit(self.path or "").scheme.lower()
        return _OBJECT_STORES.get(scheme, "file")  # type: ignore[return-value]

    @property
    def location(self) -> str:
        """The declared location, unbound, as people read it (no secrets: headers are not in it)."""
        if self.connection is not None:
            return f"connection {self.connection}: {self.table}"
        return str(self.url or self.path)

    @property
    def file_format(self) -> str:
        """The declared format, else the location's extension, else parquet."""
        if self.format:
            return self.format
        tail = (self.url or self.path or "").split("?")[0].rstrip("/").lower()
        for fmt, ext in (("parquet", ".parquet"), ("csv", ".csv"), ("ndjson", ".ndjson"), ("ndjson", ".jsonl"), ("json", ".json")):
            if tail.endswith(ext):
                return fmt
        return "json" if self.url else "parquet"

    @property
    def params(self) -> tuple[str, ...]:
        """The notebook parameters the location names (`$ds`), in order."""
        text = self.url or self.path or ""
        return tuple(dict.fromkeys(PARAM.findall(text)))

    def declaration(self) -> str:
        """How this source is declared in Python, for messages that say what to add."""
        return declaration_text(self.name, url=self.url, path=self.path, zones=self.zones)


def declaration_text(name: str, *, url: str | None = None, path: str | None = None, zones: Sequence[str] = ()) -> str:
    where = f"url={url!r}" if url else f"path={path!r}"
    zone_list = ", ".join(repr(z) for z in zones) or "'...'"
    return f"Source({name!r}, {where}, zones=[{zone_list}])"


def source_problems(source: Source) -> list[str]:
    problems: list[str] = []
    if not isinstance(source.name, str) or not NAME.match(source.name):
        problems.append("a source name is lowercase letters, digits and _ (it is used as `source('<name>')`)")
    locations = [n for n in ("url", "path", "connection") if getattr(source, n) is not None]
    if len(locations) != 1:
        problems.append("give exactly one location: url=, path= or connection= (with table=)")
    if source.url is not None:
        parts = urlsplit(source.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"url {source.url!r} must be http:// or https:// with a host")
        elif "$" in parts.netloc:
            problems.append("a parameter may not choose the host: bind it in the path or the query")
    if source.path is not None and not source.path.strip():
        problems.append("path is empty")
    if source.path is not None and "$" in urlsplit(source.path).netloc:
        problems.append("a parameter may not choose the bucket: bind it in the key")
    if source.connection is not None:
        if not NAME.match(source.connection):
            problems.append("connection is a name (its DSN comes from NB_ASSETS_CONNECTION_<NAME>)")
        if not source.table or not TABLE.match(source.table):
            problems.append("a connection source needs table='schema.table'")
    elif source.table is not None:
        problems.append("table= goes with connection=")
    if source.format is not None and source.format not in FORMATS:
        problems.append(f"format {source.format!r} is not one of {', '.join(FORMATS)}")
    for zone in source.zones:
        if not isinstance(zone, str) or not re.match(r"^[A-Za-z0-9_.-]{1,63}$", zone):
            problems.append(f"zone {zone!r} is not a zone name")
    for header, value in (source.headers or {}).items():
        if not (isinstance(value, str) or (isinstance(value, Mapping) and set(value) == {"env"})):
            problems.append(f"header {header!r}: give a string, or {{'env': 'VARIABLE'}} for a secret")
    if source.poll_s is not None and (not isinstance(source.poll_s, int) or source.poll_s < 1):
        problems.append("poll_s is a whole number of seconds, 1 or more")
    if source.poll_s is not None and source.connection is not None:
        problems.append("a connection source cannot be polled (poll_s=); land its table into the warehouse instead")
    for column, kind in (source.schema or {}).items():
        if kind not in SCHEMA_TYPES:
            problems.append(f"schema column {column!r}: type {kind!r} is not one of {', '.join(SCHEMA_TYPES)}")
    return problems


def bind_location(source: Source, params: Mapping[str, Any]) -> str:
    """The location with `$name` bound to the run's parameter values, as values:
    URL-encoded in a URL's query, a single validated segment anywhere else."""
    template = source.url or source.path or ""
    missing = [p for p in source.params if p not in params]
    if missing:
        raise DeclarationError(
            f"source {source.name!r}: its location names ${', $'.join(missing)}, which the run does not have "
            f"(the notebook's parameters: {', '.join(sorted(params)) or 'none'})"
        )
    query_at = template.find("?") if source.url else -1

    def bound(match: re.Match[str]) -> str:
        value = params[match.group(1)]
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        if 0 <= query_at < match.start():
            return quote(text, safe="")
        if not SEGMENT.match(text) or text in (".", ".."):
            raise DeclarationError(
                f"source {source.name!r}: parameter ${match.group(1)}={text!r} cannot stand in a path segment "
                "(letters, digits and _.:=+- only; no '/', no '..')"
            )
        return text

    return PARAM.sub(bound, template)


def find_source(sources: Sequence[Source], name: str) -> Source | None:
    return next((s for s in sources if s.name == name), None)


def duplicate_names(sources: Sequence[Source]) -> list[str]:
    seen: set[str] = set()
    return [s.name for s in sources if s.name in seen or seen.add(s.name)]  # type: ignore[func-returns-value]
