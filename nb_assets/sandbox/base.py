"""Where opaque notebook code runs: the Sandbox interface and LocalSandbox.

A sandbox receives a prepared run folder (plain files) and runs
`inbox_papermill.py` on it with limits; it knows nothing of Dagster or the
warehouse. What it hands back is bounded: the log is a tail, the record at
most RECORD_MB, the outputs at most SandboxLimits.output_mb. LocalSandbox
runs papermill and its kernel as one subprocess in fresh network and PID
namespaces; DockerSandbox (docker_sandbox.py) adds a container.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from nb_assets.errors import SandboxUnavailableError

RUNNER_FILE = "inbox_papermill.py"
SUPERVISOR_FILE = "inbox_supervisor.py"
LOG_TAIL_CHARS = 20000
SandboxKind = Literal["auto", "docker", "local"]  # auto: Docker when an engine answers, else local


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits. Docker enforces all of them; LocalSandbox the timeout
    and, for the outputs folder, the size (see LocalSandbox)."""

    timeout_s: float = 600.0
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    tmp_mb: int = 256
    # The outputs folder. In Docker it is a tmpfs of this size, so what a
    # notebook writes there also counts against memory_mb until it is copied out.
    output_mb: int = 1024

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RECORD_MB = 64  # the record folder (executed notebook + verdict); the runner keeps outputs far below it
RESULT_MAX_BYTES = 1 << 20  # a verdict is a few KB; a bigger result.json is not the runner's
# In-box name -> source in the package: copied next to the runtime package, under the names
# the supervisor's and the runner's argv use.
INBOX_FILES = {RUNNER_FILE: "inbox/runner.py", SUPERVISOR_FILE: "inbox/supervisor.py"}
# The runtime package as the box sees it: notebook.py and the contract it imports (the
# `__init__.py` files are stubs: nothing else of nb_assets goes in).
RUNTIME_FILES = ("notebook.py", "inbox/contract.py")


PARAMETERIZED, PARAMETERS, EXECUTED, RESULT = "parameterized.ipynb", "parameters.json", "executed.ipynb", "result.json"


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
        return self.record_dir / PARAMETERIZED

    @property
    def executed_notebook(self) -> Path:
        return self.record_dir / EXECUTED

    @property
    def parameters_file(self) -> Path:
        return self.record_dir / PARAMETERS

    @property
    def result_file(self) -> Path:
        return self.record_dir / RESULT

    def create(self) -> "RunFolder":
        for d in (self.input_dir, self.output_dir, self.runtime_dir, self.record_dir, self.work_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self

    def install_inbox_files(self) -> None:
        """The in-box code: the runner, the Docker supervisor and the notebook runtime package."""
        here = Path(__file__).resolve().parents[1]  # the nb_assets package
        for name, source in INBOX_FILES.items():
            shutil.copyfile(here / source, self.runtime_dir / name)
        package = self.runtime_dir / "nb_assets"
        (package / "inbox").mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text('"""nb_assets runtime, as seen inside a sandbox."""\n')
        (package / "inbox" / "__init__.py").write_text('"""The in-box contract, as seen inside a sandbox."""\n')
        for name in RUNTIME_FILES:
            shutil.copyfile(here / name, package / name)


@dataclass(frozen=True)
class SandboxResult:
    """What a sandbox hands back; the record it leaves in the run folder is bounded in size."""

    exit_code: int | None
    duration_s: float
    logs: str
    timed_out: bool = False
    oom_killed: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    output_full: bool = False  # the outputs folder reached SandboxLimits.output_mb
    record_full: bool = False  # the record folder reached RECORD_MB
    lost_record: str | None = None  # why the record could not be handed back whole, if it could not
    refused: tuple[str, ...] = ()  # output entries not handed back (links, folders, ...), as problems


class Sandbox(Protocol):
    kind: str

    def describe(self, limits: SandboxLimits) -> dict[str, Any]:
        """Provenance for metadata: kind, network, image, limits."""
        ...

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        """Execute the folder's parameterized notebook; never raises for notebook faults."""
        ...


def runner_argv(python: str, runtime_dir: str, job_dir: str, record_dir: str, *, wait: bool = False) -> list[str]:
    """The runner's command line; `job_dir` holds the parameterized notebook and its parameters.
    `wait`: boot first, then run on a go line on stdin (see inbox_papermill.py)."""
    return [
        python,
        f"{runtime_dir}/{RUNNER_FILE}",
        *(["--wait"] if wait else []),
        f"{job_dir}/{PARAMETERIZED}",
        f"{job_dir}/{PARAMETERS}",
        f"{record_dir}/{EXECUTED}",
        f"{record_dir}/{RESULT}",
    ]


class LogTail:
    """The last LOG_TAIL_CHARS bytes of a stream, however much is written to it."""

    def __init__(self, limit: int = LOG_TAIL_CHARS) -> None:
        self.limit = limit
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size - len(self._chunks[0]) >= self.limit:
            self._size -= len(self._chunks.popleft())

    def drain(self, pipe: IO[bytes]) -> threading.Thread:
        """Read `pipe` to its end in a background thread."""

        def pump() -> None:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                self.write(chunk)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread

    def text(self) -> str:
        return b"".join(self._chunks)[-self.limit:].decode("utf-8", "replace")


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
    Of the outputs folder's size it enforces what a process limit can: no
    file the run writes, anywhere, grows past output_mb (RLIMIT_FSIZE), and a
    folder found over the limit after the run fails it. It cannot stop a
    notebook filling the disk with many files, or outside the run folder,
    while it runs. Without namespaces it refuses to run unless
    `allow_network=True` says the host network is acceptable.
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
            "limits": {"timeout_s": limits.timeout_s, "output_mb": limits.output_mb},
            "contains": "network only; files, memory and processes are the host's",
        }
        if self.fallback_reason:
            facts["fallback_reason"] = self.fallback_reason
        return facts

    def _argv(self, folder: RunFolder, limits: SandboxLimits) -> list[str]:
        runner = runner_argv(self.python, str(folder.runtime_dir), str(folder.record_dir), str(folder.record_dir))
        # No file grows past the outputs limit; Python ignores SIGXFSZ, so a write fails with EFBIG.
        file_limit = max(limits.output_mb, RECORD_MB) << 20
        prefix = ["prlimit", f"--fsize={file_limit}:{file_limit}", "--"] if shutil.which("prlimit") else []
        if not self.isolated:
            return [*prefix, *runner]
        return [*prefix, *_unshare_prefix(), "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *runner]

    def run(self, folder: RunFolder, limits: SandboxLimits) -> SandboxResult:
        # Only what a kernel needs: the host's secrets stay out of the notebook's environment.
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env.update(runner_env(str(folder.input_dir), str(folder.output_dir), str(folder.runtime_dir), str(folder.work_dir)))
        started = time.monotonic()
        proc = subprocess.Popen(
            self._argv(folder, limits),
            env=env,
            cwd=folder.work_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout can kill the kernel too
        )
        logs = LogTail()
        reader = logs.drain(proc.stdout)  # type: ignore[arg-type]
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except BaseException:  # the host was interrupted (Ctrl-C, Dagster's terminate): the notebook ends with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        reader.join(timeout=10)  # a leftover holding the pipe open is gone with the PID namespace
        return SandboxResult(
            exit_code=proc.returncode,
            duration_s=time.monotonic() - started,
            logs=logs.text(),
            timed_out=timed_out,
            facts=self.describe(limits),
            output_full=folder_bytes(folder.output_dir, limits.output_mb << 20) >= limits.output_mb << 20,
            record_full=_drop_oversized_record(folder),
        )


def folder_bytes(root: Path, stop_at: int) -> int:
    """Bytes of the regular files directly in `root`, counted until `stop_at` (links not followed)."""
    total = 0
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
                if total >= stop_at:
                    break
    return total


def _drop_oversized_record(folder: RunFolder) -> bool:
    """The runner keeps the record far below its limit; a file that reached it was forged, and the host
    must not read it. (RLIMIT_FSIZE stops any file at the larger of output_mb and RECORD_MB.)"""
    oversized = False
    for path, limit in ((folder.executed_notebook, RECORD_MB << 20), (folder.result_file, RESULT_MAX_BYTES)):
        try:
            too_big = path.lstat().st_size >= limit
        except FileNotFoundError:
            continue
        if too_big:
            path.unlink()
            oversized = True
    return oversized
