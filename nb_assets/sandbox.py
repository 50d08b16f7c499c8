"""Where opaque notebook code runs: the Sandbox interface and LocalSandbox.

A sandbox receives a prepared run folder (plain files) and runs
`inbox_papermill.py` on it with limits; it knows nothing of Dagster or the
warehouse. LocalSandbox runs papermill and its kernel as one subprocess in a
fresh network namespace; DockerSandbox (docker_sandbox.py) adds a container.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from nb_assets.errors import SandboxUnavailableError

RUNNER_FILE = "inbox_papermill.py"
SandboxKind = Literal["auto", "docker", "local"]  # auto: Docker when an engine answers, else local


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits; LocalSandbox enforces only the timeout."""

    timeout_s: float = 600.0
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    tmp_mb: int = 256

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunFolder:
    """The files of one run: read-only inputs, write-only outputs, the record."""

    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "runtime"

    @property
    def record_dir(self) -> Path:
        return self.root / "record"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def parameterized_notebook(self) -> Path:
        return self.record_dir / "parameterized.ipynb"

    @property
    def executed_notebook(self) -> Path:
        return self.record_dir / "executed.ipynb"

    @property
    def parameters_file(self) -> Path:
        return self.record_dir / "parameters.json"

    @property
    def result_file(self) -> Path:
        return self.record_dir / "result.json"

    def create(self) -> "RunFolder":
        for d in (self.input_dir, self.output_dir, self.runtime_dir, self.record_dir, self.work_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None
    duration_s: float
    logs: str
    timed_out: bool = False
    oom_killed: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


class Sandbox(Protocol):
    kind: str

    def describe(self, limits: SandboxLimits) -> dict[str, Any]:
        """Provenance for metadata: kind, network, image, limits."""
        ...

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        """Execute the folder's parameterized notebook; never raises for notebook faults."""
        ...


def runner_env(input_dir: str, output_dir: str, runtime_dir: str, work_dir: str) -> dict[str, str]:
    """The environment the notebook runtime reads (see notebook.py)."""
    return {
        "NB_ASSETS_MODE": "run",
        "NB_ASSETS_INPUT_DIR": input_dir,
        "NB_ASSETS_OUTPUT_DIR": output_dir,
        "NB_ASSETS_WORKDIR": work_dir,
        "PYTHONPATH": runtime_dir,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # ipykernel's own default, as in Jupyter; the image's Agg draws nothing
    }


@functools.cache
def network_namespaces_available() -> bool:
    """True when `unshare --net` works here (root, or unprivileged user namespaces)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        [*_unshare_prefix(), "sh", "-c", "ip link set lo up"],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


def _unshare_prefix() -> list[str]:
    # A PID namespace too: when its first process dies (run ends, or the
    # timeout kills it) the kernel ends every process left inside, even a
    # kernel in a C loop or a daemon that called setsid().
    prefix = ["unshare", "--net", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        prefix.append("--map-root-user")
    return prefix


_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "JUPYTER_PATH", "IPYTHONDIR", "VIRTUAL_ENV")


class LocalSandbox:
    """papermill + kernel as one subprocess in private network and PID namespaces.

    Contains the network (the kernel talks to papermill over loopback ZMQ, so
    the namespace gets its own `lo` and nothing else) and the process tree.
    Files and memory are not contained; that is what DockerSandbox is for.
    Without namespaces it refuses to run unless `allow_network=True` says the
    host network is acceptable.
    """

    kind = "local"

    def __init__(
        self, *, allow_network: bool = False, python: str = sys.executable, fallback_reason: str | None = None
    ) -> None:
        self.python = python
        self.fallback_reason = fallback_reason
        self.allow_network = allow_network
        self.isolated = not allow_network
        self.network = "host (allow_network=True)" if allow_network else "none (private namespace, loopback only)"
        if self.isolated and not network_namespaces_available():
            raise SandboxUnavailableError(
                "network namespaces (unshare --net) are unavailable here: start Docker for the Docker "
                "sandbox, or pass allow_network=True to run with the host network"
            )

    def describe(self, limits: SandboxLimits) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "network": self.network,
            "image": None,
            "limits": {"timeout_s": limits.timeout_s},
            "contains": "network only; files, memory and processes are the host's",
        }
        if self.fallback_reason:
            facts["fallback_reason"] = self.fallback_reason
        return facts

    def _argv(self, folder: RunFolder) -> list[str]:
        runner = [
            self.python,
            str(folder.runtime_dir / RUNNER_FILE),
            str(folder.parameterized_notebook),
            str(folder.executed_notebook),
            str(folder.result_file),
        ]
        if not self.isolated:
            return runner
        return [*_unshare_prefix(), "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *runner]

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        # Only what a kernel needs: the host's secrets stay out of the notebook's environment.
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update(runner_env(str(folder.input_dir), str(folder.output_dir), str(folder.runtime_dir), str(folder.work_dir)))
        started = time.monotonic()
        proc = subprocess.Popen(
            self._argv(folder),
            env=env,
            cwd=folder.work_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout can kill the kernel too
        )
        timed_out = False
        try:
            logs, _ = proc.communicate(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            logs, _ = proc.communicate()
        return SandboxResult(
            exit_code=proc.returncode,
            duration_s=time.monotonic() - started,
            logs=logs.decode("utf-8", "replace")[-20000:],
            timed_out=timed_out,
            facts=self.describe(limits),
        )
