"""LocalSandbox: papermill and its kernel as one subprocess in fresh network and PID namespaces.

The sandbox used where no Docker engine answers (and chosen explicitly with
--sandbox local): it contains the network and the process tree; the timeout
and the outputs folder's size are its only resource limits.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nb_assets.errors import SandboxUnavailableError
from nb_assets.sandbox.base import (
    RECORD_MB,
    RESULT_MAX_BYTES,
    LogTail,
    RunFolder,
    SandboxLimits,
    SandboxResult,
    runner_argv,
    runner_env,
)

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
