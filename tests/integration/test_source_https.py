"""Declared https:// sources against a real HTTPS server on loopback, whose certificate a throwaway
CA made in the test signed: fetched into the run folder as Parquet once the host trusts the CA
(OpenSSL's SSL_CERT_FILE, which the fetcher's ssl default context reads), refused naming the source
and the location while it does not, and never downgraded to plain http by a redirect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from nb_assets import Source
from nb_assets.analysis.parser import parse_notebook
from nb_assets.errors import SourceFetchError
from nb_assets.runs.pipeline import run_pipeline
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.sources.fetch import FetchLimits, fetch_sources, source_file
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.source_servers import RATES, TlsFiles, data_server, https_data_server, throwaway_ca
from support.warehouses import warehouse_snapshot

TRUST_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return throwaway_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def plain():
    with data_server() as running:
        yield running


@pytest.fixture(scope="module")
def server(tls: TlsFiles, plain):
    with https_data_server(tls, plain_port=plain.port) as running:
        yield running


@pytest.fixture
def untrusting(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A host that trusts only its system CAs (nothing set that could name the throwaway CA)."""
    for name in TRUST_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _fetch(source: Source, tmp_path: Path, **limits: Any):
    return fetch_sources([source], [source.name], {}, tmp_path / "in", base_dir=tmp_path,
                         limits=FetchLimits(**limits))[source.name]


def test_an_https_source_lands_in_the_run_folder_as_parquet(server, tls: TlsFiles, untrusting, warehouse: Path,
                                                          tmp_path: Path) -> None:
    untrusting.setenv("SSL_CERT_FILE", str(tls.ca))
    notebook = write_notebook(
        tmp_path / "rates_report.ipynb",
        code(RUNTIME), params("ds = '2026-11-01'"), code("%%source rates partner_rates"),
        code("output('mart.rates_seen', rates[['currency', 'rate']])"),
    )
    rates = Source("partner_rates", url=server.url("/v1/rates?date=$ds"), format="json", zones=["public"],
                   allow_private=True)
    run = run_pipeline(parse_notebook(notebook), warehouse=DuckDBWarehouse(warehouse), sandbox=LocalSandbox(),
                       run_dir=tmp_path / "run", sources=[rates], base_dir=tmp_path)
    assert run.status == "success", run.error
    fetched = run.folder.input_dir / source_file("partner_rates")
    assert pq.read_table(fetched).to_pylist() == RATES  # the JSON body's records, as Parquet in the run's input folder
    assert run.sources["partner_rates"]["location"] == server.url("/v1/rates?date=2026-11-01")
    assert run.sources["partner_rates"]["version"] == '"rates-v1"' and run.sources["partner_rates"]["rows"] == 3
    assert server.requests[-1]["path"] == "/v1/rates?date=2026-11-01"
    assert warehouse_snapshot(warehouse)["mart.rates_seen"] == sorted((r["currency"], r["rate"]) for r in RATES)


@pytest.mark.parametrize("maker", ["cryptography", "openssl"])
def test_a_throwaway_ca_is_trusted_through_ssl_cert_file_and_not_before(maker: str, untrusting, tmp_path: Path) -> None:
    tls = throwaway_ca(tmp_path / "tls", maker=maker)
    with https_data_server(tls) as https:
        source = Source("rates", url=https.url("/v1/rates"), allow_private=True)
        with pytest.raises(SourceFetchError, match="does not trust the server's certificate"):
            _fetch(source, tmp_path)
        untrusting.setenv("SSL_CERT_FILE", str(tls.ca))
        got = _fetch(source, tmp_path)
    assert got.kind == "https" and got.rows == 3 and got.file == tmp_path / "in" / "source__rates.parquet"
    assert pq.read_table(got.file).to_pylist() == RATES
    assert [r["path"] for r in https.requests] == ["/v1/rates"]  # the refused attempt was never served


def test_an_untrusted_certificate_fails_naming_the_source_and_never_falls_back(server, plain, tls: TlsFiles, untrusting,
                                                                              tmp_path: Path) -> None:
    served_https, served_plain = len(server.requests), len(plain.requests)
    source = Source("rates", url=server.url("/v1/rates"), allow_private=True)
    with pytest.raises(SourceFetchError) as refused:
        _fetch(source, tmp_path)
    assert str(refused.value) == (
        f"source 'rates' at {server.url('/v1/rates')}: this host does not trust the server's certificate "
        "(unable to get local issuer certificate); a private CA is trusted by naming its PEM file in SSL_CERT_FILE"
    )
    # requests' and curl's variables are not OpenSSL's: the fetcher does not read them, as docs/sources.md says.
    untrusting.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))
    untrusting.setenv("CURL_CA_BUNDLE", str(tls.ca))
    with pytest.raises(SourceFetchError, match=r"^source 'rates' at https://127\.0\.0\.1:\d+/v1/rates: this host does not trust"):
        _fetch(source, tmp_path)
    assert not (tmp_path / "in" / "source__rates.parquet").exists()
    assert (len(server.requests), len(plain.requests)) == (served_https, served_plain)  # no GET, not over http either


def test_a_trusted_ca_does_not_vouch_for_another_name(untrusting, tmp_path: Path) -> None:
    tls = throwaway_ca(tmp_path / "tls", names=("localhost",))  # not for 127.0.0.1
    untrusting.setenv("SSL_CERT_FILE", str(tls.ca))
    with https_data_server(tls) as https:
        with pytest.raises(SourceFetchError, match=r"^source 'rates' at https://127\.0\.0\.1:\d+/v1/rates: this host does not "
                                                   r"trust the server's certificate \(IP address mismatch"):
            _fetch(Source("rates", url=https.url("/v1/rates"), allow_private=True), tmp_path)
    assert https.requests == []


def test_a_redirect_from_https_to_http_of_the_same_host_is_refused(server, plain, tls: TlsFiles, untrusting,
                                                                  tmp_path: Path) -> None:
    untrusting.setenv("SSL_CERT_FILE", str(tls.ca))
    served_plain = len(plain.requests)
    with pytest.raises(SourceFetchError) as refused:
        _fetch(Source("rates", url=server.url("/v1/downgrade"), allow_private=True), tmp_path)
    assert str(refused.value) == (
        f"source 'rates' at {server.url('/v1/downgrade')}: redirected from https to http "
        f"(http://127.0.0.1:{plain.port}/v1/rates); a downgrade is never followed"
    )
    assert len(plain.requests) == served_plain and server.requests[-1]["path"] == "/v1/downgrade"
    assert not (tmp_path / "in" / "source__rates.parquet").exists()
    # A same-host redirect that stays on https is followed, as for http.
    assert _fetch(Source("rates", url=server.url("/v1/moved"), allow_private=True), tmp_path).rows == 3
