"""Fetched bytes → one Arrow table, in the declared format, checked against a declared schema."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence

import pyarrow as pa

from nb_assets.errors import SourceFetchError

_ARROW_TYPES = {
    "string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(), "double": pa.float64(),
    "bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
}


def decode(data: bytes, fmt: str, where: str) -> pa.Table:
    """`where` ("source 'rates' at https://...") starts every error message."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(data))
        if fmt == "csv":
            import pyarrow.csv as pacsv

            return pacsv.read_csv(io.BytesIO(data))
        if fmt == "ndjson":
            import pyarrow.json as pajson

            return pajson.read_json(io.BytesIO(data))
        return _json_records(data, where)
    except SourceFetchError:
        raise
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise SourceFetchError(f"{where}: cannot read it as {fmt}: {exc}") from exc


def parquet_rows(data: bytes, where: str) -> int:
    """The rows a Parquet file holds, from its footer; a file that is not Parquet fails here."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise SourceFetchError(f"{where}: cannot read it as parquet: {exc}") from exc


def _json_records(data: bytes, where: str) -> pa.Table:
    """A JSON list of objects, or an object holding exactly one such list (an API's envelope)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFetchError(f"{where}: bad JSON: {exc}") from exc
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) == 1:
            doc = lists[0]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise SourceFetchError(f"{where}: bad JSON: expected a list of objects (records), or an object holding one such list")
    try:
        return pa.Table.from_pylist(doc)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise SourceFetchError(f"{where}: bad JSON: its records do not form a table: {exc}") from exc


def concat(tables: Sequence[pa.Table], where: str) -> pa.Table:
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, ValueError) as exc:
        raise SourceFetchError(f"{where}: its files do not share one schema: {exc}") from exc


def conform(table: pa.Table, schema: Mapping[str, str] | None, where: str) -> pa.Table:
    """The declared columns, cast to the declared types (others kept); drift fails the fetch."""
    if not schema:
        return table
    missing = [c for c in schema if c not in table.column_names]
    if missing:
        raise SourceFetchError(
            f"{where}: schema drift: declared column(s) {', '.join(missing)} missing (it has {', '.join(table.column_names) or 'none'})"
        )
    for column, kind in schema.items():
        index = table.column_names.index(column)
        try:
            table = table.set_column(index, column, table.column(column).cast(_ARROW_TYPES[kind]))
        except (pa.ArrowException, ValueError) as exc:
            raise SourceFetchError(f"{where}: schema drift: column {column} does not cast to {kind}: {exc}") from exc
    return table
