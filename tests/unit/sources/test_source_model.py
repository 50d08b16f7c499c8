"""The Source declaration: one location, names that lineage can use, parameters bound as values."""

from __future__ import annotations

import re

import pytest

from nb_assets import Source
from nb_assets.errors import DeclarationError
from nb_assets.sources.model import bind_location


def test_a_url_parameter_in_the_query_is_url_encoded_never_spliced() -> None:
    source = Source("rates", url="https://rates.example.invalid/v1/daily?date=$ds&x=1", format="json", zones=["public"])
    assert source.params == ("ds",)
    assert source.kind == "https" and source.relation == "source.rates"
    bound = bind_location(source, {"ds": "2026-11-01&admin=1#"})
    assert bound == "https://rates.example.invalid/v1/daily?date=2026-11-01%26admin%3D1%23&x=1"


@pytest.mark.parametrize("value", ["../etc", "a/b", "..", ""])
def test_a_path_segment_takes_one_plain_segment(value: str) -> None:
    source = Source("drop", path="s3://landing/orders/$ds/*.parquet", zones=["pii"])
    assert source.kind == "s3"
    with pytest.raises(DeclarationError, match=r"\$ds=.*cannot stand in a path segment"):
        bind_location(source, {"ds": value})
    assert bind_location(source, {"ds": "2026-11-01"}) == "s3://landing/orders/2026-11-01/*.parquet"


def test_a_missing_parameter_names_the_source_and_what_the_run_has() -> None:
    source = Source("drop", path="drops/$region/orders.csv")
    with pytest.raises(DeclarationError, match=r"source 'drop': its location names \$region.*parameters: ds"):
        bind_location(source, {"ds": "2026-11-01"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one location"),
        ({"url": "https://a.example.invalid/x", "path": "x.csv"}, "exactly one location"),
        ({"url": "ftp://a.example.invalid/x"}, "must be http:// or https://"),
        ({"url": "https://$host.example.invalid/x"}, "may not choose the host"),
        ({"connection": "crm"}, "needs table="),
        ({"path": "x.csv", "format": "xlsx"}, "format 'xlsx'"),
        ({"path": "x.csv", "schema": {"a": "varchar(3)"}}, "type 'varchar(3)'"),
        ({"url": "https://a.example.invalid/x", "headers": {"Authorization": {"secret": "X"}}}, "header 'Authorization'"),
    ],
)
def test_bad_declarations_say_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(DeclarationError, match=f"source 'rates': .*{re.escape(message)}"):
        Source("rates", **kwargs)


def test_a_source_name_must_be_usable_in_sql() -> None:
    with pytest.raises(DeclarationError, match="lowercase letters"):
        Source("Partner-Rates", url="https://a.example.invalid/x")


def test_kinds_and_formats_come_from_the_location() -> None:
    assert Source("a", path="data/a.csv").file_format == "csv"
    assert Source("a", path="data/a/").file_format == "parquet"
    assert Source("a", url="https://a.example.invalid/feed").file_format == "json"
    assert Source("a", connection="crm", table="public.accounts").kind == "postgres"
    assert Source("a", path="/srv/a.parquet").kind == "file"
