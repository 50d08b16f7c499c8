"""The adversarial suite's source targets: a notebook reading a declared source gets the host's
fetched copy, and cannot reach the HTTP server or the S3 server itself, in Docker or LocalSandbox."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nb_assets import Source
from nb_assets.analysis.parser import parse_notebook
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.sandbox.base import Sandbox, SandboxLimits
from support.adversarial_cases import Case
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.source_adversarial_cases import SOURCE_SERVERS
from support.source_servers import DataServer, data_server, s3_env, s3_server

LIMITS = SandboxLimits(timeout_s=90, memory_mb=512, cpus=1.0, pids=64, tmp_mb=32)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[DataServer, str]]:
    with data_server() as http, s3_server() as s3:
        yield http, s3


def _attack(case: Case, sandbox: Sandbox, servers: tuple[DataServer, str], tmp_path: Path, monkeypatch):
    http, s3 = servers
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    if not fs.exists("landing"):
        fs.mkdir("landing")
    with fs.open("landing/ids/part-0.parquet", "wb") as f:
        pq.write_table(pa.table({"id": [7]}), f)
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT range AS id FROM range(5)")
    hostile = case.code.format(http_url=http.url("/v1/rates"), s3_url=s3)
    path = write_notebook(
        tmp_path / f"{case.id}.ipynb", code(RUNTIME), params("n = 1"),
        code("%%source rates partner_rates"), code("%%source ids landed_ids"),
        code("result = ids.head(1)"), code(hostile), code("output('mart.result', result)"),
    )
    sources = [Source("partner_rates", url=http.url("/v1/rates"), allow_private=True),
               Source("landed_ids", path="s3://landing/ids/*.parquet")]
    spec = dataclasses.replace(parse_notebook(path), findings=())  # the sandbox must hold when static checks are evaded
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    requests_before = len(http.requests)
    run = run_pipeline(spec, warehouse=_warehouse(warehouse), sandbox=sandbox, run_dir=tmp_path / "run", limits=LIMITS,
                       sources=sources, base_dir=tmp_path)
    return run, len(http.requests) - requests_before, hashlib.sha256(warehouse.read_bytes()).hexdigest() == before


def _warehouse(path: Path):
    from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse

    return DuckDBWarehouse(path)


def _judge(case: Case, run, http_requests: int, unchanged: bool) -> None:
    assert run.sources["partner_rates"]["rows"] == 3 and run.sources["landed_ids"]["rows"] == 1  # the host fetched both
    assert http_requests == 1, "the HTTP server heard from someone besides the host's one fetch"
    assert run.status == "failed", f"{case.id} succeeded"
    message = str(run.error)
    assert f"{case.id}.ipynb" in message and re.search(case.message, message), message
    assert unchanged, "the warehouse changed after a failed run"


@pytest.mark.docker
@pytest.mark.parametrize("case", SOURCE_SERVERS, ids=[c.id for c in SOURCE_SERVERS])
def test_docker_cannot_reach_the_source_servers(case: Case, docker_image: str, servers, tmp_path: Path, monkeypatch) -> None:
    from nb_assets.sandbox.container import DockerSandbox

    run, http_requests, unchanged = _attack(case, DockerSandbox(image=docker_image), servers, tmp_path, monkeypatch)
    _judge(case, run, http_requests, unchanged)
    assert run.sandbox["network"] == "none"


@pytest.mark.parametrize("case", SOURCE_SERVERS, ids=[c.id for c in SOURCE_SERVERS])
def test_local_sandbox_cannot_reach_the_source_servers(case: Case, servers, tmp_path: Path, monkeypatch) -> None:
    from nb_assets.sandbox.local import LocalSandbox, network_namespaces_available

    if not network_namespaces_available():
        pytest.skip("network namespaces (unshare --net) are unavailable here")
    run, http_requests, unchanged = _attack(case, LocalSandbox(), servers, tmp_path, monkeypatch)
    _judge(case, run, http_requests, unchanged)
