"""Pick the sandbox for a run: Docker when an engine answers, else LocalSandbox.

The choice is explicit in every run's metadata; asking for Docker where no
engine or image is available is an error, never a silent fallback.
"""

from __future__ import annotations

from typing import Literal

from nb_assets.sandbox import LocalSandbox, Sandbox

SandboxKind = Literal["auto", "docker", "local"]


def choose_sandbox(kind: SandboxKind = "auto", *, image: str | None = None, allow_network: bool = False) -> Sandbox:
    if kind == "local":
        return LocalSandbox(allow_network=allow_network)
    from nb_assets.docker_sandbox import DockerSandbox, docker_available  # the docker SDK is only needed here

    if kind == "docker":
        return DockerSandbox(image=image)  # raises SandboxUnavailableError with the fix
    if docker_available():
        from nb_assets.image import image_exists

        if image is not None or image_exists():
            return DockerSandbox(image=image)
    return LocalSandbox(allow_network=allow_network)
