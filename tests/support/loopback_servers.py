"""Real servers on loopback that record what they receive: SMTP (aiosmtpd) and HTTP."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mail:
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"]).strip()  # a folded header unfolds with its leading space

    @property
    def body(self) -> str:
        return self.message.get_content().replace("\r\n", "\n")


@dataclass
class SmtpSink:
    port: int
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def to(self, recipient: str) -> list[Mail]:
        return [m for m in self.mails if recipient in m.recipients]


@contextmanager
def smtp_server(
    *, tls: ssl.SSLContext | None = None, implicit_tls: bool = False, users: dict[str, str] | None = None,
    port: int | None = None,
) -> Iterator[SmtpSink]:
    """aiosmtpd on 127.0.0.1: plain, STARTTLS (`tls`) or TLS from the first byte (`implicit_tls`)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    sink = SmtpSink(port or free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            sink.mails.append(Mail(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        sink.logins.append((login, password))
        return AuthResult(success=(users or {}).get(login) == password)

    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": sink.port}
    if users is not None:
        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls is not None)
    if tls is not None and implicit_tls:
        kwargs["ssl_context"] = tls
    elif tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    controller = Controller(Handler(), **kwargs)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class WebhookSink:
    """Answers each POST with the next status in `statuses` (then 200), recording every body."""

    server: ThreadingHTTPServer
    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    hang: bool = False  # a stuck receiver: requests hang, then are dropped unanswered
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextmanager
def webhook_server(statuses: Sequence[int] = (), port: int = 0, hang: bool = False) -> Iterator[WebhookSink]:
    sink: WebhookSink

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            sink.attempts += 1
            sink.arrived.set()
            if sink.hang:
                threading.Event().wait(60)
                return
            status = sink.statuses.pop(0) if sink.statuses else 200
            if status == 200:
                sink.received.append(json.loads(body))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"unavailable")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    sink = WebhookSink(server, list(statuses), hang=hang)
    with _serving(server):
        yield sink


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made with the openssl tool (skips if there is none)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed; it makes the test certificate for TLS")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


@dataclass
class BaitSink:
    """Every request that reaches the bait, whatever its method: (method, path) in arrival order."""

    server: ThreadingHTTPServer
    requests: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


@contextmanager
def bait_server() -> Iterator[BaitSink]:
    """An HTTP server on 127.0.0.1 that a record must never reach: it counts every request
    (images, scripts, stylesheets, frames, fetches, CORS preflights) and answers each with 200."""
    sink: BaitSink

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            sink.requests.append((self.command, self.path))
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_HEAD = do_OPTIONS = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink = BaitSink(server)
    with _serving(server):
        yield sink


@contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[None]:
    """Serve on a daemon thread for the block's length, then stop and close."""
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
