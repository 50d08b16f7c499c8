"""A real `dagster-daemon run` on a project folder, as the e2e tests start, stop and read it.

One way to start it for every test that needs the daemon (tests/e2e/test_daemon.py,
tests/e2e/test_freshness_daemon.py): in its own process group, so stopping it ends the
run workers it launched too, with its output in a log file that `tail()` gives to
`support.polling.wait_for` when a wait times out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


class DagsterDaemon:
    """One `dagster-daemon run -f <definitions>` in `project`, its output appended to `log`."""

    def __init__(self, project: Path, env: dict[str, str], *, definitions: str = "definitions.py", log: Path | None = None) -> None:
        self.project, self.env, self.definitions = project, env, definitions
        self.log = log if log is not None else project / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start it; returns the time.time() just before, for "ticks since the start"."""
        started = time.time()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-f", self.definitions],
                cwd=self.project, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return started

    def stop(self) -> None:
        """SIGTERM to its process group (it and the runs it launched), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
