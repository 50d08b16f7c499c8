"""The notebook this kernel runs for, now, as the Jupyter server that started it knows it.

Jupyter Server tells a kernel its notebook once, at start (JPY_SESSION_NAME): a notebook
renamed since (JupyterLab asks for a name on the first save of an Untitled one) is no
longer there. The server's sessions API follows the rename, so the magics ask it: the
server is the one that started this kernel (an ancestor process: no other server is
asked; its info file `jpserver-PID.json` holds its URL, root folder and token), the
session the one whose kernel id is in this kernel's connection file name. Loopback
servers only, no proxy, no redirect, a short timeout; any failure is None, and the
magics fall back to what the kernel was told.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ASK_TIMEOUT_S = 2.0
_KERNEL_FILE = re.compile(r"^kernel-(.+)\.json$")


def session_notebook(kernel_id: str | None = None, servers: Iterable[Mapping[str, Any]] | None = None) -> Path | None:
    """The notebook the server's session for this kernel names now, when a loopback server knows it."""
    kernel_id = kernel_id or this_kernel_id()
    if kernel_id is None:
        return None
    ancestors = _ancestors()
    if servers is None:
        servers = _running_servers(ancestors)
    for server in servers:
        if server.get("pid") not in ancestors:  # another server's token stays unused
            continue
        found = _ask(server, kernel_id)
        if found is not None:
            return found
    return None


def this_kernel_id() -> str | None:
    """The id of the kernel running this code (its connection file is `kernel-ID.json`), else None."""
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:  # noqa: BLE001 - not in a kernel, or one without a connection file
        return None
    found = _KERNEL_FILE.match(name)
    return found.group(1) if found else None


def is_loopback(url: str) -> bool:
    """Whether `url` is http(s) on this machine (127.0.0.0/8, ::1 or localhost): a token goes nowhere else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _ancestors(limit: int = 8) -> set[int]:
    """This process's parent and theirs (a kernel may be started through a wrapper): /proc on
    Linux, else the parent alone."""
    found, pid = set(), os.getppid()
    for _ in range(limit):
        if pid <= 1 or pid in found:
            break
        found.add(pid)
        try:  # "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _running_servers(ancestors: set[int]) -> list[Mapping[str, Any]]:
    """The info files (`jpserver-PID.json` in Jupyter's runtime folder: URL, root folder, token) that
    `ancestors` wrote: what jupyter_server's list_running_servers reads, without importing the server."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime = Path(jupyter_runtime_dir())
    except (ImportError, OSError, ValueError):
        return []
    found = []
    for pid in sorted(ancestors):
        try:
            info = json.loads((runtime / f"jpserver-{pid}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict):
            found.append(info)
    return found


def _ask(server: Mapping[str, Any], kernel_id: str) -> Path | None:
    """The notebook of `kernel_id`'s session on `server`, or None (not loopback, not answering, no such session)."""
    url, root = str(server.get("url") or ""), server.get("root_dir") or server.get("notebook_dir")
    if not is_loopback(url) or not root:
        return None
    request = urllib.request.Request(urllib.parse.urljoin(url if url.endswith("/") else url + "/", "api/sessions"))
    if server.get("token"):
        request.add_header("Authorization", f"token {server['token']}")
    # Straight to loopback: never through a proxy, and no redirect (it would carry the token elsewhere).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(request, timeout=ASK_TIMEOUT_S) as response:
            sessions = json.loads(response.read())
    except (OSError, ValueError):
        return None
    for session in sessions if isinstance(sessions, list) else []:
        kernel, path = (session.get("kernel") or {}), session.get("path")
        if isinstance(kernel, dict) and kernel.get("id") == kernel_id and isinstance(path, str) and path.endswith(".ipynb"):
            return Path(str(root), path)
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError: no answer
