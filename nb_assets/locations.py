"""What a configured warehouse location names (a Postgres server URL, or a DuckDB file's path), and how to show it.

One test for the host modules that must tell them apart (warehouse, catalog,
landing, file loads, the parser's dialect, the schedule trial); it imports
nothing, so asking loads no driver. (notebook.py keeps its own copy: it is
copied alone into the sandbox.)
"""

from __future__ import annotations

import re
from pathlib import Path

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path | None) -> bool:
    return str(location or "").startswith(POSTGRES_SCHEMES)


def redact(location: str | Path) -> str:
    """The location without a URL's password, for messages, records and the UI."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(location))
