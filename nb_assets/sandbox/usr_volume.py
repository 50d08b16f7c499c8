"""The sandbox image's /usr as a read-only named volume: the same files, off fuse-overlayfs.

On an engine whose storage driver is fuse-overlayfs (rootless or nested
Docker, as on the machines this project is measured on), every file lookup
in the container's root goes through a FUSE daemon on the host. A run looks
up several thousand files under /usr (the interpreter's and the kernel's
imports, pandas in the notebook): measured for `import papermill, pandas,
ipykernel` in one container, the daemon spent 0.43-0.48 s of CPU and the box
1.36-1.38 s; with /usr from a volume (a plain bind of the engine's own disk)
0.15 s and 1.14 s (benchmarks/README.md, issue 27).

The volume holds a copy of the image's /usr, made once per image by a
filler container (`cp -a`), and is mounted read-only, like the root it
shadows: a notebook can no more write it than the image. A second, empty
volume named `<volume>-ok` is made only once the copy is complete, so a copy
cut short is never mounted (it is removed and made again). Until the
volume is there, runs use the image's /usr as before, and the first one to
notice starts the copy in a process of its own.

    NB_ASSETS_USR_VOLUME=0  turns it off
    python -m nb_assets.sandbox.usr_volume IMAGE   makes it (nb-assets sandbox build does too)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from nb_assets.sandbox.image import cache_dir

VOLUME_PREFIX = "nb-assets-usr-"
VOLUME_LABEL = "nb_assets.usr-of"  # the image id whose Python trees the volume copies
# The Python trees, where nearly all of a run's lookups are: the standard library and the pinned
# packages. Not /usr whole: the engine binds its init at /sbin/docker-init (= /usr/sbin in a merged-/usr
# root) before the volumes are mounted, and a volume over /usr would hide it.
TREES = {"stdlib": "/usr/lib/python3.11", "site": "/usr/local/lib/python3.11"}
MOUNT_POINT = TREES["site"]
FILL_TIMEOUT_S = 900

__all__ = ["ensure", "mounts_for", "start_filling", "volume_name", "wanted"]

_ready: set[str] = set()  # image ids whose volume this process has seen complete


def wanted() -> bool:
    return os.environ.get("NB_ASSETS_USR_VOLUME", "1") != "0"


def volume_name(image_id: str, tree: str = "") -> str:
    return VOLUME_PREFIX + image_id.partition(":")[2][:16] + (f"-{tree}" if tree else "")


def mounts_for(client: Any, image_id: str) -> list[Any]:
    """The read-only mounts of the Python trees for containers of `image_id`; none while not complete."""
    from docker.types import Mount

    if not wanted() or not _complete(client, image_id):
        return []
    return [Mount(target, volume_name(image_id, tree), type="volume", read_only=True, no_copy=True)
            for tree, target in TREES.items()]


def _complete(client: Any, image_id: str) -> bool:
    if image_id in _ready:
        return True
    import docker.errors

    try:
        client.api.inspect_volume(volume_name(image_id) + "-ok")
    except docker.errors.NotFound:
        return False
    _ready.add(image_id)
    return True


def start_filling(image: str) -> None:
    """Make the volume in a process of its own (this run goes on with the image's /usr)."""
    if not wanted():
        return
    with contextlib.suppress(OSError):
        subprocess.Popen([sys.executable, "-m", "nb_assets.sandbox.usr_volume", image],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)


@contextlib.contextmanager
def _lock(name: str) -> Iterator[bool]:
    """One filler per volume on this host at a time; a second waits, then finds the copy complete."""
    path = cache_dir() / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield True


def ensure(client: Any, image: str) -> bool:
    """Make `image`'s /usr volume unless it is complete already; True when it is complete."""
    import docker.errors
    from docker.types import Mount

    image_id = str(client.images.get(image).id)
    name = volume_name(image_id)
    if _complete(client, image_id):
        return True
    with _lock(name) as mine:
        _settle_fillers(client, image_id)
        if not mine or _complete(client, image_id):
            return _complete(client, image_id)
        labels = {VOLUME_LABEL: image_id}
        for tree in TREES:
            try:
                client.api.remove_volume(volume_name(image_id, tree), force=True)  # a copy cut short: again
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:  # in use: a filler started since we looked is copying it
                _settle_fillers(client, image_id)
                return _complete(client, image_id)
            client.api.create_volume(volume_name(image_id, tree), labels=labels)
        script = " && ".join(f"cp -a {target}/. /fill/{tree}/" for tree, target in TREES.items())
        container = client.containers.create(
            image, command=["sh", "-c", script], user="0:0", network_mode="none",
            mounts=[Mount(f"/fill/{tree}", volume_name(image_id, tree), type="volume", no_copy=True) for tree in TREES],
            labels={VOLUME_LABEL: image_id},
        )
        try:
            container.start()
            status = container.wait(timeout=FILL_TIMEOUT_S)
        finally:
            with contextlib.suppress(docker.errors.NotFound):  # removed by a filler that found it exited
                container.remove(force=True)
        if status.get("StatusCode") != 0:
            for tree in TREES:
                client.api.remove_volume(volume_name(image_id, tree), force=True)
            return False
        client.api.create_volume(name + "-ok", labels=labels)
    _remove_others(client, image_id)
    return True


def _settle_fillers(client: Any, image_id: str) -> None:
    """Fillers of `image_id` the lock cannot see: one still copying was started from another file system
    (a deployment's run worker has its own cache folder, so its own lock file) on the same engine; wait
    for it. One that has exited was left by a filler process that died before it marked the copy complete
    (its container still holds the volumes, so they could not be removed): remove it, the copy is redone."""
    import docker.errors
    import requests

    for container in client.containers.list(all=True, filters={"label": f"{VOLUME_LABEL}={image_id}"}):
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            if container.status == "running":
                container.wait(timeout=FILL_TIMEOUT_S)
            if not _complete(client, image_id):
                container.remove(force=True)


def _remove_others(client: Any, image_id: str) -> None:
    """Volumes of images that are gone: nothing mounts them any more (one in use is left alone)."""
    import docker.errors

    for volume in client.api.volumes(filters={"label": VOLUME_LABEL}).get("Volumes") or []:
        of = (volume.get("Labels") or {}).get(VOLUME_LABEL, "")
        if of == image_id:
            continue
        try:
            client.images.get(of)
            continue  # its image is still there: so may be its runs
        except docker.errors.ImageNotFound:
            pass
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_volume(volume["Name"])


def main(argv: list[str]) -> int:
    from nb_assets.sandbox.image import docker_client

    try:
        return 0 if ensure(docker_client(timeout=FILL_TIMEOUT_S), argv[0]) else 1
    except Exception as exc:  # noqa: BLE001 - runs go on with the image's /usr
        print(f"[nb_assets] no /usr volume made: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
