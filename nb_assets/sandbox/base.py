"""Where opaque notebook code runs: the Sandbox interface, its limits and run folder.

A sandbox receives a prepared run folder (plain files) and runs
`inbox_papermill.py` (inbox/runner.py) on it with limits; it knows nothing of Dagster or the
warehouse. What it hands back is bounded: the log is a tail, the record at
most RECORD_MB, the outputs at most SandboxLimits.output_mb. LocalSandbox
runs papermill and its kernel as one subprocess in fresh network and PID
namespaces (local.py); DockerSandbox (container.py) adds a container.
"""

from __future__ import annotations

import collections
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

RUNNER_FILE = "inbox_papermill.py"
SUPERVISOR_FILE = "inbox_supervisor.py"
LOG_TAIL_CHARS = 20000
SandboxKind = Literal["auto", "docker", "local"]  # auto: Docker when an engine answers, else local


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits. Docker enforces all of them; LocalSandbox the timeout
    and, for the outputs folder, the size (see LocalSandbox). `timeout_s` is
    also the whole run's budget, which the host's stages count against."""

    timeout_s: float = 600.0
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    tmp_mb: int = 256
    # The outputs folder. In Docker it is a tmpfs of this size, so what a
    # notebook writes there also counts against memory_mb until it is copied out.
    output_mb: int = 1024
    # The host's own stages, in seconds (warehouse/deadline.py): each is cut at its
    # limit or at what is left of timeout_s since the run began, whichever comes
    # first, and its query is cancelled in the warehouse. The output checks run
    # inside the load, so they are bounded by load_timeout too.
    prefetch_timeout: float = 300.0
    load_timeout: float = 300.0
    checks_timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("prefetch_timeout", "load_timeout", "checks_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"limits: {name} must be a number of seconds above 0, not {value!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RECORD_MB = 64  # the record folder (executed notebook + verdict); the runner keeps outputs far below it
RESULT_MAX_BYTES = 1 << 20  # a verdict is a few KB; a bigger result.json is not the runner's
# In-box name -> source in the package: copied next to the runtime package, under the names
# the supervisor's and the runner's argv use.
INBOX_FILES = {RUNNER_FILE: "inbox/runner.py", SUPERVISOR_FILE: "inbox/supervisor.py"}
# The runtime package as the box sees it: notebook.py and the contract it imports (the
# `__init__.py` files are stubs: nothing else of nb_assets goes in).
RUNTIME_FILES = (
    "notebook.py", "inbox/contract.py", "inbox/jupysql.py", "inbox/checks.py",
    "inbox/record_bounds.py",  # the runner imports it
)


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
