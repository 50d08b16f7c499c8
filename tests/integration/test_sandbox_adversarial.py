"""The adversarial suite: hostile notebooks against DockerSandbox and LocalSandbox.

Every case must end in a clear failure naming the notebook, or in a harmless
success; where the run failed the warehouse file is byte-for-byte unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from nb_assets.sandbox.container import DockerSandbox
from nb_assets.runs.pipeline import NotebookRun, run_pipeline
from nb_assets.runs.record import keep_record
from nb_assets.runs.record_safety_html import unsafe_parts
from nb_assets.analysis.parser import parse_notebook
from nb_assets.sandbox.base import Sandbox, SandboxLimits
from nb_assets.sandbox.local import LocalSandbox, network_namespaces_available
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.adversarial_cases import ALL, Case
from support.hostile_record import inert_problems
from support.notebook_factory import RUNTIME, code, params, write_notebook

LIMITS = SandboxLimits(timeout_s=90, memory_mb=512, cpus=1.0, pids=64, tmp_mb=32)
SHORT = {"infinite-loop": 10.0}


class _Recorder(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.hits.append(self.client_address)  # type: ignore[attr-defined]


def _below_ephemeral(server_class: type) -> Any:
    """A server on a loopback port below the ephemeral range (32768 up). The box's own loopback has
    listeners on ephemeral ports (the kernel's ZMQ sockets): a host port among them once made the
    notebook's connect succeed, to the kernel in its own box, not to this host (no hit, network none)."""
    import random

    for port in random.sample(range(20000, 32000), 200):
        try:
            return server_class(("127.0.0.1", port), _Recorder)
        except OSError:  # taken: try another
            continue
    raise RuntimeError("no free loopback port in 20000-32000")


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict]:
    """A TCP and a UDP server on the host's loopback that must never hear from a notebook."""
    tcp = _below_ephemeral(socketserver.ThreadingTCPServer)
    udp = _below_ephemeral(socketserver.ThreadingUDPServer)
    for server in (tcp, udp):
        server.hits = []  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"tcp": tcp, "udp": udp}
    for server in (tcp, udp):
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def docker_sandbox(docker_image: str) -> DockerSandbox:
    return DockerSandbox(image=docker_image)


@pytest.fixture(scope="module")
def local_sandbox() -> LocalSandbox:
    if not network_namespaces_available():
        pytest.skip("network namespaces (unshare --net) are unavailable here")
    return LocalSandbox()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _attack(case: Case, sandbox: Sandbox, tmp_path: Path, listeners: dict) -> tuple[NotebookRun, Path, bool]:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT range AS id FROM range(5)")
    secret = tmp_path / "host_secret.txt"
    secret.write_text("host-only secret")
    decoy = tmp_path / "host_decoy.txt"  # stands in for a host file such as /etc/passwd
    decoy.write_text("decoy")
    decoy.chmod(0o600)
    hostile = case.code.format(
        port=listeners["tcp"].server_address[1],
        udp_port=listeners["udp"].server_address[1],
        secret_path=str(secret),
        decoy_path=str(decoy),
        warehouse=str(warehouse),
    )
    path = write_notebook(
        tmp_path / f"{case.id}.ipynb",
        code(RUNTIME),
        params("n = 1"),
        code("%%sql orders\nSELECT * FROM raw.orders"),
        code("result = orders.head(1)"),
        code(hostile),
        code("output('mart.result', result)"),
    )
    # The sandbox must hold even when static analysis is evaded.
    spec = dataclasses.replace(parse_notebook(path), findings=())
    before = _digest(warehouse)
    limits = dataclasses.replace(LIMITS, timeout_s=SHORT.get(case.id, LIMITS.timeout_s))
    run = run_pipeline(
        spec, warehouse=DuckDBWarehouse(warehouse), sandbox=sandbox, run_dir=tmp_path / "run", limits=limits
    )
    keep_record(run)  # the host's own writes into the record must not be redirected either
    assert decoy.read_text() == "decoy" and decoy.stat().st_mode & 0o777 == 0o600, "a host file was touched"
    return run, warehouse, _digest(warehouse) == before


def _judge(case: Case, run: NotebookRun, warehouse: Path, unchanged: bool, listeners: dict, sandbox: str) -> None:
    assert listeners["tcp"].hits == [] and listeners["udp"].hits == [], "a notebook reached the host's loopback"
    assert not (run.folder.root / "escaped.parquet").exists(), "a file was written outside the outputs folder"
    expect, expected_message = case.expectation(sandbox)
    if expect == "contained":
        expect = "failed" if run.status == "failed" else "harmless"
    if expect == "failed":
        assert run.status == "failed", f"{case.id} succeeded"
        message = str(run.error)
        assert f"{case.id}.ipynb" in message, message
        assert re.search(expected_message, message), message
        assert unchanged, "the warehouse changed after a failed run"
        assert run.executed_notebook.exists(), "the executed notebook was not kept"
    else:
        assert run.status == "success", run.error
        with duckdb.connect(str(warehouse), read_only=True) as con:
            loaded = con.execute("SELECT * FROM mart.result").fetchall()
        assert "host-only secret" not in repr(loaded)
        if case.id != "host-init-environ":
            assert loaded == [(0,)], "the loaded output is not what the notebook legitimately computed"
        if case.id == "host-init-environ":
            assert "NB_ASSETS_MODE=run" in loaded[0][0]  # the container's own init, not the host's
    if case.id.startswith("record-"):
        _judge_record(run.folder.record_dir)


def _judge_record(record: Path) -> None:
    """The kept record loads nothing and runs nothing when opened (the browser test opens it for real)."""
    assert inert_problems(record / "executed.ipynb") == []
    assert unsafe_parts((record / "executed.html").read_text(encoding="utf-8")) == []
    facts = json.loads((record / "run.json").read_text())
    assert "html_error" not in facts, facts["html_error"]
    safety = facts.get("record_safety", {})
    assert safety.get("sanitized") and safety["neutralized"]["script"] >= 2, f"run.json does not say what was neutralized: {safety}"


@pytest.mark.docker
@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_docker_contains(case: Case, docker_sandbox: DockerSandbox, tmp_path: Path, listeners: dict) -> None:
    run, warehouse, unchanged = _attack(case, docker_sandbox, tmp_path, listeners)
    _judge(case, run, warehouse, unchanged, listeners, "docker")
    assert run.sandbox["network"] == "none"
    label = f"nb_assets.run_folder={run.folder.root}"
    assert docker_sandbox.client.containers.list(all=True, filters={"label": label}) == []


LOCAL = [c for c in ALL if c.local]


@pytest.mark.parametrize("case", LOCAL, ids=[c.id for c in LOCAL])
def test_local_sandbox_contains(case: Case, local_sandbox: LocalSandbox, tmp_path: Path, listeners: dict) -> None:
    run, warehouse, unchanged = _attack(case, local_sandbox, tmp_path, listeners)
    _judge(case, run, warehouse, unchanged, listeners, "local")
    assert run.sandbox["network"].startswith("none")


def test_the_host_loopback_listeners_really_listen(listeners: dict) -> None:
    """Guards the network cases against passing because nothing was listening."""
    import time

    with socket.create_connection(listeners["tcp"].server_address, timeout=5):
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"ping", listeners["udp"].server_address)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (listeners["tcp"].hits and listeners["udp"].hits):
        time.sleep(0.05)
    assert listeners["tcp"].hits and listeners["udp"].hits
    listeners["tcp"].hits.clear()
    listeners["udp"].hits.clear()
