"""The code image: what every run worker and the code server run, built without a registry.

`nb-assets-code:<hash>` = the sandbox image (already local: `nb-assets sandbox
build`) + wheels of nb_assets and everything it needs (Dagster,
dagster-docker, dagster-postgres, ...) downloaded on the host, at the versions
the host's environment runs, + the project (definitions.py, notebooks/,
policy.yaml, declarations.yaml; or a dg project's pyproject.toml/dg.toml and
package, deploy/project_layout.py) at /opt/project. `docker build` of Dockerfile.offline (shipped
in this package, beside this module, so a project made anywhere can deploy)
needs no registry: its FROM is a local image. The hash covers the sandbox
image's tag, nb_assets' source, the project's files and the pinned versions,
so the image is rebuilt exactly when one of them changes.

    nb-assets deploy image [--force]
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nb_assets.deploy.project_layout import project_layout
from nb_assets.errors import SandboxError
from nb_assets.sandbox.image import build_image, build_lock, cache_dir, docker_client, image_exists

CODE_REPOSITORY = "nb-assets-code"
PROJECT_LABEL = "nb_assets.code_project"  # the project folder a code image was built from
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the nb_assets package
DOCKERFILE = Path(__file__).resolve().parent / "Dockerfile.offline"
PIP_VERSION = "26.3"  # runs once from its wheel inside the build; as in the sandbox image
IMAGE_PYTHON = "3.11.2"  # bookworm's python3, which the sandbox image (and so the code image) runs


def pinned_versions() -> list[str]:
    """`name==version` of every distribution in this environment but nb_assets, so the image runs
    the same; except where that version refuses the image's Python (the host's may be newer)."""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    pins = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        requires = dist.metadata["Requires-Python"]
        if name and name != "nb-assets" and (not requires or SpecifierSet(requires).contains(IMAGE_PYTHON)):
            pins.add(f"{name}=={dist.version}")
    return sorted(pins)


def code_image_tag(project_dir: Path, sandbox_tag: str | None = None) -> str:
    """The tag of the code image for `project_dir` as it is now."""
    from nb_assets.sandbox.image import image_tag

    digest = hashlib.sha256()
    digest.update((sandbox_tag or image_tag()).encode() + b"\0")
    digest.update("\n".join(pinned_versions()).encode() + b"\0")
    for path in (*_files(PACKAGE_DIR, PACKAGE_DIR), *_project_files(project_dir)):
        digest.update(str(path[1]).encode() + b"\0" + path[0].read_bytes() + b"\0")
        digest.update((_package_source() / "pyproject.toml").read_bytes())
    return f"{CODE_REPOSITORY}:{digest.hexdigest()[:12]}"


def build_code_image(project_dir: Path, *, force: bool = False) -> str:
    """Make sure the code image for `project_dir` exists (the sandbox image too); return its tag."""
    project_dir = project_dir.resolve()
    sandbox_tag = build_image()
    tag = code_image_tag(project_dir, sandbox_tag)
    client = docker_client()
    if not force and image_exists(client, tag):
        _say(f"{tag} is up to date")
        return tag
    # One build at a time: two deployments started together (the test suite's do) once built the same
    # image at once, and one's prune removed the other's finished, not yet tagged image ("failed to get
    # digest"); both also wrote the shared wheel cache. The second now waits and finds the image made.
    with build_lock("code-image"):
        if not force and image_exists(client, tag):
            _say(f"{tag} is up to date (built meanwhile)")
            return tag
        with tempfile.TemporaryDirectory(prefix="nb-assets-code-") as tmp:
            context = Path(tmp)
            _wheels(project_dir, context / "wheels")
            _copy_project(project_dir, context / "project")
            shutil.copy(DOCKERFILE, context / "Dockerfile")
            _say(f"docker build {tag} FROM {sandbox_tag}")
            _docker_build(client, context, tag, {"SANDBOX_IMAGE": sandbox_tag}, {PROJECT_LABEL: str(project_dir)})
        _prune(client, project_dir, keep=tag)
    return tag


def python_trees(tag: str) -> dict[str, str]:
    """The code image's Python trees as read-only volumes (sandbox/usr_volume.py), volume -> path, for
    the code server and every run worker: each imports Dagster afresh, and from a volume it does so in
    about half the time it takes through fuse-overlayfs (benchmarks/README.md, issue 27). The copy is
    made once per image (~30 s here); {} when NB_ASSETS_USR_VOLUME=0 or the copy failed."""
    from nb_assets.sandbox import usr_volume

    if not usr_volume.wanted():
        return {}
    client = docker_client(timeout=usr_volume.FILL_TIMEOUT_S)
    if not usr_volume.ensure(client, tag):
        _say(f"{tag}: its Python trees are read through the image (no volume made)")
        return {}
    image_id = str(client.images.get(tag).id)
    return {usr_volume.volume_name(image_id, tree): path for tree, path in usr_volume.TREES.items()}


def _prune(client: Any, project_dir: Path, keep: str) -> None:
    """Older code images of this project (about 1 GB each), unless a container still uses one."""
    import docker.errors

    for image in client.images.list(filters={"label": f"{PROJECT_LABEL}={project_dir}"}):
        if keep not in image.tags:
            try:
                client.images.remove(image.id)
            except docker.errors.APIError:
                pass  # in use by a container (a deployment still running it): kept


def _wheels(project_dir: Path, dest: Path) -> None:
    """nb_assets' wheel, then every dependency's at the pinned versions (a cached folder per pin set)."""
    dest.mkdir()
    pins = pinned_versions()
    source = _package_source()
    # What nb_assets requires (pyproject.toml) and at which versions: a new dependency needs new wheels.
    key_text = "\n".join([*pins, PIP_VERSION, sys.platform, (source / "pyproject.toml").read_text()])
    cached = cache_dir() / f"code-wheels-{hashlib.sha256(key_text.encode()).hexdigest()[:16]}"
    with tempfile.TemporaryDirectory(prefix="nb-assets-src-") as tmp:  # setuptools writes build/ next to the source
        copy = Path(tmp)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(source / name, copy / name)
        shutil.copytree(PACKAGE_DIR, copy / "nb_assets", ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(copy)],
                       check=True)
    own = next(dest.glob("nb_assets-*.whl"))
    if not (cached / ".complete").exists():
        _say(f"downloading wheels into {cached}")
        cached.mkdir(parents=True, exist_ok=True)
        constraints = cached / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        # The host runs the image's Python minor (3.11) on bookworm's glibc or older, so what pip picks
        # for the host fits the image; --python-version for Requires-Python; nothing is compiled there.
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                               "--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--dest", str(cached),
                               "-c", str(constraints), str(own), f"pip=={PIP_VERSION}"])
        if done.returncode != 0:
            raise SandboxError(f"downloading the code image's wheels failed (exit {done.returncode})")
        (cached / ".complete").touch()
    for old in cache_dir().glob("code-wheels-*"):  # wheels of older pins are dead weight (~300 MB each)
        if old != cached:
            shutil.rmtree(old, ignore_errors=True)
    for wheel in cached.glob("*.whl"):
        if not wheel.name.startswith("nb_assets-"):
            shutil.copy(wheel, dest / wheel.name)


def _package_source() -> Path:
    """The folder holding pyproject.toml for the nb_assets this process runs."""
    source = PACKAGE_DIR.parent
    if not (source / "pyproject.toml").exists():
        raise SandboxError(f"nb_assets runs from {PACKAGE_DIR}, not from a source tree: cannot build its wheel")
    return source


def _copy_project(project_dir: Path, dest: Path) -> None:
    dest.mkdir()
    for path, relative in _project_files(project_dir):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


def _project_files(project_dir: Path) -> list[tuple[Path, Path]]:
    """(path, relative path) of the project's files that go into the image, in a stable order."""
    root = project_dir.resolve()
    return [(root / relative, relative) for relative in project_layout(root).files()]


def _files(root: Path, base: Path) -> Iterator[tuple[Path, Path]]:
    """(path, relative path) of nb_assets' own files, in a stable order."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            yield path, path.relative_to(base)


def _docker_build(client: Any, context: Path, tag: str, args: dict[str, str], labels: dict[str, str]) -> None:
    stream = client.api.build(path=str(context), tag=tag, buildargs=args, rm=True, forcerm=True, decode=True,
                              pull=False, labels=labels)
    said: list[str] = []
    for chunk in stream:
        if "error" in chunk:
            tail = "\n".join(said[-15:])
            raise SandboxError(f"docker build of the code image failed: {chunk['error'].strip()}\n{tail}")
        line = chunk.get("stream", "").rstrip()
        if line:
            said.append(line)
            print(line, flush=True)


def _say(message: str) -> None:
    print(f"[nb_assets.deploy.code_image] {message}", file=sys.stderr, flush=True)
