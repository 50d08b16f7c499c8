"""The deployment's passwords: generated once, kept in the state folder (mode 0600), handed to
processes and containers as environment variables only.

    .deploy/secrets.json   {"postgres": ..., "dagster": ..., "warehouse": ..., "reader": ..., ...}

Never in `dagster.yaml` (it names the variable: Dagster's `env:` form), never in
`deploy.json`, a record, a log line or an error message (URLs are redacted
wherever they are said). A password the user brings (`--storage`,
`--warehouse`, `--smtp-password-env`) is taken out of its URL and kept here
too, so the settings file holds the URL without it.

Rotation: `nb-assets deploy rotate` (deploy/operate.py) makes new passwords for
the roles the deployment created, sets them on their servers and rewrites this
file; the next `deploy up` hands them to the processes.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

SECRETS_FILE = "secrets.json"
# The roles of the deployment's own cluster whose passwords it generates.
GENERATED = ("postgres", "dagster", "warehouse", "reader")
# The environment variables the processes and containers get (their values never written down elsewhere).
DAGSTER_PASSWORD_ENV = "NB_ASSETS_DAGSTER_PG_PASSWORD"


def new_password() -> str:
    """32 URL-safe random characters: nothing to quote in a URL or a config file."""
    return secrets.token_urlsafe(24)


def load_secrets(state_dir: Path) -> dict[str, str]:
    """The state folder's passwords, each generated on first use (and the file kept at mode 0600)."""
    path = state_dir / SECRETS_FILE
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in GENERATED if name not in found]
    for name in missing:
        found[name] = new_password()
    if missing or not path.exists():
        save_secrets(state_dir, found)
    elif path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it: only the deployment's user may read passwords
    return found


def save_secrets(state_dir: Path, values: dict[str, str]) -> None:
    """Write the passwords with mode 0600 from the first byte (never readable by others, not even briefly)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / SECRETS_FILE
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(values, out, indent=2)
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None): what deploy.json keeps, what secrets.json keeps."""
    if "://" not in url:
        return url, None
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url, None
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), unquote(password)


def with_password(url: str, password: str | None) -> str:
    """`url` (postgresql://user@host/db) with `password` put back, for a process's environment only."""
    if not password or "://" not in url:
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))
