"""Pick the sandbox for a run: Docker when an engine answers, else LocalSandbox.

The choice is explicit in every run's metadata (with the reason when Docker
was not used); asking for Docker where no engine or image is available is an
error, never a silent fallback.
"""

from __future__ import annotations

from nb_assets.sandbox.base import Sandbox, SandboxKind
from nb_assets.sandbox.local import LocalSandbox


def choose_sandbox(kind: SandboxKind = "auto", *, image: str | None = None, allow_network: bool = False) -> Sandbox:
    if kind == "local":
        return LocalSandbox(allow_network=allow_network)
    from nb_assets.sandbox.container import DockerSandbox, docker_available  # the docker SDK is only needed here
    from nb_assets.sandbox.spares import spares_wanted
    from nb_assets.sandbox.image import BUILD_COMMAND, image_exists

    if kind == "docker":
        return DockerSandbox(image=image, spares=spares_wanted())  # raises SandboxUnavailableError with the fix
    if not docker_available():
        reason = "no Docker engine answers"
    elif image is None and not image_exists():
        reason = f"the sandbox image is missing (run `{BUILD_COMMAND}`)"
    else:
        return DockerSandbox(image=image, spares=spares_wanted())
    return LocalSandbox(allow_network=allow_network, fallback_reason=reason)
