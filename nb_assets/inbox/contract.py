"""What the host and the notebook runtime agree on across the sandbox wall.

Standard library only: a copy of this file runs inside the sandbox (imported
by notebook.py), and the host's parser and prefetch import it without pulling
in the runtime.
"""

from __future__ import annotations

import hashlib
import re

MANIFEST = "manifest.json"
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def query_fingerprint(query: str) -> str:
    """What the host and the notebook compare to prove a cell ran what was prefetched."""
    return hashlib.sha256(query.strip().encode("utf-8")).hexdigest()


def output_file_name(table: str) -> str:
    return f"{table}.parquet"
