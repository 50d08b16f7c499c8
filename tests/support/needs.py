"""What a test needs from the machine (Docker, PostgreSQL, a browser), and how its absence is reported.

A test that cannot run here skips through `skip_missing`, which tags the reason with the component. tests/conftest.py
turns any such skip (and any skip of a test marked `docker`, `postgres` or `browser`) into a failed run, unless
NB_ASSETS_ALLOW_SKIPS names the component: a green `make test` then means every one of them ran.
"""

from __future__ import annotations

import os
import time

import pytest

COMPONENTS = ("docker", "postgres", "browser")
ALLOW_SKIPS = "NB_ASSETS_ALLOW_SKIPS"  # e.g. "docker,postgres,browser" on a machine without them
# Forces the Docker probe to answer "absent", without touching the engine (the skip gate's own test uses it).
FORCE_NO_DOCKER = "NB_ASSETS_TEST_FORCE_NO_DOCKER"
TAG = "[needs {}]"

# A loaded machine (eight pytest workers, image builds) can take many seconds to answer one ping: a short
# probe would call a busy engine "absent" and skip every Docker test. So each attempt waits long, and a
# failed probe is tried again; only a positive answer is kept for the session.
PROBE_TIMEOUT_S = 30.0
PROBE_ATTEMPTS = 4
PROBE_PAUSE_S = 5.0
_docker_answered: list[bool] = []


def skip_missing(component: str, reason: str) -> None:
    """Skip this test because `component` is absent here; the reason carries a tag the skip gate reads."""
    assert component in COMPONENTS, component
    pytest.skip(f"{TAG.format(component)} {reason}")


def allowed_skips() -> set[str]:
    """The components NB_ASSETS_ALLOW_SKIPS lets a run skip ("all" for every one)."""
    names = {n.strip().lower() for n in os.environ.get(ALLOW_SKIPS, "").split(",") if n.strip()}
    return set(COMPONENTS) if "all" in names else names


def docker_probe_error() -> str | None:
    """None when a Docker engine answers a ping; otherwise what every attempt said.

    Unlike nb_assets' own `docker_available()` (2 s, any error is "no Docker", cached either way), this waits up to
    PROBE_TIMEOUT_S per attempt, tries PROBE_ATTEMPTS times, and never caches an absence."""
    if os.environ.get(FORCE_NO_DOCKER):
        return f"forced absent by {FORCE_NO_DOCKER}"
    if _docker_answered:
        return None
    from nb_assets.sandbox.image import docker_client

    errors: list[str] = []
    for attempt in range(PROBE_ATTEMPTS):
        try:
            docker_client(timeout=PROBE_TIMEOUT_S).ping()
            _docker_answered.append(True)
            return None
        except Exception as exc:  # SandboxUnavailableError, DockerException, requests' timeouts
            errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
        if attempt + 1 < PROBE_ATTEMPTS:
            time.sleep(PROBE_PAUSE_S)
    return "; ".join(errors)


def require_docker() -> None:
    """Skip (tagged `docker`) unless a Docker engine answers, saying what the probe saw."""
    error = docker_probe_error()
    if error is not None:
        skip_missing("docker", f"no Docker engine answers (is dockerd running? DOCKER_HOST?): {error}")
