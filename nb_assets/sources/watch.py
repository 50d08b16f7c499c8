"""Has a declared source landed new data? A mark of what is there now, for a sensor to compare.

- A folder or object-store prefix: the listing below it (each file's path, size and
  ETag or mtime). A location with parameters (`s3://landing/orders/$ds/*.parquet`)
  is watched from the prefix before its first parameter (`s3://landing/orders/`),
  so each new day's folder is seen.
- An HTTP source: the content hash of its body (fetched with the same bounds and
  checks as a run's fetch); a URL with parameters cannot be polled.
New files are named (the ones not in the previous mark), each once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from nb_assets.errors import SourceFetchError
from nb_assets.sources.model import PARAM, Source


@dataclass(frozen=True)
class Mark:
    digest: str  # changes whenever what is there changes
    files: tuple[str, ...] = ()  # a prefix's files, to name the new ones
    location: str = ""


def watched_location(source: Source, base_dir: Path) -> str:
    from nb_assets.sources.files import resolve_path

    template = source.url or source.path or ""
    first = PARAM.search(template)
    if first is None:
        return template if source.url else resolve_path(template, base_dir)
    if source.url:
        raise SourceFetchError(f"source {source.name!r}: a URL with parameters ({template}) cannot be polled")
    return resolve_path(template[: template.rfind("/", 0, first.start()) + 1], base_dir)


def current_mark(source: Source, base_dir: Path, *, timeout_s: float = 60.0, max_bytes: int = 1 << 30) -> Mark:
    """What the source holds now; a source that cannot be read raises SourceFetchError naming it."""
    location = watched_location(source, base_dir)
    if source.url is not None:
        from nb_assets.sources.http import http_get

        body = http_get(location, name=source.name, headers=source.headers, allow_private=source.allow_private,
                        timeout_s=timeout_s, max_bytes=max_bytes)
        return Mark(hashlib.sha256(body.data).hexdigest(), location=location)
    import fsspec

    where = f"source {source.name!r} at {location}"
    try:
        fs, root = fsspec.core.url_to_fs(location, skip_instance_cache=True)  # credentials as they are now
        if set("*?[") & set(root):
            found = fs.glob(root, detail=True)
            entries = {p: found[p] for p in found}
        elif fs.isdir(root):
            entries = fs.find(root, detail=True)
        else:
            entries = {root: fs.info(root)} if fs.exists(root) else {}
    except (OSError, ValueError) as exc:
        raise SourceFetchError(f"{where}: {type(exc).__name__}: {exc}") from exc
    lines = sorted(
        f"{path}\t{info.get('size')}\t{info.get('ETag') or info.get('etag') or info.get('mtime') or info.get('LastModified')}"
        for path, info in entries.items() if info.get("type", "file") == "file"
    )
    return Mark(hashlib.sha256("\n".join(lines).encode()).hexdigest(), tuple(line.split("\t")[0] for line in lines), location)
