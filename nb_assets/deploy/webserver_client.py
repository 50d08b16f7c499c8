"""Talking to a running dagster-webserver: wait until it serves, then post GraphQL.

What the UI itself sends; used by the deployment recipe to know the code
location loaded, and by tests that drive Dagster the way a user does.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

__all__ = ["graphql", "wait_until_serving", "LOCATIONS"]

LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def wait_until_serving(base_url: str, alive: Callable[[], bool], timeout_s: float, why: Callable[[], str]) -> None:
    """Until GET /server_info answers; RuntimeError with `why()` if the server died or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{base_url}/server_info", timeout=5).read()
            return
        except OSError:
            if not alive():
                raise RuntimeError(f"the webserver at {base_url} exited:\n{why()}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the webserver at {base_url} did not answer in {timeout_s:.0f} s:\n{why()}") from None
            time.sleep(0.5)


def graphql(base_url: str, query: str, variables: dict[str, Any] | None = None, timeout_s: float = 120) -> dict[str, Any]:
    """POST one query to /graphql; its `data`, or RuntimeError naming the errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=timeout_s).read())
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return dict(answer["data"])
