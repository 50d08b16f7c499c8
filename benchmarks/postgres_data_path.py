"""The Postgres data path: SQL input → Parquet (prefetch) and Parquet → table (load).

A throwaway cluster (nb_assets.deploy.pg_cluster, fsync off) with a table of 10
million rows (--rows to change; ints, doubles, text, date). Each op on its own
connection, interleaved run by run so drift on the machine hits all alike:
  baseline  Postgres's own `COPY (SELECT ...) TO STDOUT (FORMAT binary)` into a
            file, and `COPY ... FROM STDIN (FORMAT binary)` of that file into a
            new table, in one transaction (psycopg 3, bytes passed through)
  figure    PostgresWarehouse.prefetch (the same query, $ds bound, as the read
            role in a READ ONLY transaction, to Parquet) and
            PostgresWarehouse.load of the file prefetch wrote (after the
            first, the same columns: DELETE + COPY into the table in place;
            postgres_swap.py compares that with the swap)
  also      psycopg 3's binary COPY decoded to Python rows (what an Arrow path
            through psycopg would start from: no Arrow built, no Parquet
            written), to show why prefetch goes through ADBC
Target: (prefetch + load) / (COPY TO + COPY FROM) ≤ 1.3x.

    python benchmarks/postgres_data_path.py [--rows N] [--runs N] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

import psycopg  # noqa: E402

from nb_assets.deploy.pg_cluster import start_cluster  # noqa: E402
from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse  # noqa: E402
from nb_assets.warehouse.base import PrefetchRequest  # noqa: E402

SEED = """CREATE TABLE raw.events AS SELECT
    g::bigint AS event_id,
    (hashint8(g) % 100000)::integer AS customer_id,
    (abs(hashint8(g * 7)) % 1000000) / 100.0::float8 AS amount,
    ((abs(hashint8(g * 13)) % 10000) / 7.0)::float8 AS score,
    'sku-' || (abs(hashint8(g * 3)) % 50000)::text AS sku,
    (ARRAY['US', 'GB', 'DE', 'FR', 'JP'])[1 + (g % 5)::integer] AS country,
    DATE '2026-01-01' + (g % 365)::integer AS ds
FROM generate_series(0, {last}) g"""
COLUMNS = "event_id, customer_id, amount, score, sku, country, ds"
QUERY = f"SELECT {COLUMNS} FROM raw.events WHERE ds <= CAST($ds AS DATE)"
LITERAL_QUERY = f"SELECT {COLUMNS} FROM raw.events WHERE ds <= DATE '2026-12-31'"  # COPY takes no parameters
PARAMS = {"ds": "2026-12-31"}  # every row


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def copy_out(dsn: str, dest: Path) -> None:
    with psycopg.connect(dsn) as con, con.cursor() as cur, dest.open("wb") as out:
        with cur.copy(f"COPY ({LITERAL_QUERY}) TO STDOUT (FORMAT binary)") as copy:
            for chunk in copy:
                out.write(chunk)


def copy_in(dsn: str, source: Path) -> None:
    with psycopg.connect(dsn) as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench.copy_in")
        cur.execute("CREATE TABLE bench.copy_in (LIKE raw.events)")
        with cur.copy("COPY bench.copy_in FROM STDIN (FORMAT binary)") as copy, source.open("rb") as data:
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        con.commit()


def psycopg_rows(dsn: str) -> None:
    with psycopg.connect(dsn) as con, con.cursor() as cur:
        with cur.copy(f"COPY ({LITERAL_QUERY}) TO STDOUT (FORMAT binary)") as copy:
            copy.set_types(["int8", "int4", "float8", "float8", "text", "text", "date"])
            for _ in copy.rows():
                pass


def main() -> None:
    args = C.parse_args(__doc__, lambda p: (p.add_argument("--rows", type=int, default=None),
                                            p.add_argument("--runs", type=int, default=5)))
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    runs = 2 if args.quick else args.runs
    C.print_machine("psycopg", "adbc-driver-postgresql", "pyarrow")
    with tempfile.TemporaryDirectory(prefix="nb_bench_pg_") as cluster_dir, C.temp_dir("pg_files", memory=True) as files:
        cluster = start_cluster(Path(cluster_dir), unsafe_fast=True)  # as its docstring says: fsync off
        try:
            dsn = cluster.dsn()
            with psycopg.connect(dsn, autocommit=True) as con:
                started = time.perf_counter()
                con.execute("CREATE SCHEMA raw")
                con.execute("CREATE SCHEMA bench")
                con.execute(SEED.format(last=rows - 1))
                con.execute("VACUUM ANALYZE raw.events")
                print(f"server: {con.execute('SHOW server_version').fetchone()[0]}; "
                      f"{rows:,} rows seeded in {time.perf_counter() - started:.1f} s; {runs} runs after 1 warm-up\n")
            wh = PostgresWarehouse(dsn)
            wh.create_reader()
            binary, parquet = files / "events.bin", files / "events.parquet"

            def prefetch() -> None:
                wh.prefetch("bench", [PrefetchRequest("events", QUERY, PARAMS, 1, parquet)])

            ops = {
                "COPY TO STDOUT (binary)": lambda: copy_out(dsn, binary),
                "COPY FROM STDIN (binary)": lambda: copy_in(dsn, binary),
                "prefetch (ADBC → Parquet)": prefetch,
                "load (Parquet → ADBC, in place)": lambda: wh.load("bench", {"bench.loaded": parquet}),
                "psycopg COPY → rows (no Arrow)": lambda: psycopg_rows(dsn),
            }
            times = C.time_round_robin({k: (lambda f=f: timed(f)) for k, f in ops.items()}, runs)
            for name, values in times.items():
                print(f"{name:32} {C.fmt_times(values)}")
            med = {k: C.median(v) for k, v in times.items()}
            baseline = med["COPY TO STDOUT (binary)"] + med["COPY FROM STDIN (binary)"]
            figure = med["prefetch (ADBC → Parquet)"] + med["load (Parquet → ADBC, in place)"]
            print(f"\nbinary COPY file {binary.stat().st_size / 1e6:.0f} MB; Parquet {parquet.stat().st_size / 1e6:.0f} MB")
            print(f"out: prefetch / COPY TO = {med['prefetch (ADBC → Parquet)'] / med['COPY TO STDOUT (binary)']:.2f}x; "
                  f"psycopg rows / COPY TO = {med['psycopg COPY → rows (no Arrow)'] / med['COPY TO STDOUT (binary)']:.2f}x")
            print(f"in:  load / COPY FROM = {med['load (Parquet → ADBC, in place)'] / med['COPY FROM STDIN (binary)']:.2f}x")
            print(f"(prefetch + load) {figure:.3f} s / (COPY TO + COPY FROM) {baseline:.3f} s")
            C.summary("postgres_data_path", figure / baseline, 1.3)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
