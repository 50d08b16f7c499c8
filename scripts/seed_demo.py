"""Seed a DuckDB or Postgres warehouse with the demo project's raw tables.

    python scripts/seed_demo.py [--warehouse warehouse.duckdb|postgresql://...] [--scale 1] [--seed 42]
    python scripts/seed_demo.py --new-orders FILE.parquet|FILE.csv [--warehouse warehouse.duckdb|postgresql://...]

A postgresql:// URL gets the same data (built by an in-memory DuckDB, then
copied in one transaction), the landing log, and the read-only role
nb_assets_reader the warehouse prefetches as.

Creates (or replaces) three tables in schema `raw`, covering the 60 days up to
2026-11-25 (fixed dates, so a seed always gives the same data):

- raw.customers   customer_id, name, email, country, signup_date, segment
- raw.orders      order_id, customer_id, order_ts, order_date, status, amount, currency
- raw.web_events  event_id, session_id, customer_id (NULL when anonymous),
                  event_ts, event_date, page, event_type

`--scale N` makes N thousand orders (`--scale 1000` is one million). The orders
are deliberately a little dirty, as raw feeds are, for the ETL notebook to clean:
NULL and negative amounts, order_ids delivered twice, and statuses in mixed
case with stray whitespace.

The seed also creates the (empty) landing log, nb_assets.landings: seeding is
the starting state, not a landing. `--new-orders FILE` writes a small batch of
new orders (CSV or Parquet, by suffix) for `nb-assets land raw.orders --from
FILE` or for the demo's file drop, landing/orders/.

Random draws are vectorized numpy (one seeded generator, always drawn in the
same order); DuckDB turns the integer codes into strings and types.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from nb_assets.warehouse.landing import LOG_DDL

END_DATE = date(2026, 11, 25)
DAYS = 60
DAY_SECONDS = 86_400

COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "CA", "AU", "BR", "JP")
COUNTRY_WEIGHTS = (0.38, 0.12, 0.10, 0.08, 0.04, 0.05, 0.07, 0.05, 0.06, 0.05)
CURRENCIES = ("USD", "GBP", "EUR", "EUR", "EUR", "EUR", "CAD", "AUD", "BRL", "JPY")
# Units of local currency per USD; amounts are stored in the customer's currency.
PER_USD = (1.0, 0.79, 0.92, 0.92, 0.92, 0.92, 1.37, 1.52, 5.6, 151.0)
SEGMENTS = ("consumer", "smb", "enterprise")
SEGMENT_WEIGHTS = (0.72, 0.21, 0.07)
SEGMENT_MEDIAN_USD = (42.0, 180.0, 950.0)
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Diego", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Wen", "Yuki", "Zoe",
)
LAST_NAMES = (
    "Adams", "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
    "Jansen", "Kim", "Lopez", "Martin", "Novak", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Weber",
)
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com")
STATUSES = ("completed", "cancelled", "refunded", "pending")
STATUS_WEIGHTS = (0.89, 0.07, 0.04, 0.0)
PENDING_DAYS, PENDING_SHARE = 2, 0.3  # orders of the last days not yet settled
PAGES = ("/", "/search", "/product", "/cart", "/checkout", "/account", "/help")
PAGE_WEIGHTS = (0.18, 0.20, 0.34, 0.12, 0.06, 0.07, 0.03)
LANDING_WEIGHTS = (0.60, 0.15, 0.25, 0.0, 0.0, 0.0, 0.0)
EVENT_TYPES = ("page_view", "click", "add_to_cart", "purchase")
# Share of orders (or sessions) per hour of day: quiet nights, an evening peak.
HOURLY = np.array([1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 6, 6, 6, 6, 7, 8, 9, 9, 8, 5, 3], dtype=float)
HOURLY /= HOURLY.sum()


def _sql_list(values: tuple[str, ...]) -> str:
    """A DuckDB list literal, indexed 1-based in SQL: `codes[c + 1]`."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _seconds(day_offset: np.ndarray, second_of_day: np.ndarray) -> np.ndarray:
    """Seconds since END_DATE 00:00 (negative = earlier) for a day offset (0 = END_DATE) and a time of day."""
    return day_offset.astype(np.int64) * DAY_SECONDS + second_of_day.astype(np.int64)


def _datetimes(seconds: np.ndarray) -> np.ndarray:
    return (np.datetime64(END_DATE, "s") + seconds.astype("timedelta64[s]")).astype("datetime64[us]")


def _time_order(seconds: np.ndarray) -> np.ndarray:
    """Indices sorting by time, ties by position: a unique key, so any sort algorithm agrees."""
    key = (seconds - seconds.min()) * len(seconds) + np.arange(len(seconds), dtype=np.int64)
    return np.argsort(key)


def _seconds_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(24, size=n, p=HOURLY) * 3600 + rng.integers(0, 3600, size=n)


def _customers(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS)
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_WEIGHTS)
    # Most customers signed up in the two years before the window, some during it.
    new = rng.random(n) < 0.15
    signup = np.where(new, rng.integers(-(DAYS - 1), 1, size=n), rng.integers(-730, -(DAYS - 1), size=n))
    table = pa.table({
        "customer_id": np.arange(1, n + 1, dtype=np.int64),
        "first": rng.integers(0, len(FIRST_NAMES), size=n),
        "last": rng.integers(0, len(LAST_NAMES), size=n),
        "domain": rng.integers(0, len(EMAIL_DOMAINS), size=n),
        "country": country,
        "segment": segment,
        "signup_offset": signup,
    })
    # A few customers order a lot: heavy-tailed popularity weights.
    popularity = rng.lognormal(0.0, 1.1, size=n)
    return table, signup, popularity / popularity.sum()


def _orders(rng: np.random.Generator, n: int, customers: tuple[pa.Table, np.ndarray, np.ndarray]) -> pa.Table:
    table, signup, popularity = customers
    cust = rng.choice(len(popularity), size=n, p=popularity)
    # An order falls between max(window start, signup) and END_DATE.
    earliest = np.maximum(-(DAYS - 1), signup[cust])
    day = earliest + np.floor(rng.random(n) * (1 - earliest)).astype(np.int64)
    ts = _seconds(day, _seconds_of_day(rng, n))
    status = rng.choice(len(STATUSES), size=n, p=STATUS_WEIGHTS)
    status[(day > -PENDING_DAYS) & (rng.random(n) < PENDING_SHARE)] = STATUSES.index("pending")
    country = table.column("country").to_numpy()[cust]
    segment = table.column("segment").to_numpy()[cust]
    usd = rng.lognormal(np.log(np.take(SEGMENT_MEDIAN_USD, segment)), 0.65)
    amount = np.round(usd * np.take(PER_USD, country), 2)
    amount[country == COUNTRIES.index("JP")] = np.round(amount[country == COUNTRIES.index("JP")])

    order_id = np.empty(n, dtype=np.int64)
    order_id[_time_order(ts)] = np.arange(100_001, 100_001 + n)
    # Dirt: missing and negative amounts, some rows delivered twice.
    amount[rng.random(n) < 0.004] = np.nan
    amount[rng.random(n) < 0.003] *= -1
    dup = np.sort(rng.choice(n, size=int(n * 0.015), replace=False))
    rows = np.concatenate([np.arange(n), dup])
    return pa.table({
        "order_id": order_id[rows],
        "customer_id": cust[rows] + 1,
        "order_ts": _datetimes(ts[rows]),
        "status": status[rows],
        # 0 = clean, 1..5 = UPPER, Title, ' leading', 'trailing  ', ' Title '.
        "status_style": np.where(rng.random(len(rows)) < 0.06, rng.integers(1, 6, size=len(rows)), 0),
        "amount": pa.array(amount[rows], from_pandas=True),  # NaN → NULL
        "country": country[rows],
    })


def _web_events(rng: np.random.Generator, n_sessions: int, popularity: np.ndarray) -> pa.Table:
    length = rng.geometric(0.35, size=n_sessions)
    logged_in = rng.random(n_sessions) < 0.35
    customer = np.where(logged_in, rng.choice(len(popularity), size=n_sessions, p=popularity) + 1, 0)
    converts = logged_in & (rng.random(n_sessions) < 0.09)
    start = _seconds(rng.integers(-(DAYS - 1), 1, size=n_sessions), _seconds_of_day(rng, n_sessions))

    n = int(length.sum())
    session = np.repeat(np.arange(n_sessions), length)
    first = np.cumsum(length) - length
    position = np.arange(n) - np.repeat(first, length)
    gap = np.minimum(rng.exponential(45.0, size=n), 900).astype(np.int64)
    gap[position == 0] = 0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[first], length)
    ts = start[session] + elapsed

    page = rng.choice(len(PAGES), size=n, p=PAGE_WEIGHTS)
    landing = position == 0
    page[landing] = rng.choice(len(PAGES), size=int(landing.sum()), p=LANDING_WEIGHTS)
    kind = np.where(rng.random(n) < 0.72, 0, 1)
    kind[(page == PAGES.index("/product")) & (rng.random(n) < 0.12)] = 2
    last = position == np.repeat(length - 1, length)
    purchase = last & converts[session]
    page[purchase] = PAGES.index("/checkout")
    kind[purchase] = 3

    kept = np.flatnonzero(ts < DAY_SECONDS)  # sessions running past midnight of END_DATE are cut
    rows = kept[_time_order(ts[kept])]
    return pa.table({
        "event_id": np.arange(1, len(rows) + 1, dtype=np.int64),
        "session_id": session[rows] + 1_000_001,
        "customer_id": customer[session[rows]],
        "event_ts": _datetimes(ts[rows]),
        "page": page[rows],
        "event_type": kind[rows],
    })


def seed(path: str | Path, scale: float = 1, seed: int = 42) -> dict[str, int]:
    """(Re)create raw.customers, raw.orders and raw.web_events; return row counts."""
    n_orders = max(1, round(scale * 1000))
    rng = np.random.default_rng(seed)
    customers = _customers(rng, max(20, n_orders // 4))
    orders = _orders(rng, n_orders, customers)
    events = _web_events(rng, round(n_orders * 2.5), customers[2])

    if _is_postgres(path):
        return _seed_postgres(str(path), customers[0], orders, events)
    con = duckdb.connect(str(path))
    try:
        _create_tables(con, customers[0], orders, events)
        tables = ("raw.customers", "raw.orders", "raw.web_events")
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def _is_postgres(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


def _seed_postgres(url: str, customers: pa.Table, orders: pa.Table, events: pa.Table) -> dict[str, int]:
    """The same tables, made by DuckDB in memory and copied into Postgres in one transaction."""
    import adbc_driver_postgresql.dbapi as adbc

    from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse

    tables = ("raw.customers", "raw.orders", "raw.web_events")
    with duckdb.connect() as con:
        _create_tables(con, customers, orders, events, landing_log=False)
        data = {t: con.sql(f"SELECT * FROM {t}").to_arrow_table() for t in tables}
    with adbc.connect(url) as pg, pg.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS raw")
        for table, rows in data.items():
            cur.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
            cur.adbc_ingest(table.split(".")[1], rows, mode="create", db_schema_name="raw")
        for statement in LOG_DDL:
            cur.execute(statement)
        pg.commit()
    PostgresWarehouse(url).create_reader()
    return {t: data[t].num_rows for t in tables}


def _create_tables(con: duckdb.DuckDBPyConnection, customers: pa.Table, orders: pa.Table, events: pa.Table,
                   landing_log: bool = True) -> None:
    """The three raw tables (and the landing log) in one transaction on `con`."""
    con.register("customers_codes", customers)
    con.register("orders_codes", orders)
    con.register("events_codes", events)
    con.execute("BEGIN")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"""
        CREATE OR REPLACE TABLE raw.customers AS
        WITH named AS (
            SELECT *, {_sql_list(FIRST_NAMES)}[first + 1] AS first_name,
                      {_sql_list(LAST_NAMES)}[last + 1] AS last_name
            FROM customers_codes)
        SELECT customer_id,
               first_name || ' ' || last_name AS name,
               lower(first_name || '.' || last_name) || customer_id || '@'
                   || {_sql_list(EMAIL_DOMAINS)}[domain + 1] AS email,
               {_sql_list(COUNTRIES)}[country + 1] AS country,
               DATE '{END_DATE}' + signup_offset::INTEGER AS signup_date,
               {_sql_list(SEGMENTS)}[segment + 1] AS segment
        FROM named ORDER BY customer_id""")
    con.execute(f"""
        CREATE OR REPLACE TABLE raw.orders AS
        WITH coded AS (SELECT *, {_sql_list(STATUSES)}[status + 1] AS s FROM orders_codes)
        SELECT order_id, customer_id, order_ts, CAST(order_ts AS DATE) AS order_date,
               CASE status_style WHEN 0 THEN s WHEN 1 THEN upper(s)
                    WHEN 2 THEN upper(s[1]) || s[2:] WHEN 3 THEN ' ' || s
                    WHEN 4 THEN s || '  ' ELSE ' ' || upper(s[1]) || s[2:] || ' ' END AS status,
               CAST(amount AS DECIMAL(12, 2)) AS amount,
               {_sql_list(CURRENCIES)}[country + 1] AS currency
        FROM coded ORDER BY order_ts, order_id""")
    con.execute(f"""
        CREATE OR REPLACE TABLE raw.web_events AS
        SELECT event_id, session_id, NULLIF(customer_id, 0) AS customer_id, event_ts,
               CAST(event_ts AS DATE) AS event_date, {_sql_list(PAGES)}[page + 1] AS page,
               {_sql_list(EVENT_TYPES)}[event_type + 1] AS event_type
        FROM events_codes ORDER BY event_id""")
    for statement in LOG_DDL if landing_log else ():
        con.execute(statement)
    con.execute("COMMIT")


def new_orders(warehouse: str | Path, dest: str | Path, count: int = 40) -> int:
    """Write `count` orders placed after the seeded ones, shaped like raw.orders; return the count.

    Written beside `dest` and renamed into place, so a watched folder never sees half a file.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    fmt = "FORMAT PARQUET" if dest.suffix.lower() in (".parquet", ".pq") else "FORMAT CSV, HEADER"
    with _orders_source(warehouse) as con:
        con.execute(f"""
            COPY (
                WITH last AS (SELECT max(order_id) AS id, max(order_ts) AS ts FROM raw.orders),
                     picked AS (SELECT customer_id, country, row_number() OVER (ORDER BY hash(customer_id)) AS i
                                FROM raw.customers)
                SELECT last.id + i AS order_id, customer_id, last.ts + i * INTERVAL 7 SECOND AS order_ts,
                       CAST(last.ts + i * INTERVAL 7 SECOND AS DATE) AS order_date, 'completed' AS status,
                       CAST(20 + (i * 37) % 400 AS DECIMAL(12, 2)) AS amount,
                       {_sql_list(CURRENCIES)}[list_position({_sql_list(COUNTRIES)}, country)] AS currency
                FROM picked, last WHERE i <= {int(count)} ORDER BY order_id
            ) TO '{partial}' ({fmt})""")
    partial.replace(dest)
    return count


@contextmanager
def _orders_source(warehouse: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse read-only; a Postgres one through an in-memory copy of the two tables new orders need."""
    if not _is_postgres(warehouse):
        with duckdb.connect(str(warehouse), read_only=True) as con:
            yield con
        return
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(str(warehouse)) as pg, pg.cursor() as cur, duckdb.connect() as con:
        con.execute("CREATE SCHEMA raw")
        for table, columns in (("raw.orders", "order_id, order_ts"), ("raw.customers", "customer_id, country")):
            cur.execute(f"SELECT {columns} FROM {table}")
            rows = cur.fetch_arrow_table()
            con.register("rows", rows)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM rows")
            con.unregister("rows")
        yield con


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", default=os.environ.get("NB_ASSETS_WAREHOUSE", "warehouse.duckdb"),
                        help="DuckDB file (created if missing), or a postgresql:// URL (the database must exist); "
                             "default: $NB_ASSETS_WAREHOUSE (so a password stays out of the command line), else warehouse.duckdb")
    parser.add_argument("--scale", type=float, default=1, help="thousands of orders (1000 => 1M)")
    parser.add_argument("--seed", type=int, default=42, help="random seed; same seed, same data")
    parser.add_argument("--new-orders", metavar="FILE", help="only write a batch of new orders to FILE (.parquet or .csv)")
    args = parser.parse_args(argv)
    if args.new_orders:
        print(f"wrote {new_orders(args.warehouse, args.new_orders)} new orders to {args.new_orders}")
        return 0
    if args.scale <= 0:
        parser.error("--scale must be positive")
    started = time.perf_counter()
    counts = seed(args.warehouse, args.scale, args.seed)
    for table, rows in counts.items():
        print(f"{table:16} {rows:>12,} rows")
    shown = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", str(args.warehouse))
    print(f"seeded {shown} in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter teardown: DuckDB's and Arrow's thread pools can abort it
    # after the data is committed, and `make dev` reads this exit code.
    os._exit(code)
