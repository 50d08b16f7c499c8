"""Real servers on loopback that declared sources are fetched from: an HTTP data server
(good JSON, a slow endpoint, a 404, a 50 MB body, redirects), the same over HTTPS with a
throwaway CA, and moto's S3-compatible server."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    with _serving(ThreadingHTTPServer(("127.0.0.1", sink.port), _handler(sink))):
        yield sink


@contextmanager
def _serving(httpd: ThreadingHTTPServer) -> Iterator[None]:
    """`httpd` answering on its own thread until the block ends."""
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield
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


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate it signed (PEM files)."""

    ca: Path  # what a host that trusts the server names in SSL_CERT_FILE
    cert: Path
    key: Path


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _ca_with_cryptography(folder: Path, names: Sequence[str]) -> TlsFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nb-assets throwaway test CA")])

    def builder(subject: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    ca = (builder(ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    alt_names = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]
    cert = (builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]), key.public_key())
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


def _ca_with_openssl(folder: Path, names: Sequence[str]) -> TlsFiles:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", files.ca.name, "-days", "1",
            "-subj", "/CN=nb-assets throwaway test CA",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", *curve, "-keyout", files.key.name, "-out", "server.csr", "-subj", f"/CN={names[0]}")
    alt_names = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    (folder / "server.ext").write_text(f"subjectAltName={alt_names}\nbasicConstraints=critical,CA:FALSE\n"
                                       "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", files.ca.name, "-CAkey", "ca.key", "-CAcreateserial",
            "-out", files.cert.name, "-days", "1", "-extfile", "server.ext")
    return files


CA_MAKERS: dict[str, Callable[[Path, Sequence[str]], TlsFiles]] = {
    "cryptography": _ca_with_cryptography, "openssl": _ca_with_openssl,
}


def throwaway_ca(folder: Path, names: Sequence[str] = ("127.0.0.1", "localhost"), *, maker: str | None = None) -> TlsFiles:
    """A CA made for one test and a server certificate it signs for `names` (IP addresses and DNS
    names), with the `cryptography` package if installed, else the openssl command; `maker` picks one."""
    if maker is None:
        try:
            import cryptography  # noqa: F401
            maker = "cryptography"
        except ImportError:
            maker = "openssl"
    if maker == "openssl" and shutil.which("openssl") is None:
        import pytest

        pytest.skip("neither the cryptography package nor the openssl command is here to make a test certificate")
    if maker == "cryptography":
        import pytest

        pytest.importorskip("cryptography")
    folder.mkdir(parents=True, exist_ok=True)
    return CA_MAKERS[maker](folder, names)


@dataclass
class HttpsDataServer(DataServer):
    """The data server's endpoints over TLS, plus `/v1/downgrade`: a redirect to the same host over
    plain http (`plain_port`, the port of a `data_server()`)."""

    plain_port: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"


@contextmanager
def https_data_server(tls: TlsFiles, plain_port: int = 0) -> Iterator[HttpsDataServer]:
    """The data server on loopback over HTTPS, presenting `tls.cert`."""
    sink = HttpsDataServer(free_port(), plain_port=plain_port)

    class Handler(_handler(sink)):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/v1/downgrade":
                sink.requests.append({"path": self.path, "headers": dict(self.headers)})
                self._send(302, b"", Location=f"http://127.0.0.1:{sink.plain_port}/v1/rates")
            else:
                super().do_GET()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls.cert), str(tls.key))
    httpd = ThreadingHTTPServer(("127.0.0.1", sink.port), Handler)
    # The handshake runs in accept(): a client that refuses the certificate is dropped there, unserved.
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    with _serving(httpd):
        yield sink
