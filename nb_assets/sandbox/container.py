"""DockerSandbox: each notebook run in a fresh, locked-down container.

What the container gets, and why:
  network        none: only a loopback for papermill <-> kernel ZMQ traffic
  root fs        the sandbox image, read-only
  /nb/in         the job: prefetched Parquet inputs, the in-box code and the
                 parameterized notebook, copied in through the engine API
                 into the container's own (anonymous) volume, as root-owned
                 read-only files; a `go` file last
  /nb/output     a tmpfs of limits.output_mb: where outputs go
  /nb/record     a tmpfs of RECORD_MB: the executed notebook and the verdict
  /tmp, $HOME, /nb/work  small tmpfs scratch
  user           1000:1000, no capabilities, no-new-privileges
  limits         memory without swap (tmpfs pages count too), CPUs, process
                 count, and the wall clock, kept by the supervisor inside
  main process   inbox_supervisor.py: starts the runner, which boots (papermill
                 imported, kernel started) and waits for the go; runs it until
                 the deadline, then streams outputs and record back as one
                 tar on stdout, which the host reads through the attach API,
                 with a byte cap
With `spares=True` a run claims a warm spare made with its exact settings, if
one is offered, and makes the next one meanwhile (sandbox/spares.py); without
one, it makes its own container, copies the job in and starts it.
The container removes itself when it ends (auto_remove), whether or not the
host that started it is still there; its deadline lives inside. Nothing names
a host path, so the engine may be remote (DOCKER_HOST).
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nb_assets.errors import SandboxError, SandboxUnavailableError
from nb_assets.sandbox import usr_volume
from nb_assets.sandbox.ahead import SpareWindow, max_idle_spares, spare_window
from nb_assets.sandbox.base import RECORD_MB, RunFolder, SandboxLimits, SandboxResult
from nb_assets.sandbox.container_config import COLLECT_GRACE_S, JOB_DIR, container_config
from nb_assets.sandbox.container_result import sandbox_result
from nb_assets.sandbox.image import BUILD_COMMAND, docker_client, image_tag
from nb_assets.sandbox.janitor import OWNER_LABEL, owner, remove_container, sweep_abandoned
from nb_assets.sandbox.spares import (
    boot_spare,
    claim_spare,
    forget_claim,
    idle_count,
    offer_spare,
    offered_count,
    spare_key,
    spare_pool,
    spare_ttl_s,
    spares_per_settings,
    sweep_claims,
)
from nb_assets.sandbox.transfer import CopyOutReader, pack_job, pack_runtime

COLD_GO_S = 120.0  # a container made for its run gets its go within this (the job is copied in before the start)
SPARE_START_S = 60.0  # how long wait_for_spare waits for a spare to be made and started

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
    """Runs `inbox_papermill.py` (inbox/runner.py) on a run folder inside a container per run.

    Its container's settings are in sandbox/container_config.py, the reading of
what comes back in sandbox/container_result.py. `image` defaults to the tag of the current recipe (nb_assets.sandbox.image).
    Construction checks that the engine answers and has the image, raising
    SandboxUnavailableError with the fix; `lazy=True` defers that check to
    the first run (for code that declares sandboxes before Docker is up).
    """

    kind = "docker"
    _filling = False  # this process has started making the image's /usr volume (sandbox/usr_volume.py)

    def __init__(
        self, image: str | None = None, client: Any | None = None, *, lazy: bool = False, spares: bool = False
    ) -> None:
        self.image = image or image_tag()
        self.spares = spares
        # When this sandbox's next run is due (epoch seconds), if the caller knows (a cron's next tick):
        # the spare made after a run then boots shortly before it instead of at once (sandbox/ahead.py).
        self.next_run_at: float | None = None
        self._makers: list[subprocess.Popen[bytes]] = []
        self._client = client
        self._image_id: str | None = None
        # Wall-clock marks of the last run, the host's and the box's (benchmarks/cold_docker.py reads them).
        self.last_timeline: dict[str, float] = {}
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
            "limits": {**limits.as_dict(), "record_mb": RECORD_MB},
            "transfer": "copied in and out through the engine API",
        }

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        """One container: a claimed spare, or one made now; copy the job in, collect (the supervisor
        keeps the deadline), remove. With spares on, a process of its own then makes the next run's spare
        (in a pool, this process, once its container is removed: sandbox/spares.py)."""
        import docker.errors
        import requests.exceptions

        marks = self.last_timeline = {"host.run": time.time()}
        image_id = self.check()
        sweep_abandoned(self.client)
        marks["host.swept"] = time.time()
        runtime = _runtime_tar(folder.runtime_dir)
        settings = self._settings(limits)
        if usr_volume.wanted() and not any(m.get("Target") == usr_volume.MOUNT_POINT for m in settings["mounts"]):
            if not DockerSandbox._filling:  # once per process: the copy takes a while, runs go on without it
                DockerSandbox._filling = True
                usr_volume.start_filling(self.image)
        key = spare_key(json.dumps(settings, sort_keys=True, default=repr), runtime)
        claimed, others = claim_spare(self.client, key) if self.spares else (None, 0)
        container_id = claimed
        collected = None
        try:
            if container_id is None:
                container_id = self._create(folder, limits)
                marks["host.created"] = time.time()
                self._boot(container_id, folder)
            collected = self._collect(container_id, folder, limits)
            marks["host.collected"] = time.time()
        except docker.errors.APIError as exc:
            raise SandboxError(f"the sandbox container failed: {exc}") from exc
        except requests.exceptions.RequestException as exc:  # the engine went away mid-run
            raise SandboxError(f"lost the Docker engine during the run: {exc}") from exc
        finally:
            due = self.next_run_at
            if due is not None and due - time.time() <= spare_ttl_s():
                due = None  # soon enough for the ordinary spare
            # Spares after a run the engine saw through only; a maker process only when one is wanted
            # (make_next_spares checks again), while a pool member checks here, where it is cheap.
            wanted = self.spares and collected is not None
            if wanted and not spare_pool() and (due is not None or others < spares_per_settings()):
                self._spawn_spare_maker(limits, due=due)
            if container_id is not None:
                remove_container(self.client, container_id)
            if claimed is not None:
                forget_claim(claimed)
            marks["host.removed"] = time.time()
            if wanted and spare_pool():
                self._make_pool_spares(limits, due)
        return self._result(folder, limits, image_id, collected, container_id=container_id, warm=claimed is not None)

    def spare_ahead(self, limits: SandboxLimits, due: float) -> None:
        """Have a spare ready for a run with `limits` due at `due` (epoch seconds): made now by a process of
        its own (in a pool, by this one), it boots by itself shortly before `due` and waits a grace period after
        (sandbox/ahead.py)."""
        if spare_pool():
            try:
                self.make_spare(limits, due=due)
            except Exception as exc:  # noqa: BLE001 - the run due then starts cold, nothing else
                print(f"[nb_assets] no spare made for the run due at {due:.0f}: {exc}", file=sys.stderr)
        else:
            self._spawn_spare_maker(limits, due=due, ahead_only=True)

    def _spawn_spare_maker(self, limits: SandboxLimits, due: float | None = None, *, ahead_only: bool = False) -> None:
        """The next run's spare is made by a process of its own, started once this run is over: making and
        booting a container costs CPU that would slow this run down, and this process may exit right away."""
        self._makers = [p for p in self._makers if p.poll() is None]
        argv = [sys.executable, "-m", "nb_assets.sandbox.spare_maker", self.image, json.dumps(limits.as_dict())]
        if due is not None:
            argv += [f"{due:.3f}", *(["--ahead-only"] if ahead_only else [])]
        try:
            self._makers.append(subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,  # outlives this process, and the signals sent to its group
            ))
        except OSError as exc:
            print(f"[nb_assets] no warm spare made for the next run: {exc}", file=sys.stderr)

    def _make_pool_spares(self, limits: SandboxLimits, due: float | None) -> None:
        """In a pool, here and now: a deployment's run worker exits with its run, and a maker process
        of its own would die with its container. Starting one costs this run ~0.3 s; booting is the box's."""
        try:
            self.make_next_spares(limits, due=due)
        except Exception as exc:  # noqa: BLE001 - a missing spare costs the next run its head start only
            print(f"[nb_assets] no warm spare made for the next run: {exc}", file=sys.stderr)
        self.last_timeline["host.spare_made"] = time.time()

    def make_next_spares(self, limits: SandboxLimits, due: float | None = None) -> list[str]:
        """What a run leaves for the runs after it: a spare booted at once for the next one (a chain's next
        step, a backfill's next day, a sensor's or a person's run), if not enough are offered; and with
        `due`, one for the run due then, which boots shortly before (one per settings and time)."""
        made = [self.make_spare(limits)]
        if due is not None:
            made.append(self.make_spare(limits, due=due))
        return [m for m in made if m is not None]

    def wait_for_spare(self, timeout: float = SPARE_START_S) -> None:
        """Wait until the spare makers this sandbox started are done (for tests and benchmarks)."""
        for maker in self._makers:
            maker.wait(timeout)
        self._makers = []

    def make_spare(self, limits: SandboxLimits, due: float | None = None) -> str | None:
        """Make, start and boot a spare for runs with `limits`; its id. None when one is offered already
        (still there at `due`, for a run due then), or max_idle_spares() wait already (sandbox/ahead.py).

        Without `due` it boots at once and waits spare_ttl_s(); with one it boots by itself shortly
        before `due` and waits a grace period after."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = RunFolder(Path(tmp)).create()
            folder.install_inbox_files()
            runtime = _runtime_tar(folder.runtime_dir)
        key = spare_key(json.dumps(self._settings(limits), sort_keys=True, default=repr), runtime)
        now = time.time()
        window = (spare_window(due, now, min_claim_s=spare_ttl_s()) if due is not None
                  else SpareWindow(due=now, boot_at=0.0, claim_by=now + spare_ttl_s()))
        # Enough: a run due then has one; runs now have one per run slot (a pool's NB_ASSETS_SPARES_PER_SETTINGS).
        enough = offered_count(self.client, key, until=due) >= (1 if due is not None else spares_per_settings())
        if enough or (not window.boot_at and idle_count(self.client) >= max_idle_spares()):  # the cap: booted ones
            return None
        config = self._container_config(limits, window.claim_by, labels={}, boot_at=window.boot_at)
        container_id = offer_spare(self.client, config, key, runtime, JOB_DIR)
        if not window.boot_at:
            boot_spare(self.client, container_id, JOB_DIR)
        sweep_claims(self.client)
        return container_id

    def _create(self, folder: RunFolder, limits: SandboxLimits) -> str:
        import docker.errors

        claim_by = time.time() + COLD_GO_S
        labels = {"nb_assets.run_folder": str(folder.root), OWNER_LABEL: owner()}
        try:
            container = self.client.containers.create(**self._container_config(limits, claim_by, labels=labels))
        except docker.errors.ImageNotFound as exc:
            self._image_id = None
            raise SandboxUnavailableError(
                f"the sandbox image {self.image} is missing: run `{BUILD_COMMAND}`"
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"cannot create the sandbox container: {exc}") from exc
        return str(container.id)

    def _boot(self, container_id: str, folder: RunFolder) -> None:
        """A container made for its run: the in-box code and the boot file in, then started, so the
        runner imports papermill and starts the kernel while the host copies the job in (as a spare
        does before its run exists). Until the go the supervisor holds back what the runner says."""
        spool = io.BytesIO()
        pack_runtime(folder.runtime_dir, spool, boot=True)
        if not self.client.api.put_archive(container_id, JOB_DIR, spool.getvalue()):
            raise SandboxError("could not copy the in-box code into the sandbox container")
        self.client.api.start(container_id)
        self.last_timeline["host.started"] = time.time()

    def _collect(self, container_id: str, folder: RunFolder, limits: SandboxLimits) -> CopyOutReader:
        # Attached before the go, so nothing the supervisor writes is missed.
        stream = self.client.api.attach(container_id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
        cap = (limits.output_mb + RECORD_MB + 1) << 20  # + tar headers and the facts
        collector = CopyOutReader(stream, folder.root / ".copy-out.tar", cap)
        collector.start()
        with tempfile.TemporaryFile(dir=folder.root) as spool:
            pack_job(folder, spool, runtime=False, go=True)  # the container booted with the runtime
            spool.seek(0)
            if not self.client.api.put_archive(container_id, JOB_DIR, spool):
                raise SandboxError("could not copy the run folder into the sandbox container")
        self.last_timeline["host.copied_in"] = time.time()
        collector.join(COLD_GO_S + limits.timeout_s + COLLECT_GRACE_S)  # the supervisor's deadline, plus a backstop
        collector.host_timed_out = collector.is_alive()
        if collector.is_alive() or collector.overflow:
            _kill(self.client, container_id)
            collector.join(30)
        return collector

    def _result(
        self, folder: RunFolder, limits: SandboxLimits, image_id: str, collected: CopyOutReader, *, container_id: str, warm: bool
    ) -> SandboxResult:
        return sandbox_result(folder, limits, collected, self.describe(limits), self.last_timeline,
                              image_id=image_id, container_id=container_id, warm=warm)

    def _settings(self, limits: SandboxLimits) -> dict[str, Any]:
        """A run container's settings apart from its labels and claim-by: what a spare must match."""
        config = self._container_config(limits, 0.0, labels={})
        del config["labels"]
        return config

    def _container_config(
        self, limits: SandboxLimits, claim_by: float, *, labels: dict[str, str], boot_at: float = 0.0
    ) -> dict[str, Any]:
        trees = usr_volume.mounts_for(self.client, self.check())  # the image's Python, off fuse-overlayfs, read-only
        return container_config(self.image, trees, limits, claim_by, labels=labels, boot_at=boot_at)


def _runtime_tar(runtime_dir: Path) -> bytes:
    spool = io.BytesIO()
    pack_runtime(runtime_dir, spool)
    return spool.getvalue()


def _kill(client: Any, container_id: str) -> None:
    import docker.errors

    try:
        client.api.kill(container_id)
    except docker.errors.APIError:
        pass  # it exited on its own between the deadline and the kill
