"""Two deployments started together build their code image once (deploy/code_image.py's build lock).

On a fresh machine the suite's three deploy modules once built the same code image at the same time; one
build's prune removed the other's finished, not yet tagged image, and that deployment failed with "failed
to get digest". The second builder now waits for the first and finds the image made. Shown without a real
build: the test holds the lock, sees the builder waiting on it (/proc/locks), makes the image meanwhile
(the sandbox image tagged as the code image) and lets go.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from support.paths import REPO
from nb_assets.deploy.code_image import build_code_image, code_image_tag
from nb_assets.sandbox.image import build_lock, cache_dir, docker_client

pytestmark = pytest.mark.docker


def waiters_on(path: Path) -> int:
    """Processes or threads blocked on an flock of `path` (the '->' lines of /proc/locks)."""
    inode = path.stat().st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line and line.split()[-3].endswith(f":{inode}"))


def test_a_second_build_of_the_same_code_image_waits_and_finds_it_made(docker_image: str, tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, project / name)
    # A project of its own, so a tag of its own: the demo's tag is the one the deploy tests' stacks run,
    # and tagging or removing it here would take their image away mid-run.
    with (project / "definitions.py").open("a") as f:
        f.write(f"\n# {tmp_path.name}: the code image lock test\n")
    tag = code_image_tag(project.resolve())
    assert tag != code_image_tag(REPO)
    client = docker_client()
    built: list[str] = []
    try:
        with build_lock("code-image"):
            builder = threading.Thread(target=lambda: built.append(build_code_image(project)), daemon=True)
            builder.start()
            deadline = time.monotonic() + 300  # hashing the package and the project first, on a loaded machine
            while not waiters_on(cache_dir() / "code-image.lock") and builder.is_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert builder.is_alive(), f"the builder did not wait for the lock: {capfd.readouterr().err[-2000:]}"
            repository, _, version = tag.partition(":")
            client.images.get(docker_image).tag(repository, version)  # the other builder's image, done meanwhile
        builder.join(300)
        said = capfd.readouterr().err
        assert built == [tag], said[-2000:]
        assert "built meanwhile" in said and "docker build" not in said, said[-2000:]
    finally:
        client.images.remove(tag, noprune=True)
