"""Bounded waits on a real process: poll a check, fail with the process's log when time runs out."""

from __future__ import annotations

import time
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
