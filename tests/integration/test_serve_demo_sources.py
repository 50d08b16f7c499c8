"""`make dev`'s wrapper (scripts/serve_demo_sources.py) ends quietly on Ctrl-C: the command it
runs gets the same Ctrl-C and stops as it stops; no traceback from the wrapper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from support.paths import REPO

# Stands in for `dg dev`: says it is up, then exits cleanly on SIGINT.
CHILD = ("import signal, sys, time\n"
         "signal.signal(signal.SIGINT, lambda *_: (print('child: stopping', flush=True), sys.exit(0)))\n"
         "print('child: up', flush=True)\n"
         "time.sleep(120)\n")


def test_ctrl_c_ends_the_wrapper_and_its_command_without_a_traceback() -> None:
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "serve_demo_sources.py"), "--port", "0", "--",
                             sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "child: up"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends: the whole foreground group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "child: stopping" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "demo partner API at http://127.0.0.1:" in err
    assert proc.returncode == 0, (proc.returncode, err)
