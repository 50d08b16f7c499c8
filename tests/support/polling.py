"""Bounded waits on a real process: poll a check, read a line of its output, fail with its log when time runs out."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Protocol

import pytest


class HasLog(Protocol):
    def tail(self, lines: int = 60) -> str: ...


def wait_for(what: str, check: Callable[[], bool], process: HasLog, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; log:\n{process.tail()}")


def read_line(process: subprocess.Popen, what: str, timeout_s: float = 120.0) -> str:
    """The next line the child writes on its stdout, or a test failure (the child killed) when none comes in time.

    A bare `process.stdout.readline()` waits forever on a child that hangs before it prints, or on a loaded machine
    never gets there: the read happens on a helper thread, and the test waits for it with a deadline."""
    assert process.stdout is not None, "start the child with stdout=subprocess.PIPE"
    line: list[str | bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    if not line:
        process.kill()
        process.wait(30)
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what} (the child {process.args!r} was killed)")
    got = line[0]
    text = got.decode(errors="replace") if isinstance(got, bytes) else got
    if not text:
        code = process.wait(30)
        pytest.fail(f"the child ended (exit code {code}) before {what}")
    return text


class LogFile:
    """A child's stderr (or stdout) written to a file, never to a pipe nobody drains (a full pipe blocks the
    child); `tail()` gives the last lines for a failure message, so it serves `wait_for` as the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("ab")

    def tail(self, lines: int = 60) -> str:
        self.handle.flush()
        text = self.path.read_text(errors="replace") if self.path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        self.handle.close()
