"""The settings of a sandbox container: what it mounts, may write, may use, and the command it runs.

Docker-SDK types only (imported in the function), no engine call: DockerSandbox
(sandbox/container.py) creates runs and spares from these settings, and a spare
is claimed only by a run whose settings, labels aside, are the same.
See container.py's docstring for why each setting is what it is.
"""

from __future__ import annotations

from typing import Any

from nb_assets.sandbox.base import RECORD_MB, SUPERVISOR_FILE, SandboxLimits, runner_argv, runner_env
from nb_assets.sandbox.janitor import BOOT_AT_LABEL, CLAIM_BY_LABEL, DEADLINE_LABEL, SANDBOX_LABEL
from nb_assets.sandbox.transfer import GO

SANDBOX_UID = 1000
SANDBOX_GID = 1000
HOME_DIR = "/home/nb"
JOB_DIR = "/nb/in"
OUTPUT_DIR = "/nb/output"
RECORD_DIR = "/nb/record"
WORK_DIR = "/nb/work"
COLLECT_GRACE_S = 120.0  # past the run's deadline: supervisor start-up and the copy-out

__all__ = ["COLLECT_GRACE_S", "JOB_DIR", "container_config"]


def container_config(
    image: str, trees: list[Any], limits: SandboxLimits, claim_by: float, *, labels: dict[str, str],
    boot_at: float = 0.0,
) -> dict[str, Any]:
    """The keyword arguments of `containers.create` for a run (or a spare) with `limits`, claimable
    until `claim_by`, booting at `boot_at` (0: at once); `trees` are extra read-only mounts."""
    from docker.types import LogConfig, Mount, Ulimit

    def tmpfs(size_mb: int, owner: bool) -> str:
        opts = f"rw,nosuid,nodev,noexec,size={size_mb}m"
        return opts + (f",uid={SANDBOX_UID},gid={SANDBOX_GID},mode=0700" if owner else ",mode=1777")

    runtime = f"{JOB_DIR}/runtime"
    env = runner_env(f"{JOB_DIR}/input", OUTPUT_DIR, runtime, WORK_DIR)
    env["HOME"] = HOME_DIR  # IPython profile, kernel connection files: on tmpfs
    deadline = claim_by + limits.timeout_s + COLLECT_GRACE_S
    return {
        "image": image,
        "command": [
            "python3", f"{runtime}/{SUPERVISOR_FILE}", f"{limits.timeout_s:g}", OUTPUT_DIR, RECORD_DIR,
            f"{JOB_DIR}/{GO}", f"{claim_by:.0f}", *([f"{boot_at:.0f}"] if boot_at else []), "--",
            *runner_argv("python3", runtime, f"{JOB_DIR}/job", RECORD_DIR, wait=True),
        ],
        "environment": env,
        "working_dir": WORK_DIR,
        "user": f"{SANDBOX_UID}:{SANDBOX_GID}",
        "hostname": "sandbox",
        "network_mode": "none",
        "read_only": True,
        # Anonymous: the engine makes it at create time and removes it with the container.
        "mounts": [Mount(JOB_DIR, None, type="volume"), *trees],
        # Everything writable lives in memory, bounded, and vanishes with
        # the container; outputs and record leave only through the copy-out.
        "tmpfs": {
            "/tmp": tmpfs(limits.tmp_mb, owner=False),
            HOME_DIR: tmpfs(min(limits.tmp_mb, 64), owner=True),
            WORK_DIR: tmpfs(limits.tmp_mb, owner=True),
            OUTPUT_DIR: tmpfs(limits.output_mb, owner=True),
            RECORD_DIR: tmpfs(RECORD_MB, owner=True),
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",  # equal: no swap
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "ulimits": [Ulimit(name="core", soft=0, hard=0)],
        # A real PID 1 reaps orphans and forwards signals to the supervisor.
        "init": True,
        "auto_remove": True,
        # stdout carries the copy-out, read live through attach; nothing is logged to the engine's disk.
        "log_config": LogConfig(type="none"),
        "labels": {SANDBOX_LABEL: "1", DEADLINE_LABEL: f"{deadline:.0f}", CLAIM_BY_LABEL: f"{claim_by:.0f}",
                   **({BOOT_AT_LABEL: f"{boot_at:.0f}"} if boot_at else {}), **labels},
    }
