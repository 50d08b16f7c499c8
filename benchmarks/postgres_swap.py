"""Replacing a Postgres output table: the swap against replacing its rows in place.

A prefetch's REPEATABLE READ snapshot reads a swapped-in table (DROP + RENAME,
DDL, not MVCC-safe) as empty, so `PostgresWarehouse.load` now replaces the
rows of a table whose columns stay (DELETE, then a binary COPY into the table,
MVCC) and swaps only a new table or changed columns (postgres/load.py). Same
table, same Parquet file (--rows, 1M by default: ints, doubles, text, date),
a throwaway cluster (fsync off unless --durable), interleaved run by run:
  baseline  `PostgresWarehouse.load` when the table must be swapped: its
            columns made to differ first (`ADD COLUMN`, untimed), so the real
            load stages the file, drops the table and renames the stage in
  figure    `PostgresWarehouse.load` onto the table with the same columns:
            DELETE + binary COPY into the table itself, one transaction
  also      the alternative not taken: COPY into a staging table, then
            DELETE + INSERT ... SELECT from it (two writes of every row);
            the prefetch's check after each input (pg_locks against the
            snapshot's catalog), alone
Dead rows: each in-place load leaves the previous version's rows dead until
(auto)vacuum; the table's size after the runs is printed.
Target: in place / swap < 1.5x.

    python benchmarks/postgres_swap.py [--quick] [--rows N] [--runs N] [--durable]
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
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from nb_assets.deploy.pg_cluster import start_cluster  # noqa: E402
from nb_assets.warehouse.postgres import driver  # noqa: E402
from nb_assets.warehouse.postgres.warehouse import _NEWER_THAN_THE_SNAPSHOT, PostgresWarehouse  # noqa: E402

TABLE = "bench.t"


def make_file(path: Path, rows: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(7)
    pq.write_table(pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "customer_id": pa.array(rng.integers(0, 100_000, rows, dtype=np.int32)),
        "amount": pa.array(rng.random(rows) * 10_000),
        "sku": pa.array([f"sku-{i % 50_000}" for i in range(rows)]),
        "ds": pa.array(np.datetime64("2026-01-01") + rng.integers(0, 365, rows).astype("timedelta64[D]")),
    }), path)
    return path


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    args = C.parse_args(__doc__, lambda p: (p.add_argument("--rows", type=int, default=1_000_000),
                                            p.add_argument("--runs", type=int, default=7),
                                            p.add_argument("--durable", action="store_true", help="fsync on (the server's defaults)")))
    runs = 2 if args.quick else args.runs
    C.print_machine("psycopg", "adbc-driver-postgresql", "pyarrow")
    with tempfile.TemporaryDirectory(prefix="nb_bench_pgswap_") as cluster_dir, C.temp_dir("pgswap_files", memory=True) as files:
        cluster = start_cluster(Path(cluster_dir), unsafe_fast=not args.durable)
        try:
            dsn = cluster.dsn()
            parquet = make_file(files / "t.parquet", args.rows)
            wh = PostgresWarehouse(dsn)
            wh.create_reader()
            wh.load("bench", {TABLE: parquet})
            with psycopg.connect(dsn, autocommit=True) as con:
                print(f"server: {con.execute('SHOW server_version').fetchone()[0]}, fsync {con.execute('SHOW fsync').fetchone()[0]}; "
                      f"{args.rows:,} rows, Parquet {parquet.stat().st_size / 1e6:.0f} MB; {runs} runs after 1 warm-up\n")

            def swap() -> float:
                with psycopg.connect(dsn, autocommit=True) as con:
                    con.execute(f"ALTER TABLE {TABLE} ADD COLUMN other integer")  # untimed: the next load must swap
                return timed(lambda: wh.load("bench", {TABLE: parquet}))

            def in_place() -> float:
                return timed(lambda: wh.load("bench", {TABLE: parquet}))

            def through_a_stage() -> float:
                def run() -> None:
                    with driver.connect(dsn) as con, con.cursor() as cur:
                        cur.execute("DROP TABLE IF EXISTS bench.t_stage")
                        cur.adbc_ingest("t_stage", driver.read_parquet_batches(parquet), mode="create", db_schema_name="bench")
                        cur.execute(f"DELETE FROM {TABLE}")
                        cur.execute(f"INSERT INTO {TABLE} SELECT * FROM bench.t_stage")
                        cur.execute("DROP TABLE bench.t_stage")
                        con.commit()
                return timed(run)

            def snapshot_check() -> float:
                with driver.connect(wh.read_dsn) as con, con.cursor() as cur:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    cur.execute(f"SELECT count(*) FROM {TABLE}")
                    cur.fetchall()
                    started = time.perf_counter()
                    cur.execute(_NEWER_THAN_THE_SNAPSHOT)
                    assert cur.fetchall() == []
                    elapsed = time.perf_counter() - started
                    con.rollback()
                return elapsed

            ops = {"swap (stage, DROP, RENAME)": swap, "in place (DELETE + COPY into the table)": in_place,
                   "via a stage (COPY, DELETE + INSERT SELECT)": through_a_stage, "the prefetch check, per input": snapshot_check}
            times = C.time_round_robin(ops, runs)
            for name, values in times.items():
                print(f"{name:44} {C.fmt_times(values)}")
            med = {k: C.median(v) for k, v in times.items()}
            base, figure = med["swap (stage, DROP, RENAME)"], med["in place (DELETE + COPY into the table)"]
            staged = med["via a stage (COPY, DELETE + INSERT SELECT)"]
            check = med["the prefetch check, per input"]
            with psycopg.connect(dsn, autocommit=True) as con:
                size = con.execute(f"SELECT pg_total_relation_size('{TABLE}')").fetchone()[0]
                dead = con.execute(f"SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = '{TABLE}'::regclass").fetchone()[0]
            print(f"\nvia a stage / swap = {staged / base:.2f}x; in place / via a stage = {figure / staged:.2f}x; "
                  f"the check: {check * 1000:.1f} ms per input")
            print(f"{TABLE} after the runs: {size / 1e6:.0f} MB, {dead:,} dead rows (vacuum reclaims them)")
            print(f"in place {figure:.3f} s / swap {base:.3f} s")
            C.summary("postgres_swap", figure / base, 1.5)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
