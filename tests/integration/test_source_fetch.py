"""Declared sources fetched by the host from real servers and files: HTTP on loopback, files and
folders, moto's S3-compatible server through s3fs, and a second Postgres database."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nb_assets import Source
from nb_assets.errors import SourceFetchError
from nb_assets.sources.fetch import FetchLimits, fetch_sources
from nb_assets.warehouse.source_tables import read_table
from support.source_servers import RATES, data_server, s3_env, s3_server
from support.warehouses import new_pg_database


def _fetch(source: Source, tmp_path: Path, params: dict[str, Any] | None = None, **limits: Any):
    return fetch_sources([source], [source.name], params or {}, tmp_path / "in", base_dir=tmp_path,
                         read_table=read_table, limits=FetchLimits(**limits))[source.name]


@pytest.fixture(scope="module")
def server():
    with data_server() as running:
        yield running


def test_http_json_is_fetched_with_the_parameter_bound_and_recorded(server, tmp_path: Path) -> None:
    source = Source("rates", url=server.url("/v1/rates?date=$ds"), zones=["public"], allow_private=True,
                    schema={"rate": "float64", "day": "date"})
    got = _fetch(source, tmp_path, {"ds": "2026-11-01 & more"})
    table = pq.read_table(got.file)
    assert table.num_rows == len(RATES) and table.schema.field("day").type == pa.date32()
    assert server.requests[-1]["path"] == "/v1/rates?date=2026-11-01%20%26%20more"  # a value, never code
    assert got.rows == 3 and got.version == '"rates-v1"' and len(got.content_hash) == 64 and got.bytes > 0
    assert got.location == server.url("/v1/rates?date=2026-11-01%20%26%20more")


def test_a_secret_header_comes_from_the_environment_and_is_never_recorded(server, tmp_path: Path, monkeypatch) -> None:
    source = Source("private", url=server.url("/v1/private"), allow_private=True, headers={"Authorization": {"env": "RATES_TOKEN"}})
    with pytest.raises(SourceFetchError, match=r"header Authorization comes from \$RATES_TOKEN, which is not set"):
        _fetch(source, tmp_path)
    monkeypatch.setenv("RATES_TOKEN", "Bearer s3cret-token")
    got = _fetch(source, tmp_path)
    assert got.rows == 3 and got.version == "Mon, 30 Nov 2026 06:00:00 GMT"
    assert "s3cret" not in repr(got.facts())


def test_loopback_is_refused_unless_the_declaration_allows_it(server, tmp_path: Path) -> None:
    with pytest.raises(SourceFetchError, match=r"source 'rates' at http://127.0.0.1:\d+/v1/rates: 127.0.0.1 resolves to 127.0.0.1, a loopback"):
        _fetch(Source("rates", url=server.url("/v1/rates")), tmp_path)
    assert not (tmp_path / "in").exists() or not any((tmp_path / "in").iterdir())


@pytest.mark.parametrize(
    ("path", "limits", "message"),
    [
        ("/v1/nothing", {}, r"HTTP 404"),
        ("/v1/bad", {}, r"bad JSON"),
        ("/v1/slow", {"timeout_s": 2}, r"timed out after 2 s"),
        ("/v1/big", {"max_bytes": 8 << 20}, r"over the limit of 8388608 bytes"),
        ("/v1/elsewhere", {}, r"redirected to another host \(http://localhost:\d+/v1/rates\)"),
    ],
)
def test_a_failing_fetch_names_the_source_and_the_location(server, tmp_path: Path, path: str, limits: dict, message: str) -> None:
    source = Source("rates", url=server.url(path), allow_private=True)
    with pytest.raises(SourceFetchError, match=rf"source 'rates' at http://127.0.0.1:\d+{path}: .*{message}"):
        _fetch(source, tmp_path, **limits)
    assert not (tmp_path / "in" / "source__rates.parquet").exists()


def test_a_50_mb_body_is_read_whole_within_the_limit(server, tmp_path: Path) -> None:
    source = Source("big", url=server.url("/v1/big"), allow_private=True, format="json")
    with pytest.raises(SourceFetchError, match="bad JSON"):  # 50 MB of 'x' arrived whole, then failed to parse
        _fetch(source, tmp_path)


def test_same_host_redirects_are_followed(server, tmp_path: Path) -> None:
    assert _fetch(Source("rates", url=server.url("/v1/moved"), allow_private=True), tmp_path).rows == 3


def test_a_folder_of_csv_files_and_a_glob_of_parquet(tmp_path: Path) -> None:
    drop = tmp_path / "drops" / "2026-11-01"
    drop.mkdir(parents=True)
    (drop / "a.csv").write_text("order_id,region\n1,north\n2,south\n")
    (drop / "b.csv").write_text("order_id,region\n3,east\n")
    got = _fetch(Source("regions", path="drops/$ds/", format="csv"), tmp_path, {"ds": "2026-11-01"})
    assert got.rows == 3 and got.kind == "file" and got.location == str(drop)
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"x": [3]}), tmp_path / "p2.parquet")
    assert _fetch(Source("px", path="p*.parquet"), tmp_path).rows == 3


def test_a_missing_file_and_schema_drift_fail_the_fetch(tmp_path: Path) -> None:
    with pytest.raises(SourceFetchError, match=r"source 'gone' at .*gone.csv: nothing there"):
        _fetch(Source("gone", path="gone.csv"), tmp_path)
    (tmp_path / "a.csv").write_text("order_id,region\n1,north\n")
    with pytest.raises(SourceFetchError, match=r"schema drift: declared column\(s\) amount missing \(it has order_id, region\)"):
        _fetch(Source("a", path="a.csv", schema={"amount": "float64"}), tmp_path)
    with pytest.raises(SourceFetchError, match=r"schema drift: column region does not cast to int64"):
        _fetch(Source("a", path="a.csv", schema={"region": "int64"}), tmp_path)


def test_an_s3_prefix_through_s3fs_with_credentials_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    with s3_server() as endpoint:
        for name, value in s3_env(endpoint).items():
            monkeypatch.setenv(name, value)
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("landing")
        for day, rows in (("2026-11-01", [1, 2, 3]), ("2026-11-02", [4])):
            with fs.open(f"landing/orders/{day}/part-0.parquet", "wb") as f:
                pq.write_table(pa.table({"order_id": rows}), f)
        fs.invalidate_cache()
        got = _fetch(Source("orders_drop", path="s3://landing/orders/$ds/*.parquet", zones=["pii"]), tmp_path, {"ds": "2026-11-01"})
        assert got.rows == 3 and got.kind == "s3" and got.version  # the object's ETag
        assert pq.read_table(got.file).column("order_id").to_pylist() == [1, 2, 3]
        with pytest.raises(SourceFetchError, match=r"source 'orders_drop' at s3://landing/orders/2026-11-09/\*.parquet: nothing there"):
            _fetch(Source("orders_drop", path="s3://landing/orders/$ds/*.parquet"), tmp_path, {"ds": "2026-11-09"})


def test_a_table_in_another_postgres_database_through_a_named_connection(pg_cluster: Any, tmp_path: Path, monkeypatch) -> None:
    import psycopg

    dsn = new_pg_database(pg_cluster)
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute("CREATE TABLE public.accounts AS SELECT g AS account_id, 'acct ' || g AS name FROM generate_series(1, 25) g")
    source = Source("crm_accounts", connection="crm", table="public.accounts", zones=["pii"])
    with pytest.raises(SourceFetchError, match=r"connection 'crm' has no DSN: set NB_ASSETS_CONNECTION_CRM"):
        _fetch(source, tmp_path)
    monkeypatch.setenv("NB_ASSETS_CONNECTION_CRM", dsn)
    got = _fetch(source, tmp_path)
    assert got.rows == 25 and got.kind == "postgres" and pq.read_table(got.file).column_names == ["account_id", "name"]
    assert "password" not in got.location and os.environ["NB_ASSETS_CONNECTION_CRM"] not in got.location
    with pytest.raises(SourceFetchError, match=r"table public.nope at postgresql://.*"):
        _fetch(Source("nope", connection="crm", table="public.nope"), tmp_path)
