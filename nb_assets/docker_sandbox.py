"""DockerSandbox: each notebook run in a fresh, locked-down container.

What the container gets, and why:
  network        none: only a loopback for papermill <-> kernel ZMQ traffic
  root fs        the sandbox image, read-only; the only writable places are
                 /nb/output, /nb/record (bind mounts) and small tmpfs scratch
                 (/tmp, $HOME, /nb/work) that vanishes with the container
  /nb/input      the prefetched Parquet files, read-only
  /nb/runtime    inbox_papermill.py + the nb_assets runtime package, read-only
  user           1000:1000, no capabilities, no-new-privileges
  limits         memory without swap, CPUs, process count, wall clock
The container is removed after every run, also on failure and timeout.

Bind mounts name host paths, so the engine must run on this host (a remote
DOCKER_HOST needs the run folder on that host, e.g. via shared storage).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
from pathlib import Path
from typing import Any

from nb_assets.errors import SandboxError, SandboxUnavailableError
from nb_assets.image import BUILD_COMMAND, docker_client, image_tag
from nb_assets.sandbox import RUNNER_FILE, RunFolder, SandboxLimits, SandboxResult, runner_env

SANDBOX_UID = 1000
SANDBOX_GID = 1000
HOME_DIR = "/home/nb"
INPUT_DIR = "/nb/input"
OUTPUT_DIR = "/nb/output"
RUNTIME_DIR = "/nb/runtime"
RECORD_DIR = "/nb/record"
WORK_DIR = "/nb/work"
LOG_TAIL_CHARS = 20000

__all__ = ["DockerSandbox", "docker_available"]


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers within ~2 s (cached for the process)."""
    try:
        docker_client(timeout=2.0).ping()
        return True
    except Exception:
        return False


class DockerSandbox:
    """Runs `inbox_papermill.py` on a run folder inside a container per run.

    `image` defaults to the tag of the current recipe (nb_assets.image).
    Construction checks that the engine answers and has the image, raising
    SandboxUnavailableError with the fix; `lazy=True` defers that check to
    the first run (for code that declares sandboxes before Docker is up).
    """

    kind = "docker"

    def __init__(self, image: str | None = None, client: Any | None = None, *, lazy: bool = False) -> None:
        self.image = image or image_tag()
        self._client = client
        self._image_id: str | None = None
        if not lazy:
            self.check()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client()
        return self._client

    def check(self) -> str:
        """Raise SandboxUnavailableError unless the engine and image are there; return the image id."""
        if self._image_id is not None:
            return self._image_id
        import docker.errors

        try:
            self._image_id = str(self.client.images.get(self.image).id)
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailableError(
                f"the sandbox image {self.image} is missing: run `{BUILD_COMMAND}`"
            ) from exc
        except SandboxUnavailableError:
            raise  # already says what is wrong (no engine answers)
        except docker.errors.DockerException as exc:
            raise SandboxUnavailableError(f"the Docker engine cannot be used: {exc}") from exc
        except Exception as exc:  # requests-level connection errors
            raise SandboxUnavailableError(f"no Docker engine answers: {exc}") from exc
        return self._image_id

    def describe(self, limits: SandboxLimits) -> dict[str, Any]:
        try:
            image_id: str | None = self.check()
        except SandboxUnavailableError:
            image_id = None
        return {
            "kind": self.kind,
            "network": "none",
            "image": self.image,
            "image_id": image_id,
            "limits": limits.as_dict(),
        }

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        """One container: create, start, wait (kill at the deadline), collect, remove."""
        image_id = self.check()
        _grant_sandbox_access(folder)
        try:
            return self._run_container(folder, limits, image_id)
        finally:
            _reclaim(folder)

    def _run_container(self, folder: RunFolder, limits: SandboxLimits, image_id: str) -> SandboxResult:
        import docker.errors
        import requests.exceptions

        try:
            container = self.client.containers.create(**self._container_config(folder, limits))
        except docker.errors.ImageNotFound as exc:
            self._image_id = None
            raise SandboxUnavailableError(
                f"the sandbox image {self.image} is missing: run `{BUILD_COMMAND}`"
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot create the sandbox container: {exc}") from exc

        timed_out = False
        started = time.monotonic()
        try:
            container.start()
            try:
                # The HTTP read timeout is the wall clock the run gets.
                status = container.wait(timeout=limits.timeout_s)
            except requests.exceptions.RequestException as exc:
                if not _is_read_timeout(exc):
                    raise
                timed_out = True
                _kill(container)
                status = container.wait(timeout=60)
            duration = time.monotonic() - started
            container.reload()
            state = container.attrs.get("State", {})
            exit_code = status.get("StatusCode", state.get("ExitCode"))
            logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        except docker.errors.APIError as exc:
            raise SandboxError(f"the sandbox container failed: {exc}") from exc
        except requests.exceptions.RequestException as exc:  # the engine went away mid-run
            raise SandboxError(f"lost the Docker engine during the run: {exc}") from exc
        finally:
            _remove(container)

        facts = self.describe(limits)
        facts.update(image_id=image_id, exit_code=exit_code)
        return SandboxResult(
            exit_code=exit_code,
            duration_s=duration,
            logs=logs[-LOG_TAIL_CHARS:],
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")),
            facts=facts,
        )

    def _container_config(self, folder: RunFolder, limits: SandboxLimits) -> dict[str, Any]:
        from docker.types import LogConfig, Mount, Ulimit

        def bind(target: str, source: Path, read_only: bool) -> Any:
            return Mount(target, str(source.resolve()), type="bind", read_only=read_only)

        def tmpfs(size_mb: int, owner: bool) -> str:
            opts = f"rw,nosuid,nodev,noexec,size={size_mb}m"
            return opts + (f",uid={SANDBOX_UID},gid={SANDBOX_GID},mode=0700" if owner else ",mode=1777")

        env = runner_env(INPUT_DIR, OUTPUT_DIR, RUNTIME_DIR, WORK_DIR)
        env["HOME"] = HOME_DIR  # IPython profile, kernel connection files: on tmpfs
        return {
            "image": self.image,
            "command": [
                "python3",
                f"{RUNTIME_DIR}/{RUNNER_FILE}",
                f"{RECORD_DIR}/{folder.parameterized_notebook.name}",
                f"{RECORD_DIR}/{folder.executed_notebook.name}",
                f"{RECORD_DIR}/{folder.result_file.name}",
            ],
            "environment": env,
            "working_dir": WORK_DIR,
            "user": f"{SANDBOX_UID}:{SANDBOX_GID}",
            "hostname": "sandbox",
            "network_mode": "none",
            "read_only": True,
            "mounts": [
                bind(INPUT_DIR, folder.input_dir, read_only=True),
                bind(RUNTIME_DIR, folder.runtime_dir, read_only=True),
                bind(OUTPUT_DIR, folder.output_dir, read_only=False),
                bind(RECORD_DIR, folder.record_dir, read_only=False),
            ],
            # Scratch lives in memory, so it counts against mem_limit and
            # leaves nothing behind: only output/ and record/ persist.
            "tmpfs": {
                "/tmp": tmpfs(limits.tmp_mb, owner=False),
                HOME_DIR: tmpfs(min(limits.tmp_mb, 64), owner=True),
                WORK_DIR: tmpfs(limits.tmp_mb, owner=True),
            },
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "mem_limit": f"{limits.memory_mb}m",
            "memswap_limit": f"{limits.memory_mb}m",  # equal: no swap
            "nano_cpus": int(limits.cpus * 1e9),
            "pids_limit": limits.pids,
            "ulimits": [Ulimit(name="core", soft=0, hard=0)],
            # A real PID 1 reaps the kernel and forwards signals.
            "init": True,
            # Bound what a chatty run can write to the engine's disk.
            "log_config": LogConfig(type="json-file", config={"max-size": "10m", "max-file": "1"}),
            "labels": {"nb_assets.sandbox": "1", "nb_assets.run_folder": str(folder.root)},
        }


def _is_read_timeout(exc: Exception) -> bool:
    """The SDK reports its read timeout as a ConnectionError wrapping urllib3's ReadTimeoutError."""
    import requests.exceptions
    import urllib3.exceptions

    return isinstance(exc, requests.exceptions.ReadTimeout) or any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    )


def _kill(container: Any) -> None:
    import docker.errors

    try:
        container.kill()
    except docker.errors.APIError:
        pass  # it exited on its own between the deadline and the kill


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


def _grant_sandbox_access(folder: RunFolder) -> None:
    """Let uid 1000 read input/runtime and write output/record.

    As root we hand the writable folders to uid 1000 (and take them back in
    _reclaim); otherwise we cannot chown, so they are opened to everyone.
    """
    for readable in (folder.input_dir, folder.runtime_dir, folder.record_dir):
        _make_world_readable(readable)
    for writable in (folder.output_dir, folder.record_dir):
        if os.geteuid() == 0:
            os.chown(writable, SANDBOX_UID, SANDBOX_GID)
            os.chmod(writable, 0o755)
        elif os.stat(writable).st_uid != SANDBOX_UID:
            os.chmod(writable, 0o777)


def _make_world_readable(root: Path) -> None:
    for path in (root, *root.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        wanted = mode | (0o555 if path.is_dir() else 0o444)
        if wanted != mode:
            os.chmod(path, wanted)


def _reclaim(folder: RunFolder) -> None:
    """Give what the container wrote back to the host user, so no file in the
    run folder belongs to whoever has uid 1000 here and no folder stays open."""
    if os.geteuid() == 0:
        uid, gid = os.geteuid(), os.getegid()
        for root in (folder.output_dir, folder.record_dir):
            for path in (root, *root.rglob("*")):
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(path, uid, gid)
        return
    # Without root we cannot chown: copy each regular file the sandbox wrote
    # to a file we own, then close the folders opened for the run (0777).
    for root in (folder.output_dir, folder.record_dir):
        for path in root.iterdir():
            if path.is_file() and not path.is_symlink() and path.stat().st_uid != os.geteuid():
                mine = path.with_name(path.name + ".host")
                shutil.copyfile(path, mine)
                os.replace(mine, path)
        os.chmod(root, 0o755)
