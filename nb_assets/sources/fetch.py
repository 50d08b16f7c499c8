"""Fetch the declared sources a run reads into its input folder as Parquet, before the sandbox.

One entry point, `fetch_sources`: each source's location is bound to the run's
parameters (as values), read by the fetcher of its kind (files.py, http.py, or
the injected `read_table` for another database: drivers live in nb_assets.warehouse),
decoded and checked against a declared schema (formats.py), and written as
`source__<name>.parquet`. Any failure raises SourceFetchError naming the source
and the location (its `source` attribute names it too); the caller has not
started the sandbox and changed nothing. `FetchLimits.ends` is the run's
prefetch deadline (a monotonic time): every fetch gets at most what is left of
it, and one it cuts raises FetchCutError, which the run reports as the stage's
timeout (runs/pipeline.py).
What was read (location, bytes, rows, version, content hash) is returned for
the run's metadata: it is the data version Dagster shows for the source.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nb_assets.errors import DeclarationError, SourceFetchError
from nb_assets.sources.model import Source, bind_location, find_source

# (connection DSN, "schema.table", destination Parquet) → (rows, bytes); nb_assets.warehouse.source_tables.read_table
TableReader = Callable[[str, str, Path], tuple[int, int]]
CONNECTION_ENV = "NB_ASSETS_CONNECTION_{}"


_CUT_SLACK_S = 0.05  # a timeout this close to the deadline was the deadline's (timers fire a little early or late)


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float = 120.0  # each fetch's own limit
    max_bytes: int = 1 << 30
    ends: float = math.inf  # time.monotonic() by which every fetch must be done: the run's prefetch deadline

    def seconds(self) -> float:
        """What one fetch may take now: its own limit, never past `ends`."""
        return min(self.timeout_s, self.ends - time.monotonic())

    def cut(self) -> bool:
        """Whether `ends` has come (a fetch failing now was cut by it, not by its own limit)."""
        return self.ends - time.monotonic() <= _CUT_SLACK_S


class FetchCutError(SourceFetchError):
    """A fetch stopped by the run's deadline (FetchLimits.ends), not by the source's own limits."""

    def __init__(self, message: str, *, source: str, where: str) -> None:
        super().__init__(message, source=source)
        self.where = where  # "source 'rates' at https://...": what was being fetched


@dataclass(frozen=True)
class Fetched:
    source: str
    kind: str
    location: str  # bound; never holds a secret (header values are not part of it)
    file: Path
    rows: int
    bytes: int
    version: str | None  # ETag / Last-Modified / mtime
    content_hash: str

    def facts(self) -> dict[str, Any]:
        return {
            "location": self.location, "kind": self.kind, "bytes": self.bytes, "rows": self.rows,
            "version": self.version, "content_hash": self.content_hash,
        }


def source_file(name: str) -> str:
    """The fetched copy's file name in the run's input folder."""
    return f"source__{name}.parquet"


def fetch_sources(
    sources: Sequence[Source], names: Sequence[str], params: Mapping[str, Any], dest_dir: Path, *,
    base_dir: Path, read_table: TableReader | None = None, limits: FetchLimits | None = None,
) -> dict[str, Fetched]:
    """Fetch each of `names` (declared in `sources`) into `dest_dir`; all or an error."""
    limits = limits or FetchLimits()
    fetched: dict[str, Fetched] = {}
    for name in dict.fromkeys(names):
        source = find_source(sources, name)
        if source is None:
            raise DeclarationError(f"source {name!r} is not declared; declared: {', '.join(sorted(s.name for s in sources)) or 'none'}")
        where = describe(source, params, base_dir)
        if limits.cut():
            raise FetchCutError(f"{where}: no time left to fetch it", source=name, where=where)
        try:
            fetched[name] = fetch_one(source, params, dest_dir / source_file(name), base_dir=base_dir, read_table=read_table,
                                      limits=limits)
        except FetchCutError:
            raise
        except SourceFetchError as exc:
            if limits.cut():  # its time was the run's, and that ran out
                raise FetchCutError(str(exc), source=name, where=where) from exc
            exc.source = name  # for the caller to name the cell that reads it
            raise
    return fetched


def describe(source: Source, params: Mapping[str, Any], base_dir: Path) -> str:
    """"source 'x' at <its location, bound>", as every message about fetching it starts."""
    from nb_assets.sources.files import resolve_path

    if source.connection is not None:
        return f"source {source.name!r} at {source.location}"
    try:
        location = bind_location(source, params)
    except DeclarationError:
        return f"source {source.name!r} at {source.location}"
    return f"source {source.name!r} at {location if source.url else resolve_path(location, base_dir)}"


def fetch_one(
    source: Source, params: Mapping[str, Any], dest: Path, *, base_dir: Path, read_table: TableReader | None, limits: FetchLimits,
) -> Fetched:
    import pyarrow.parquet as pq

    from nb_assets.sources.formats import concat, conform, decode, parquet_rows

    if source.connection is not None:
        return _fetch_table(source, dest, read_table)
    try:
        location = bind_location(source, params)
    except DeclarationError as exc:
        raise SourceFetchError(str(exc)) from exc
    where = f"source {source.name!r} at {location}"
    if source.url is not None:
        from nb_assets.sources.http import content_hash, http_get

        body = http_get(location, name=source.name, headers=source.headers, allow_private=source.allow_private,
                        timeout_s=limits.seconds(), max_bytes=limits.max_bytes)
        table = decode(body.data, source.file_format, where)
        size, version, digest = len(body.data), body.etag or body.last_modified, content_hash(body.data)
    else:
        from nb_assets.sources.files import read_files, resolve_path

        location = resolve_path(location, base_dir)
        files = read_files(location, name=source.name, max_bytes=limits.max_bytes, ends=limits.ends)
        size, version, digest = sum(map(len, files.bodies)), files.version, files.content_hash
        if source.file_format == "parquet" and not source.schema and len(files.bodies) == 1:
            # Already what the run reads: kept byte for byte once its footer reads (no decode, no re-encode).
            rows = parquet_rows(files.bodies[0], where)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(files.bodies[0])
            return Fetched(source.name, source.kind, location, dest, rows, size, version, digest)
        table = concat([decode(b, source.file_format, f"{where} ({f})") for b, f in zip(files.bodies, files.files)], where)
    table = conform(table, source.schema, where)
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, dest)
    return Fetched(source.name, source.kind, location, dest, table.num_rows, size, version, digest)


def _fetch_table(source: Source, dest: Path, read_table: TableReader | None) -> Fetched:
    import os

    where = f"source {source.name!r} at {source.location}"
    variable = CONNECTION_ENV.format(str(source.connection).upper())
    dsn = os.environ.get(variable)
    if not dsn:
        raise SourceFetchError(f"{where}: connection {source.connection!r} has no DSN: set {variable} on the host")
    if read_table is None:
        raise SourceFetchError(f"{where}: this caller cannot read other databases")
    rows, size = read_table(dsn, str(source.table), dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    return Fetched(source.name, _connection_kind(dsn), source.location, dest, rows, size, None, digest)


def _connection_kind(dsn: str) -> str:
    lowered = dsn.lower()
    if lowered.startswith(("postgres://", "postgresql://")):
        return "postgres"
    return "sqlite" if lowered.endswith((".sqlite", ".sqlite3", ".db")) or lowered.startswith("sqlite:") else "duckdb"
