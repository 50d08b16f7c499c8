"""Serve the demo's partner API on loopback while a command runs (`make dev` wraps `dg dev` in it).

    python scripts/serve_demo_sources.py [--port 8765] -- dg dev

The demo declares `partner_rates` as an HTTP source when NB_ASSETS_DEMO_RATES_URL names
one; this sets it to `http://127.0.0.1:<port>/v1/rates` (GET, JSON, with an ETag) for the
command, and stops serving when the command ends. Without it, definitions.py reads the
same JSON from sources/partner_rates.json (the file-backed stand-in).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RATES = Path(__file__).resolve().parents[1] / "sources" / "partner_rates.json"


class _Rates(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if self.path.partition("?")[0] != "/v1/rates":
            self.send_error(404)
            return
        body = RATES.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(port: int = 0) -> Iterator[str]:
    """The rates API on 127.0.0.1 (`port` 0: any free one); its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Rates)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/rates"
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run while serving (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the command to run, after --")
    with serving(args.port) as url:
        print(f"demo partner API at {url}", file=sys.stderr)
        return _run_until_done(command, {**os.environ, "NB_ASSETS_DEMO_RATES_URL": url})


def _run_until_done(command: list[str], env: dict[str, str]) -> int:
    """Run `command` to its end. Ctrl-C reaches it too (one process group), so it is left to stop
    as it stops (dg dev shuts its daemons down); a second Ctrl-C ends it. No traceback."""
    proc = subprocess.Popen(command, env=env)
    interrupted = False
    while True:
        try:
            code = proc.wait()
            return 130 if interrupted and code != 0 else code
        except KeyboardInterrupt:
            if interrupted:
                proc.terminate()
            interrupted = True


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the command started, or while serving shut down
        sys.exit(130)
