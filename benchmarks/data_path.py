"""The data path: SQL input → Parquet (prefetch) and Parquet → table (load).

A DuckDB table of 10 million rows (1 million with --quick; ints, doubles,
varchar, date). Medians of in-process timings, each op on its own connection:
  baseline  DuckDB's own `COPY (SELECT ...) TO 'x.parquet'` and
            `CREATE TABLE t2 AS SELECT * FROM read_parquet('x.parquet')`
  figure    DuckDBWarehouse.prefetch (same query, bound params, to Parquet) and
            DuckDBWarehouse.load of the file prefetch wrote
Target: (prefetch + load) / (COPY + CTAS) < 1.3x. Then tries prefetch
alternatives (batch size, row groups, a writer thread, compression, DuckDB's
own COPY with external access still off but `allowed_directories` = the
run's input folder) to say which would meet the target.

Files live on tmpfs (/dev/shm) unless --disk: on a shared VM, disk writeback
and fsync noise swamps the difference between two Parquet writers.

    python benchmarks/data_path.py [--quick] [--runs N] [--disk]
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

import duckdb  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse  # noqa: E402
from nb_assets.warehouse.base import PrefetchRequest  # noqa: E402

SEED = """CREATE TABLE raw.events AS SELECT
    range AS event_id,
    (hash(range) % 100000)::INTEGER AS customer_id,
    (hash(range * 7) % 1000000) / 100.0 AS amount,
    ((hash(range * 13) % 10000) / 7.0)::DOUBLE AS score,
    'sku-' || (hash(range * 3) % 50000)::VARCHAR AS sku,
    ['US', 'GB', 'DE', 'FR', 'JP'][1 + (range % 5)::INTEGER] AS country,
    DATE '2026-01-01' + (range % 365)::INTEGER AS ds
FROM range({rows})"""
QUERY = "SELECT event_id, customer_id, amount, score, sku, country, ds FROM raw.events WHERE ds <= CAST($ds AS DATE)"
PARAMS = {"ds": "2026-12-31"}  # every row
LOCKED = {"enable_external_access": False, "lock_configuration": True}


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def baseline_copy(wh: Path, dest: Path) -> None:
    with duckdb.connect(str(wh), read_only=True) as con:
        con.execute(f"COPY ({QUERY}) TO '{dest}' (FORMAT parquet)", PARAMS)


def baseline_load(wh: Path, src: Path) -> None:
    with duckdb.connect(str(wh)) as con:
        con.execute(f"CREATE OR REPLACE TABLE main.t2 AS SELECT * FROM read_parquet('{src}')")


def arrow_prefetch(wh: Path, dest: Path, *, batch: int = 1 << 17, row_group: int | None = None,
                   thread: bool = False, **writer_options) -> None:  # noqa: ANN003
    """What DuckDBWarehouse.prefetch does, with its knobs exposed."""
    with duckdb.connect(str(wh), read_only=True, config=LOCKED) as con:
        reader = con.sql(QUERY, params=PARAMS).to_arrow_reader(batch)
        with pq.ParquetWriter(dest, reader.schema, **writer_options) as writer:
            if row_group:
                pending, size = [], 0
                for b in reader:
                    pending.append(b)
                    size += b.num_rows
                    if size >= row_group:
                        writer.write_batch(_concat(pending), row_group_size=row_group)
                        pending, size = [], 0
                if pending:
                    writer.write_batch(_concat(pending), row_group_size=row_group)
            elif thread:  # DuckDB produces the next batch while pyarrow writes this one
                q: queue.Queue = queue.Queue(maxsize=4)
                worker = threading.Thread(target=lambda: [q.put(b) for b in reader] + [q.put(None)])
                worker.start()
                while (b := q.get()) is not None:
                    writer.write_batch(b)
                worker.join()
            else:
                for b in reader:
                    writer.write_batch(b)


def _concat(batches):  # noqa: ANN001, ANN202
    import pyarrow as pa

    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def copy_prefetch(wh: Path, dest: Path) -> None:
    """DuckDB's own writer, external access still off except the input folder."""
    with duckdb.connect(str(wh), read_only=True) as con:
        con.execute(f"SET allowed_directories = ['{dest.parent}/']")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        con.execute(f"COPY (\n{QUERY}\n) TO '{dest}' (FORMAT parquet)", PARAMS)


def main() -> None:
    def options(p):  # noqa: ANN001, ANN202
        p.add_argument("--runs", type=int, default=5)
        p.add_argument("--disk", action="store_true", help="use the disk temp folder, not tmpfs (noisier: fsync, writeback)")

    args = C.parse_args(__doc__, options)
    rows = 1_000_000 if args.quick else 10_000_000
    C.print_machine("duckdb", "pyarrow")
    with C.temp_dir("data", memory=not args.disk) as tmp:
        print(f"files in {tmp} ({'disk' if args.disk or not str(tmp).startswith('/dev/shm') else 'tmpfs'})")
        inputs = tmp / "input"
        inputs.mkdir()
        wh = tmp / "warehouse.duckdb"
        seeded = timed(lambda: C.seed_duckdb(wh, ["CREATE SCHEMA raw", SEED.format(rows=rows)]))
        print(f"\n{rows:,} rows seeded in {seeded:.1f} s; median of {args.runs} runs after 1 warm-up\n")
        warehouse = DuckDBWarehouse(wh)
        base_file, nb_file = tmp / "base.parquet", inputs / "events.parquet"
        request = PrefetchRequest(name="events", query=QUERY, params=PARAMS, cell=1, dest=nb_file)
        ops = {
            "COPY TO parquet": lambda: baseline_copy(wh, base_file),
            "CTAS read_parquet": lambda: baseline_load(wh, base_file),
            "prefetch": lambda: warehouse.prefetch("bench.ipynb", [request]),
            "load": lambda: warehouse.load("bench.ipynb", {"mart.events": nb_file}),
            "load (COPY file)": lambda: warehouse.load("bench.ipynb", {"mart.events_b": base_file}),
        }
        times = C.time_round_robin({k: (lambda f=f: timed(f)) for k, f in ops.items()}, args.runs)
        med = {k: C.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:22s} {C.fmt_times(v)}")
        sizes = {p.name: (p.stat().st_size / 1e6, pq.read_metadata(p).num_row_groups) for p in (base_file, nb_file)}
        print("files: " + "; ".join(f"{n} {mb:.0f} MB, {rg} row groups" for n, (mb, rg) in sizes.items()))
        prefetch_ratio = med["prefetch"] / med["COPY TO parquet"]
        load_ratio = med["load"] / med["CTAS read_parquet"]
        total = (med["prefetch"] + med["load"]) / (med["COPY TO parquet"] + med["CTAS read_parquet"])
        print(f"\nprefetch ratio {prefetch_ratio:.2f}x; load ratio {load_ratio:.2f}x "
              f"(of DuckDB's own file: {med['load (COPY file)'] / med['CTAS read_parquet']:.2f}x); total {total:.2f}x")

        print("\nprefetch alternatives (ratio vs COPY TO parquet; total if prefetch used it):")
        dest = inputs / "alt.parquet"
        alternatives = {
            "1<<20 batches, no dictionary (current)": lambda: arrow_prefetch(wh, dest, batch=1 << 20, use_dictionary=False),
            "arrow reader 1<<17 (before)": lambda: arrow_prefetch(wh, dest),
            "arrow reader 1<<20": lambda: arrow_prefetch(wh, dest, batch=1 << 20),
            "1M-row row groups": lambda: arrow_prefetch(wh, dest, row_group=1 << 20),
            "writer thread": lambda: arrow_prefetch(wh, dest, thread=True),
            "no dictionary": lambda: arrow_prefetch(wh, dest, use_dictionary=False),
            "compression none": lambda: arrow_prefetch(wh, dest, compression="none"),
            "zstd": lambda: arrow_prefetch(wh, dest, compression="zstd"),
            "DuckDB COPY, allowed_directories": lambda: copy_prefetch(wh, dest),
        }
        alt_sizes: dict[str, float] = {}

        def run_alt(name: str, fn) -> float:  # noqa: ANN001
            elapsed = timed(fn)
            alt_sizes[name] = dest.stat().st_size / 1e6
            return elapsed

        alt_times = C.time_round_robin({k: (lambda k=k, f=f: run_alt(k, f)) for k, f in alternatives.items()}, args.runs)
        base_sum = med["COPY TO parquet"] + med["CTAS read_parquet"]
        for name, values in alt_times.items():
            m = C.median(values)
            load = med["load (COPY file)"] if "COPY" in name else med["load"]
            print(f"  {name:34s} {m:7.3f} s  ratio {m / med['COPY TO parquet']:.2f}x  total {(m + load) / base_sum:.2f}x"
                  f"  {alt_sizes[name]:4.0f} MB")
    C.summary("data_path", total, 1.3)


if __name__ == "__main__":
    main()
