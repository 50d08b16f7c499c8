"""HTTP(S) GET of a declared URL, on the host, bounded in size and time.

- The host name is resolved once and the connection goes to that address, so
  the address checked is the address read (no second lookup to rebind).
- Loopback, link-local, private and reserved addresses are refused unless the
  source says `allow_private=True`.
- Redirects are followed only to the same host (at most 5), and never from https
  down to http; anything else is an error naming both locations.
- HTTPS always verifies the certificate and the host name against the host's
  trust store (OpenSSL's defaults, so `SSL_CERT_FILE` / `SSL_CERT_DIR` name a
  private CA); a certificate it does not trust fails the fetch, never falls back.
- Header values may come from environment variables (secrets); they are sent
  and never recorded.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from nb_assets.errors import SourceFetchError

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class HttpBody:
    data: bytes
    url: str  # after same-host redirects
    etag: str | None
    last_modified: str | None


def header_values(headers: Mapping[str, Any] | None, where: str) -> dict[str, str]:
    """Literal values, and `{"env": VAR}` read from the environment now (a missing one fails the fetch)."""
    values: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if isinstance(value, Mapping):
            secret = os.environ.get(str(value["env"]))
            if secret is None:
                raise SourceFetchError(f"{where}: header {name} comes from ${value['env']}, which is not set on this host")
            values[str(name)] = secret
        else:
            values[str(name)] = str(value)
    return values


def _address(host: str, port: int, allow_private: bool, where: str) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SourceFetchError(f"{where}: cannot resolve {host}: {exc.strerror or exc}") from exc
    address = str(infos[0][4][0])
    ip = ipaddress.ip_address(address)
    private = ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified
    if private and not allow_private:
        raise SourceFetchError(
            f"{where}: {host} resolves to {address}, a loopback, link-local or private address; refused "
            "(a source that really lives there says allow_private=True)"
        )
    return address


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to an address resolved (and checked) beforehand, verifying the certificate for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def http_get(
    url: str, *, name: str, headers: Mapping[str, Any] | None = None, allow_private: bool = False,
    timeout_s: float = 60.0, max_bytes: int = 512 << 20,
) -> HttpBody:
    """The body of `url`; every failure is a SourceFetchError naming the source and the URL."""
    where = f"source {name!r} at {url}"
    sent = header_values(headers, where)
    deadline = time.monotonic() + timeout_s
    first_host = urlsplit(url).hostname
    secure = False  # once a hop was https, every later hop must be
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceFetchError(f"{where}: {current} is not an http(s) URL")
        if parts.hostname != first_host:
            raise SourceFetchError(f"{where}: redirected to another host ({current}); only same-host redirects are followed")
        if secure and parts.scheme != "https":  # the bytes would travel unencrypted and unverified
            raise SourceFetchError(f"{where}: redirected from https to http ({current}); a downgrade is never followed")
        secure = parts.scheme == "https"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = _address(parts.hostname, port, allow_private, where)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SourceFetchError(f"{where}: timed out after {timeout_s:g} s")
        kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        conn = kind(parts.hostname, port, address, timeout=remaining)
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("GET", path, headers={"Accept-Encoding": "identity", "User-Agent": "nb-assets", **sent})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise SourceFetchError(f"{where}: HTTP {response.status} without a Location")
                current = urljoin(current, location)
                continue
            if response.status != 200:
                raise SourceFetchError(f"{where}: HTTP {response.status} {response.reason}")
            declared = response.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise SourceFetchError(f"{where}: the body is {int(declared)} bytes, over the limit of {max_bytes}")
            data = _read_bounded(response, max_bytes, deadline, where, timeout_s)
            return HttpBody(data, current, response.getheader("ETag"), response.getheader("Last-Modified"))
        except (TimeoutError, socket.timeout) as exc:
            raise SourceFetchError(f"{where}: timed out after {timeout_s:g} s") from exc
        except ssl.SSLCertVerificationError as exc:
            raise SourceFetchError(
                f"{where}: this host does not trust the server's certificate ({exc.verify_message}); "
                "a private CA is trusted by naming its PEM file in SSL_CERT_FILE"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise SourceFetchError(f"{where}: {type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
    raise SourceFetchError(f"{where}: more than {MAX_REDIRECTS} redirects")


def _read_bounded(response: http.client.HTTPResponse, max_bytes: int, deadline: float, where: str, timeout_s: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:  # a server trickling bytes never trips the socket's own timeout
            raise SourceFetchError(f"{where}: timed out after {timeout_s:g} s")
        chunk = response.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise SourceFetchError(f"{where}: the body is over the limit of {max_bytes} bytes; stopped reading")
        chunks.append(chunk)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
