"""The Postgres driver as every Postgres-side module uses it: ADBC connections, the server's words, Arrow streams.

Results and outputs move as Arrow through ADBC's Postgres driver (binary COPY
underneath): measured against psycopg 3's binary COPY decoded to Python rows,
it was about twice as fast (benchmarks/postgres_data_path.py). The deploy
stack creates its databases through it too, so no module needs a second driver.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from nb_assets.errors import WarehouseError
from nb_assets.locations import redact
from nb_assets.warehouse.base import engine_message, ident
from nb_assets.warehouse.deadline import Deadline

_BACKSTOP_GRACE_S = 5.0  # the server's own timeout fires this long after the host's cancel should have


def connect(dsn: str, *, autocommit: bool = False) -> Any:
    """An open ADBC connection (in a transaction unless `autocommit`); `with` closes it.
    A server that cannot be reached or refuses the login is a WarehouseError (the driver's error is its cause)."""
    try:
        return adbc.connect(dsn, autocommit=autocommit)
    except adbc.Error as exc:
        raise WarehouseError(f"cannot connect to warehouse {redact(dsn)}: {server_message(exc)}") from exc


def create_databases(dsn: str, names: Iterable[str]) -> None:
    """Create each database of `names` the server at `dsn` lacks (CREATE DATABASE runs outside a transaction)."""
    with connect(dsn, autocommit=True) as con, con.cursor() as cur:
        for name in names:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = $1", (name,))
            if not cur.fetchall():
                cur.execute(f"CREATE DATABASE {ident(name)}")


def read_parquet_batches(path: Path) -> pa.RecordBatchReader:
    """A file as a stream, dictionary columns decoded (binary COPY has no dictionaries).

    Arrow's dataset scanner decodes ahead on its own threads while ADBC copies
    the previous batch: a Python generator here made decode and copy take turns."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet")
    columns = {
        f.name: pc.field(f.name).cast(f.type.value_type) if pa.types.is_dictionary(f.type) else pc.field(f.name)
        for f in dataset.schema
    }
    return dataset.scanner(columns=columns, batch_size=1 << 16).to_reader()


def statement_timeout_ms(statement_timeout_s: float, deadline: Deadline | None) -> int:
    """The server's own limit on each statement (`SET LOCAL statement_timeout`), a backstop behind the
    host's cancel (warehouse/deadline.py; the session could reset it): `statement_timeout_s`, or a little
    past the stage's deadline if that comes first."""
    seconds = statement_timeout_s if deadline is None else min(statement_timeout_s, deadline.left() + _BACKSTOP_GRACE_S)
    return max(1, int(seconds * 1000))  # 0 would mean no limit at all


def server_message(exc: BaseException) -> str:
    """The server's own words, without the driver's prefixes, on one line (its HINT kept)."""
    text = str(exc)
    # ADBC prefixes the server's message with its own status and a failed call.
    text = re.sub(r"^[A-Z_]+: (Failed to (prepare|execute) query: )?", "", text.strip())
    text = re.sub(r"^\[libpq\] [^:]*: ", "", text)
    text = re.sub(r"^ERROR:\s+", "", text)
    return engine_message(text) if text else type(exc).__name__
