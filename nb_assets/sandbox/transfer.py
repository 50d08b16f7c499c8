"""Moving a run folder into a container and its results back out, as tar streams.

Host side of DockerSandbox's copy-in/copy-out through the engine API (no bind
mounts, so the engine may be remote). Copy-in packs the read-only part of a
run (inputs, in-box code, the job) as root-owned, read-only entries. Copy-out
unpacks what the in-box supervisor sent (inbox_supervisor.py) with the
caution owed to anything a notebook could have shaped: plain names only,
regular files only, nothing written through a link, sizes capped.
`CopyOutReader` receives that stream while the container runs.
"""

from __future__ import annotations

import json
import os
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from nb_assets.inbox.supervisor import BOOT_FILE, END, FACTS
from nb_assets.sandbox.base import RESULT_MAX_BYTES, LogTail, RunFolder

_CHUNK = 1 << 20
_FACTS_MAX_BYTES = 64 * 1024


GO = "go"  # the last entry of a job: the in-box supervisor starts the run once it is there


def pack_job(folder: RunFolder, out: IO[bytes], *, runtime: bool = True, go: bool = False) -> None:
    """input/, runtime/ (unless the container booted with it) and job/ (the parameterized
    notebook and its parameters) as one tar; with `go`, the go file last."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_tree(tar, folder.input_dir, "input")
        if runtime:
            _add_tree(tar, folder.runtime_dir, "runtime")
        tar.addfile(_read_only(tarfile.TarInfo("job"), is_dir=True))
        for path in (folder.parameterized_notebook, folder.parameters_file):
            _add_file(tar, path, f"job/{path.name}")
        if go:  # extracted after everything above is written, so its presence means the job is whole
            tar.addfile(_read_only(tarfile.TarInfo(GO), is_dir=False))


def pack_runtime(runtime_dir: Path, out: IO[bytes], *, boot: bool = False) -> None:
    """runtime/ alone: what a container boots with before its job is there; with `boot`,
    the boot file last, so the supervisor starts the runner as soon as the container starts."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_tree(tar, runtime_dir, "runtime")
        if boot:
            tar.addfile(_read_only(tarfile.TarInfo(BOOT_FILE), is_dir=False))


def _add_tree(tar: tarfile.TarFile, root: Path, arcname: str) -> None:
    tar.addfile(_read_only(tarfile.TarInfo(arcname), is_dir=True))
    for path in sorted(root.rglob("*")):
        name = f"{arcname}/{path.relative_to(root).as_posix()}"
        if path.is_symlink():
            continue  # the host wrote these folders itself; a link here is nothing the sandbox needs
        if path.is_dir():
            tar.addfile(_read_only(tarfile.TarInfo(name), is_dir=True))
        elif path.is_file():
            _add_file(tar, path, name)


def _add_file(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = _read_only(tarfile.TarInfo(name), is_dir=False)
    info.size = path.stat().st_size
    with path.open("rb") as f:
        tar.addfile(info, f)


def _read_only(info: tarfile.TarInfo, *, is_dir: bool) -> tarfile.TarInfo:
    """Owned by root and read-only: the sandbox user can read the job but never change it."""
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o555 if is_dir else 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


@dataclass
class CopyOut:
    """What came back: the supervisor's facts, and what was refused or missing."""

    facts: dict[str, Any] = field(default_factory=dict)
    complete: bool = False  # the supervisor's end marker arrived: nothing was cut off
    refused: list[str] = field(default_factory=list)
    problem: str | None = None


def unpack_copy_out(archive: Path, folder: RunFolder, *, output_max_bytes: int, record_max_bytes: int) -> CopyOut:
    """Write the outputs and the record from the supervisor's tar into `folder`; never raises for its content."""
    result = CopyOut()
    budgets = {"output": output_max_bytes, "record": record_max_bytes}
    wanted_record = {folder.executed_notebook.name: record_max_bytes, folder.result_file.name: RESULT_MAX_BYTES}
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for member in tar:
                top, _, leaf = member.name.partition("/")
                if member.name == FACTS and member.isfile() and member.size <= _FACTS_MAX_BYTES:
                    result.facts = _json_object(tar.extractfile(member))
                elif member.name == END:
                    result.complete = True
                elif top == "output" and _plain_name(leaf):
                    if not member.isfile():
                        result.refused.append(f"{leaf!r} is not a regular file")
                    elif member.size > budgets["output"]:
                        result.problem = f"the outputs went over their limit of {output_max_bytes >> 20} MB"
                        return result
                    else:
                        budgets["output"] -= member.size
                        _write(tar, member, folder.output_dir / leaf)
                elif top == "record" and leaf in wanted_record and member.isfile():
                    if member.size > min(budgets["record"], wanted_record[leaf]):
                        result.problem = f"the record went over its limit of {record_max_bytes >> 20} MB"
                        return result
                    budgets["record"] -= member.size
                    _write(tar, member, folder.record_dir / leaf)
                # anything else (other record files, odd names) stays in the container
    except (tarfile.TarError, OSError, EOFError) as exc:
        result.problem = f"the copy-out was malformed ({type(exc).__name__}: {exc})"[:300]
    return result


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..") and "\0" not in name


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """O_EXCL and O_NOFOLLOW: a name sent twice, or a link already there, is an error, never followed."""
    source = tar.extractfile(member)
    assert source is not None  # a regular member
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            out.write(chunk)


def _json_object(stream: IO[bytes] | None) -> dict[str, Any]:
    try:
        value = json.loads(stream.read(_FACTS_MAX_BYTES)) if stream else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class CopyOutReader:
    """Reads an attached container's stream in a thread: stderr into a log tail, stdout (the copy-out
    tar the in-box supervisor sends) into a spool file, up to `cap` bytes."""

    def __init__(self, stream: Any, spool: Path, cap: int) -> None:
        self.stream, self.spool, self.cap = stream, spool, cap
        self.logs = LogTail()
        self.received = 0
        self.overflow = False
        self.host_timed_out = False
        self.error: BaseException | None = None
        self.duration_s = 0.0
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _read(self) -> None:
        started = time.monotonic()
        try:
            with self.spool.open("wb") as out:
                for stdout, stderr in self.stream:
                    if stderr:
                        self.logs.write(stderr)
                    if stdout:
                        if self.received + len(stdout) > self.cap:
                            self.overflow = True
                            return
                        out.write(stdout)
                        self.received += len(stdout)
        except Exception as exc:  # the connection dropped: what arrived is judged as incomplete
            self.error = exc
        finally:
            self.duration_s = time.monotonic() - started
