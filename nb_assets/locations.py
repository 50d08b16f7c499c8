"""Where things are: what a configured warehouse location names (a Postgres server URL,
or a DuckDB file's path), how to show it, and which project a file belongs to.

The one test of a URL's scheme: the warehouse chooser (warehouse.backends) and the
SQL dialect a notebook is read in ask here. It imports nothing but nb_assets.errors,
so asking loads no driver.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from nb_assets.errors import DeclarationError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | Path | None) -> bool:
    return str(location or "").startswith(POSTGRES_SCHEMES)


def dialect_of(location: object) -> str:
    """The SQL dialect of the warehouse at a location: a postgresql:// URL is Postgres, anything else DuckDB."""
    return "postgres" if is_postgres_url(location) else "duckdb"  # type: ignore[arg-type]


def nearest_project(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding a definitions.py, or None."""
    start = start.resolve()
    folder = start if start.is_dir() else start.parent
    return next((c for c in (folder, *folder.parents) if (c / "definitions.py").is_file()), None)


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


def with_user(dsn: str, user: str, password: str | None = None) -> str:
    """`dsn` with another user (and the password dropped, unless given)."""
    parts = urlsplit(dsn)
    who = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{who}@{host}"))
