"""What a Docker sandbox run hands back: the copy-out unpacked into the run folder, read as a SandboxResult.

Only what the supervisor sent inside the byte cap is believed; a copy-out that
overflowed, broke off or holds anything but the expected files is a lost
record, said so in the result.
"""

from __future__ import annotations

from typing import Any

from nb_assets.inbox.supervisor import full
from nb_assets.sandbox.base import RECORD_MB, RunFolder, SandboxLimits, SandboxResult
from nb_assets.sandbox.transfer import CopyOutReader, unpack_copy_out

__all__ = ["sandbox_result"]


def sandbox_result(
    folder: RunFolder, limits: SandboxLimits, collected: CopyOutReader, facts: dict[str, Any],
    timeline: dict[str, float], *, image_id: str, container_id: str, warm: bool,
) -> SandboxResult:
    """Unpack the collected copy-out into `folder`; `facts` (the sandbox's description) gain the run's
    image, exit code, container and spare; the box's marks go into `timeline` as box.*."""
    copy = None
    if collected.spool.exists():
        try:
            if not collected.overflow:
                copy = unpack_copy_out(
                    collected.spool, folder, output_max_bytes=limits.output_mb << 20, record_max_bytes=RECORD_MB << 20
                )
        finally:
            collected.spool.unlink()
    box = copy.facts if copy else {}
    marks = box.get("marks")
    if isinstance(marks, dict):
        timeline.update({f"box.{k}": v for k, v in marks.items() if isinstance(v, (int, float))})
    lost = None
    if collected.overflow:
        lost = f"the sandbox sent back more than {collected.cap >> 20} MB; refused"
    elif copy is not None and copy.problem:
        lost = copy.problem
    elif copy is None or not copy.complete:
        why = f" (the connection broke: {collected.error})" if collected.error else ""
        lost = f"the sandbox ended before handing back its outputs and record{why}"
    exit_code = box.get("runner_exit_code") if isinstance(box.get("runner_exit_code"), int) else None
    record_full = full_tmpfs(box.get("record"))
    if record_full:  # only the runner writes there, and it stays far below the limit: the notebook filled it
        for path in (folder.executed_notebook, folder.result_file):
            path.unlink(missing_ok=True)
    facts.update(image_id=image_id, exit_code=exit_code, container=container_id[:12], warm_spare=warm)
    return SandboxResult(
        exit_code=exit_code,
        duration_s=collected.duration_s,
        logs=collected.logs.text(),
        timed_out=box.get("timed_out") is True or collected.host_timed_out,
        oom_killed=isinstance(box.get("oom_kills"), int) and box["oom_kills"] > 0,
        facts=facts,
        output_full=full_tmpfs(box.get("output")),
        record_full=record_full,
        lost_record=lost,
        refused=tuple(copy.refused) if copy else (),
    )


def full_tmpfs(usage: Any) -> bool:
    """A tmpfs with (almost) nothing left: the notebook ran into the folder's limit."""
    if not isinstance(usage, dict) or not all(isinstance(usage.get(k), int) for k in ("size", "free")):
        return False
    return full(usage)
