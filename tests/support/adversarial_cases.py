"""The adversarial notebooks: each tries one escape and must fail clearly or do no harm.

A case is the code of one hostile cell, placed in a notebook that otherwise
follows the contract (runtime, one SQL input, one declared output after the
hostile cell). Static analysis would refuse most of them; the suite clears
those findings on purpose, because the sandbox must hold when static checks
are evaded (obfuscated imports, a rule allowed by mistake).

`{port}`, `{udp_port}`, `{secret_path}`, `{decoy_path}` and `{warehouse}` are filled in by
the test; `expect` is "failed" with a substring the error must contain, or
"harmless" when the notebook may succeed but must not have achieved anything.
A case whose outcome differs by sandbox says so: `expect`/`message` hold for Docker (what README's
security table promises), `local_expect`/`local_message` for LocalSandbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from support.hostile_record import HOSTILE_OUTPUTS


DENIED = r"Permission denied|Read-only file system"  # file mode or read-only mount: both hold


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    expect: str  # "failed" | "harmless" | "contained" (either, judged as such)
    message: str = ""  # regular expression the error must match, for "failed"
    local: bool = False  # LocalSandbox can honestly contain it too
    local_expect: str = ""  # LocalSandbox's own expectation, when it differs from Docker's
    local_message: str = ""

    def expectation(self, sandbox: str) -> tuple[str, str]:
        """(expect, message) in this sandbox ("docker" or "local")."""
        if sandbox == "local" and self.local_expect:
            return self.local_expect, self.local_message
        return self.expect, self.message


NETWORK = [
    Case("tcp-host-loopback", "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)",
         "failed", "ConnectionRefusedError", local=True),
    Case("http-host-loopback", "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=5)",
         "failed", "URLError.*Connection refused", local=True),
    Case("udp-host-loopback",
         "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "for _ in range(20):\n    s.sendto(b'leak', ('127.0.0.1', {udp_port}))",
         "harmless", local=True),  # UDP sends 'succeed' into the void; the host server must see nothing
    # A reserved name never resolves; what matters is why. With a resolver in reach the answer is
    # "Name or service not known" (NXDOMAIN); from a sandbox no resolver can be reached at all.
    Case("dns-lookup", "import socket\nsocket.getaddrinfo('example.invalid', 443)",
         "failed", "gaierror.*Temporary failure in name resolution", local=True),
]

FILES = [
    Case("read-warehouse", "open({warehouse!r}, 'rb').read()", "failed", "FileNotFoundError"),
    Case("read-host-secret", "open({secret_path!r}).read()", "failed", "FileNotFoundError"),
    Case("write-inputs", "import os\nopen(os.environ['NB_ASSETS_INPUT_DIR'] + '/orders.parquet', 'wb').write(b'x')",
         "failed", DENIED),
    Case("write-root", "open('/etc/evil', 'w').write('x')", "failed", DENIED),
    Case("write-runtime", "import os\nopen(os.environ['PYTHONPATH'] + '/nb_assets/notebook.py', 'a').write('x')",
         "failed", DENIED),
    # Targets are decoy files the test owns: a containment bug must never damage the host.
    Case("symlink-escape",
         "import os\nos.symlink({decoy_path!r}, os.environ['NB_ASSETS_OUTPUT_DIR'] + '/mart.result.parquet')",
         "failed", "not a regular file", local=True),
    Case("symlink-in-record",
         "import os\nrecord = os.path.dirname(os.environ['NB_ASSETS_OUTPUT_DIR']) + '/record'\n"
         "for name in ('executed.html', 'run.json', 'planted'):\n"
         "    try:\n        os.symlink({decoy_path!r}, record + '/' + name)\n    except OSError:\n        pass",
         "harmless", local=True),
]

OUTPUTS = [
    Case("undeclared-output",
         "import os, pandas as pd\npd.DataFrame({{'a': [1]}}).to_parquet(os.environ['NB_ASSETS_OUTPUT_DIR'] + '/mart.sneaky.parquet')",
         "failed", "not a declared output", local=True),
    Case("path-traversal-name", "import pandas as pd\noutput('../x', pd.DataFrame({{'a': [1]}}))",
         "failed", "must be a lowercase 'schema.table' literal", local=True),
    Case("path-traversal-file",
         "import os\nopen(os.environ['NB_ASSETS_OUTPUT_DIR'] + '/../escaped.parquet', 'wb').write(b'x')",
         "failed", DENIED),
    Case("corrupt-parquet",
         "import os\nopen(os.environ['NB_ASSETS_OUTPUT_DIR'] + '/mart.result.parquet', 'wb').write(b'PAR1garbage')\n"
         "def output(*args):  # keep the declared-output cell from overwriting the garbage\n    pass",
         "failed", "not a readable Parquet file", local=True),
    Case("file-flood",
         "import os\nd = os.environ['NB_ASSETS_OUTPUT_DIR']\nfor i in range(3000):\n    open(f'{{d}}/junk{{i}}', 'w').close()",
         "failed", "more than 1000 files", local=True),
]

RESOURCES = [
    Case("fork-bomb",
         "import os, time\nkids = []\nfor _ in range(10000):\n    pid = os.fork()\n    if pid == 0:\n"
         "        time.sleep(60)\n        os._exit(0)\n    kids.append(pid)",
         "failed", "BlockingIOError"),
    Case("memory-bomb", "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))", "failed", "memory"),
    Case("infinite-loop", "while True:\n    pass", "failed", "timed out"),
    Case("fill-tmp", "with open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(b'x' * (1 << 20))",
         "failed", "No space left on device"),
]

PRIVILEGE = [
    Case("setuid-root", "import os\nos.setuid(0)", "failed", "PermissionError"),
    Case("mount", "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) != 0:\n"
         "    raise PermissionError(os.strerror(ctypes.get_errno()))",
         "failed", "PermissionError"),
    Case("host-init-environ",
         "import pandas as pd\nenv = open('/proc/1/environ', 'rb').read().decode(errors='replace')\n"
         "result = pd.DataFrame({{'env': [env]}})",
         "harmless"),  # succeeds, but what it sees is the container's init, not the host's
]

# The record folder is writable from inside: a notebook can forge the runner's
# verdict or the executed notebook, then kill the runner so nothing overwrites
# them. In Docker the runner dies and the run must fail clearly, as README's
# security table promises: a success beside a cell still marked running (the
# runner writes its verdict only after every cell ended) is refused, and so is
# a missing or malformed verdict. In
# LocalSandbox the runner is PID 1 of its namespace and cannot be killed from
# inside: the run goes on, the runner's own verdict replaces the forged one, and
# what loads is what the notebook legitimately computed ("harmless").
RECORD = "import os, signal\nrecord = os.path.dirname(os.environ['NB_ASSETS_OUTPUT_DIR']) + '/record'\n"
SUCCESS = "open(record + '/result.json', 'w').write('{{\"status\": \"success\", \"error\": null}}')\n"
KILL_RUNNER = "os.kill(os.getppid(), signal.SIGKILL)"
FORGED = r"the verdict says success, but cell 5 was still running when the runner stopped"
FORGERY = [
    Case("forged-verdict-malformed",
         RECORD + "open(record + '/result.json', 'w').write('{{\"status\": \"failed\"}}')\n" + KILL_RUNNER,
         "failed", "without a verdict", local=True, local_expect="harmless"),
    Case("forged-verdict-success", RECORD + SUCCESS + KILL_RUNNER,
         "failed", FORGED, local=True, local_expect="harmless"),
    # The output written first, as the next cell would: only the forged verdict stands between it and the load.
    Case("forged-verdict-success-with-output", RECORD + "output('mart.result', result)\n" + SUCCESS + KILL_RUNNER,
         "failed", FORGED, local=True, local_expect="harmless"),
    Case("garbage-executed-notebook",
         RECORD + "open(record + '/executed.ipynb', 'w').write('[1, 2]')\n" + KILL_RUNNER,
         "failed", "without a verdict", local=True, local_expect="harmless"),
]

CRASHES = [
    Case("os-exit", "import os\nos._exit(1)", "failed", "kernel died", local=True),
    Case("segfault", "import ctypes\nctypes.string_at(0)", "failed", "kernel died", local=True),
    Case("sys-exit-middle", "import sys\nsys.exit(0)", "failed", "not written", local=True),
]

def _record_bait() -> str:
    """tests/support/hostile_record.py's outputs, aimed at the TCP listener and leaking the order ids: in this
    suite's format (its literal braces doubled, `{port}` left to fill in)."""
    code = HOSTILE_OUTPUTS.format(bait="http://127.0.0.1:PORT", port="PORT", data="','.join(map(str, orders['id']))")
    return code.replace("{", "{{").replace("}", "}}").replace("PORT", "{port}")


# The sandbox holds, so these succeed; the danger is the record, opened later in a browser. The judge
# reads the kept record as Dagster's /notebook page renders it: nothing may load a URL or run script.
RECORDS = [
    Case("record-phones-home", _record_bait(), "harmless", local=True),
]

ALL = NETWORK + FILES + OUTPUTS + RESOURCES + PRIVILEGE + FORGERY + CRASHES + RECORDS
