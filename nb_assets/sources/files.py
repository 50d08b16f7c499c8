"""Files, folders and object-store prefixes through fsspec (local, `s3://` via s3fs, `gs://`, `az://`).

Credentials come from the environment or the back end's own configuration
(AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ~/.aws, ...), never from the declaration.
A location with `*` is a glob, one ending in `/` (or naming a folder) means every
file below it; files are read in name order so the content hash is stable.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

from nb_assets.errors import SourceFetchError

_GLOB = set("*?[")


@dataclass(frozen=True)
class FileBodies:
    bodies: tuple[bytes, ...]
    files: tuple[str, ...]
    version: str  # ETag or mtime of each file, joined: what changes when a file does
    content_hash: str


def resolve_path(location: str, base_dir: Path) -> str:
    """A relative local path is under the project's folder; a URL (`s3://...`) stays as it is."""
    if "://" in location:
        return location
    path = Path(location).expanduser()
    return str(path if path.is_absolute() else base_dir / path)


def read_files(location: str, *, name: str, max_bytes: int, ends: float = math.inf) -> FileBodies:
    """Every file at `location`; past `ends` (a monotonic time: the run's deadline) no further file is read."""
    import fsspec

    where = f"source {name!r} at {location}"
    try:
        # A fresh file system each fetch: credentials and endpoints are read from the environment now,
        # not from an instance fsspec cached under other settings (rotated keys, another endpoint).
        fs, root = fsspec.core.url_to_fs(location, skip_instance_cache=True)
        if _GLOB & set(root):
            paths = sorted(fs.glob(root))
        elif fs.isdir(root):
            paths = sorted(p for p in fs.find(root) if not p.rsplit("/", 1)[-1].startswith("."))
        else:
            paths = [root] if fs.exists(root) else []
        if not paths:
            raise SourceFetchError(f"{where}: nothing there (no such file, or no file matches)")
        bodies: list[bytes] = []
        versions: list[str] = []
        digest = hashlib.sha256()
        total = 0
        for path in paths:
            if time.monotonic() > ends:
                raise SourceFetchError(f"{where}: timed out before {path} (of {len(paths)} files)")
            info = fs.info(path)
            total += int(info.get("size") or 0)
            if total > max_bytes:
                raise SourceFetchError(f"{where}: over the limit of {max_bytes} bytes")
            with fs.open(path, "rb") as f:
                data = f.read()
            bodies.append(data)
            digest.update(hashlib.sha256(data).digest())
            versions.append(str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or info.get("size")))
    except SourceFetchError:
        raise
    except ImportError as exc:
        raise SourceFetchError(f"{where}: the fsspec back end for it is not installed ({exc})") from exc
    except (OSError, ValueError) as exc:
        raise SourceFetchError(f"{where}: {type(exc).__name__}: {exc}") from exc
    return FileBodies(tuple(bodies), tuple(paths), ";".join(versions), digest.hexdigest())
