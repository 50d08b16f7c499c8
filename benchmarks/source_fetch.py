"""Fetching declared sources: from an S3-compatible server, and from another Postgres database.

S3: moto's standalone server on loopback (moto[server], the server s3fs tests
itself against) holding one Parquet object of 10 million rows (--rows to change;
ints, doubles, text). Interleaved run by run:
  baseline  s3fs + pyarrow reading the same object directly (pq.read_table)
  figure    nb_assets.sources.fetch_sources of `Source(path="s3://...")`: the
            object to the run folder as Parquet, its rows counted, hashed, recorded
  target    figure / baseline ≤ 1.2x

Postgres: a throwaway cluster (nb_assets.deploy.pg_cluster) with a second
database holding the same rows as a table:
  baseline  Postgres's own `COPY (SELECT * FROM t) TO STDOUT (FORMAT binary)` into a file
  figure    a `Source(connection=..., table=...)` fetch (ADBC, READ ONLY, to Parquet)
  target    figure / baseline ≤ 1.3x

    python benchmarks/source_fetch.py [--rows N] [--runs N] [--quick] [--only s3|postgres]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from nb_assets.sources.fetch import fetch_sources  # noqa: E402
from nb_assets.sources.model import Source  # noqa: E402
from nb_assets.warehouse.source_tables import read_table  # noqa: E402


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def rows_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(7)
    return pa.table({
        "event_id": np.arange(rows, dtype=np.int64),
        "customer_id": rng.integers(0, 100_000, rows, dtype=np.int32),
        "amount": rng.random(rows) * 1000,
        "score": rng.random(rows),
        "country": pa.array(np.array(["US", "GB", "DE", "FR", "JP"])[rng.integers(0, 5, rows)]),
    })


def bench_s3(rows: int, runs: int, work: Path) -> float:
    import subprocess
    import urllib.request

    import s3fs

    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen([C.bin_path("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(endpoint, timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                          AWS_ENDPOINT_URL=endpoint)
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        local = work / "events.parquet"
        pq.write_table(rows_table(rows), local)
        fs.put(str(local), "bench/events/part-0.parquet")
        print(f"S3: {rows:,} rows, one object of {local.stat().st_size / 1e6:.0f} MB on moto at {endpoint}")
        source = Source("events", path="s3://bench/events/part-0.parquet")
        dest = work / "run"

        def direct() -> None:
            table = pq.read_table("bench/events/part-0.parquet", filesystem=s3fs.S3FileSystem(skip_instance_cache=True))
            assert table.num_rows == rows

        def fetched() -> None:
            got = fetch_sources([source], ["events"], {}, dest, base_dir=work)["events"]
            assert got.rows == rows

        times = C.time_round_robin({"s3fs + pyarrow direct": lambda: timed(direct),
                                    "fetch_sources (to Parquet)": lambda: timed(fetched)}, runs)
        for name, values in times.items():
            print(f"  {name:30} {C.fmt_times(values)}")
        ratio = C.median(times["fetch_sources (to Parquet)"]) / C.median(times["s3fs + pyarrow direct"])
        C.summary("source_fetch_s3", ratio, 1.2)
        return ratio
    finally:
        server.terminate()
        server.wait(timeout=30)


def bench_postgres(rows: int, runs: int, work: Path) -> float:
    import psycopg

    from nb_assets.deploy.pg_cluster import start_cluster

    with tempfile.TemporaryDirectory(prefix="nb_bench_src_pg_") as cluster_dir:
        cluster = start_cluster(Path(cluster_dir))
        try:
            with psycopg.connect(cluster.dsn(), autocommit=True) as con:
                con.execute("CREATE DATABASE crm")
            dsn = cluster.dsn("crm")
            with psycopg.connect(dsn, autocommit=True) as con:
                con.execute(f"""CREATE TABLE public.events AS SELECT g::bigint AS event_id,
                    (hashint8(g) % 100000)::integer AS customer_id, (abs(hashint8(g * 7)) % 1000000) / 100.0::float8 AS amount,
                    ((abs(hashint8(g * 13)) % 10000) / 7.0)::float8 AS score,
                    (ARRAY['US', 'GB', 'DE', 'FR', 'JP'])[1 + (g % 5)::integer] AS country
                    FROM generate_series(0, {rows - 1}) g""")
                con.execute("VACUUM ANALYZE public.events")
            print(f"Postgres: {rows:,} rows in a second database")
            binary, dest = work / "events.bin", work / "pg"

            def copy_out() -> None:
                with psycopg.connect(dsn) as con, con.cursor() as cur, binary.open("wb") as out:
                    with cur.copy("COPY (SELECT * FROM public.events) TO STDOUT (FORMAT binary)") as copy:
                        for chunk in copy:
                            out.write(chunk)

            os.environ["NB_ASSETS_CONNECTION_CRM"] = dsn
            source = Source("events", connection="crm", table="public.events")

            def fetched() -> None:
                got = fetch_sources([source], ["events"], {}, dest, base_dir=work, read_table=read_table)["events"]
                assert got.rows == rows

            times = C.time_round_robin({"COPY TO STDOUT (binary)": lambda: timed(copy_out),
                                        "fetch_sources (ADBC → Parquet)": lambda: timed(fetched)}, runs)
            for name, values in times.items():
                print(f"  {name:30} {C.fmt_times(values)}")
            ratio = C.median(times["fetch_sources (ADBC → Parquet)"]) / C.median(times["COPY TO STDOUT (binary)"])
            C.summary("source_fetch_postgres", ratio, 1.3)
            return ratio
        finally:
            cluster.stop()


def main() -> None:
    args = C.parse_args(__doc__, lambda p: (p.add_argument("--rows", type=int, default=None),
                                            p.add_argument("--runs", type=int, default=5),
                                            p.add_argument("--only", choices=("s3", "postgres"), default=None)))
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    runs = 2 if args.quick else args.runs
    C.print_machine("s3fs", "moto", "adbc-driver-postgresql", "pyarrow")
    with C.temp_dir("source_fetch") as work:
        if args.only in (None, "s3"):
            bench_s3(rows, runs, work)
        if args.only in (None, "postgres"):
            bench_postgres(rows, runs, work)


if __name__ == "__main__":
    main()
