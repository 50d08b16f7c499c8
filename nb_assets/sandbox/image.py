"""The sandbox image: its tag, whether the engine has it, and how to build it.

The tag is `nb-assets-sandbox:<hash>`, where the hash covers every recipe file
in `sandbox_image/`: a changed pin or build step gives a new tag, so the image
is rebuilt exactly when its recipe changes and never silently reused stale.

Two recipes produce the same image:
  offline     debootstrap + pip wheels + `docker import` (build_offline.sh);
              needs root and Debian's mirror + PyPI, but no container registry.
  dockerfile  `docker build` of sandbox_image/Dockerfile; needs a registry.

    nb-assets sandbox build [--method auto|offline|dockerfile] [--force]
    nb-assets sandbox tag
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from nb_assets.errors import SandboxError, SandboxUnavailableError

IMAGE_REPOSITORY = "nb-assets-sandbox"
RECIPE_DIR = Path(__file__).resolve().parent / "sandbox_image"
RECIPE_FILES = ("requirements.txt", "Dockerfile", "build_offline.sh", "finalize.sh")
BUILD_COMMAND = "nb-assets sandbox build"

BuildMethod = Literal["auto", "offline", "dockerfile"]


def cache_dir() -> Path:
    """Where downloaded .debs and wheels are kept between builds."""
    return Path(os.environ.get("NB_ASSETS_CACHE", Path.home() / ".cache" / "nb_assets"))


def recipe_hash() -> str:
    """Short sha256 over the recipe files' names and bytes."""
    digest = hashlib.sha256()
    for name in RECIPE_FILES:
        digest.update(name.encode() + b"\0" + (RECIPE_DIR / name).read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def image_tag() -> str:
    """The tag of the image the current recipe builds."""
    return f"{IMAGE_REPOSITORY}:{recipe_hash()}"


def docker_client(timeout: float = 60.0) -> Any:
    """A docker SDK client, or SandboxUnavailableError naming the cause."""
    try:
        import docker

        return docker.from_env(timeout=timeout)
    except Exception as exc:  # DockerException, ImportError, connection errors
        raise SandboxUnavailableError(
            f"no Docker engine answers ({exc}); start Docker or set DOCKER_HOST"
        ) from exc


def image_exists(client: Any | None = None, tag: str | None = None) -> bool:
    """True when the engine has the image (the current recipe's unless `tag`)."""
    tag = tag or image_tag()
    try:
        client = client or docker_client(timeout=5.0)
        client.images.get(tag)
        return True
    except Exception:  # NotFound, or no engine at all: either way, not usable
        return False


def image_size_mb(client: Any, tag: str) -> float:
    return float(client.images.get(tag).attrs["Size"]) / 1e6


def build_image(*, method: BuildMethod = "auto", force: bool = False) -> str:
    """Make sure the current recipe's image exists; return its tag.

    "auto" keeps an existing image, else builds offline (as root) or, when
    that is impossible here, with the Dockerfile. `force` rebuilds anyway.
    """
    tag = image_tag()
    client = docker_client()
    with build_lock():  # a second caller waits, then finds the image built
        if not force and image_exists(client, tag):
            _say(f"{tag} is up to date")
            return tag
        if method == "auto":
            method = "offline" if _offline_possible() else "dockerfile"
        _say(f"building {tag} ({method})")
        started = time.monotonic()
        if method == "offline":
            _build_offline(tag)
        elif method == "dockerfile":
            _build_dockerfile(client, tag)
        else:
            raise ValueError(f"unknown build method {method!r}")
        if not image_exists(client, tag):
            raise SandboxError(f"the {method} build finished but {tag} is missing")
        _say(f"built {tag} in {time.monotonic() - started:.0f} s, {image_size_mb(client, tag):.0f} MB")
    return tag


def _say(message: str) -> None:
    print(f"[nb_assets.sandbox.image] {message}", flush=True)


@contextlib.contextmanager
def build_lock(name: str = "build") -> Iterator[None]:
    """One builder of `name` on this host at a time (processes of one user share its cache folder): a
    second waits, then finds the image made."""
    path = cache_dir() / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _offline_possible() -> bool:
    return (
        sys.platform == "linux"
        and os.geteuid() == 0
        and (shutil.which("debootstrap") is not None or shutil.which("apt-get") is not None)
        and shutil.which("docker") is not None
    )


def _python_with_pip() -> str:
    """The interpreter that downloads wheels; it only needs pip, any version of Python."""
    if importlib.util.find_spec("pip") is not None:
        return sys.executable
    return shutil.which("python3") or sys.executable


def _build_offline(tag: str) -> None:
    if os.geteuid() != 0:
        raise SandboxError("the offline build needs root (debootstrap, chroot); use method='dockerfile'")
    script = RECIPE_DIR / "build_offline.sh"
    env = {**os.environ, "NB_ASSETS_CACHE": str(cache_dir())}
    proc = subprocess.run(["bash", str(script), tag, _python_with_pip()], env=env)
    if proc.returncode != 0:
        raise SandboxError(f"offline image build failed (exit {proc.returncode}); see the output above")


def _build_dockerfile(client: Any, tag: str) -> None:
    stream = client.api.build(
        path=str(RECIPE_DIR), dockerfile="Dockerfile", tag=tag, rm=True, forcerm=True, decode=True
    )
    for chunk in stream:
        if "error" in chunk:
            raise SandboxError(f"docker build failed: {chunk['error'].strip()}")
        line = chunk.get("stream", "").rstrip()
        if line:
            print(line, flush=True)

