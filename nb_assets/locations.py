"""What a configured warehouse location names (a Postgres server URL, or a DuckDB file's path), and how to show it.

One test for the host modules that must tell them apart (warehouse, catalog,
landing, file loads, the SQL dialect a notebook is read in, the schedule
trial); it imports nothing but nb_assets.errors, so asking loads no driver.
(notebook.py keeps its own copy: the sandbox gets it with the in-box contract
only.)
"""

from __future__ import annotations

import re
from pathlib import Path

from nb_assets.errors import DeclarationError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path | None) -> bool:
    return str(location or "").startswith(POSTGRES_SCHEMES)


def dialect_of(location: object) -> str:
    """The SQL dialect of the warehouse at a location: a postgresql:// URL is Postgres, anything else DuckDB."""
    return "postgres" if is_postgres_url(location) else "duckdb"  # type: ignore[arg-type]


def redact(location: str | Path) -> str:
    """The location without a URL's password, for messages, records and the UI."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(location))


def check_read_dsn(location: str | Path, read_dsn: str | None) -> None:
    """A read login belongs to a Postgres warehouse: a DuckDB file has no logins to choose."""
    if read_dsn and not is_postgres_url(location):
        raise DeclarationError(
            f"read_dsn= names a Postgres login, but the warehouse {location} is a DuckDB file "
            "(its prefetch opens the file read-only instead)"
        )
    if read_dsn and not is_postgres_url(read_dsn):
        # Not echoed: without a URL's shape, redact() cannot tell where a password would be.
        raise DeclarationError("read_dsn= takes a postgresql:// URL (postgresql://login@host/database)")
