"""Hostile cells against the servers declared sources live on: the host fetches the source,
the notebook itself must never reach the HTTP server or the S3 server (the sandbox has no network).

`{http_url}` and `{s3_url}` are filled in by the test with the real servers' loopback URLs.
"""

from __future__ import annotations

from support.adversarial_cases import Case

SOURCE_SERVERS = [
    Case("source-http-server", "import urllib.request\nurllib.request.urlopen({http_url!r}, timeout=5).read()",
         "failed", r"URLError|ConnectionRefusedError|Network is unreachable", local=True),
    Case("source-s3-server", "import urllib.request\nurllib.request.urlopen({s3_url!r} + '/landing?list-type=2', timeout=5).read()",
         "failed", r"URLError|ConnectionRefusedError|Network is unreachable", local=True),
    Case("source-s3-socket", "import socket\nfrom urllib.parse import urlsplit\nu = urlsplit({s3_url!r})\n"
         "socket.create_connection((u.hostname, u.port), timeout=5)",
         "failed", r"ConnectionRefusedError|Network is unreachable|OSError", local=True),
]
