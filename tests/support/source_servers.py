"""Real servers on loopback that declared sources are fetched from: an HTTP data server
(good JSON, a slow endpoint, a 404, a 50 MB body, redirects) and moto's S3-compatible server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.loopback_servers import free_port

RATES = [{"currency": "EUR", "rate": 1.0, "day": "2026-11-01"}, {"currency": "USD", "rate": 1.08, "day": "2026-11-01"},
         {"currency": "GBP", "rate": 0.86, "day": "2026-11-01"}]
BIG_BYTES = 50 << 20


@dataclass
class DataServer:
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _handler(server: DataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, **headers: str) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            server.requests.append({"path": self.path, "headers": dict(self.headers)})
            path, _, query = self.path.partition("?")
            if path == "/v1/rates":
                body = json.dumps({"query": query, "rates": RATES}).encode()
                self._send(200, body, ETag='"rates-v1"', Content_Type="application/json")
            elif path == "/v1/private":
                if self.headers.get("Authorization") != "Bearer s3cret-token":
                    self._send(401, b"no")
                else:
                    self._send(200, json.dumps(RATES).encode(), Last_Modified="Mon, 30 Nov 2026 06:00:00 GMT")
            elif path == "/v1/bad":
                self._send(200, b'{"rates": [1, 2', Content_Type="application/json")
            elif path == "/v1/slow":
                time.sleep(30)
                self._send(200, b"[]")
            elif path == "/v1/big":
                self.send_response(200)
                self.end_headers()  # no Content-Length: the reader has to count
                chunk = b"x" * (1 << 20)
                try:
                    for _ in range(BIG_BYTES >> 20):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
            elif path == "/v1/moved":
                self._send(302, b"", Location="/v1/rates")
            elif path == "/v1/elsewhere":  # the same server under another host name: another host all the same
                self._send(302, b"", Location=f"http://localhost:{server.port}/v1/rates")
            else:
                self._send(404, b"not here")

    return Handler


@contextmanager
def data_server() -> Iterator[DataServer]:
    sink = DataServer(free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", sink.port), _handler(sink))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's standalone S3-compatible server on a free loopback port; its endpoint URL."""
    moto = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if moto is None:
        import pytest

        pytest.skip("moto[server] is not installed (pip install -e '.[test]')")
    port = free_port()
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def s3_env(endpoint: str) -> dict[str, str]:
    """What a host sets for s3fs to reach the server: credentials and endpoint from the environment."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint}
