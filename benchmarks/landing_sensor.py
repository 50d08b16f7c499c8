"""One landing-sensor tick against the bare DuckDB query that reads the same new rows.

A warehouse whose landing log holds 100,000 landings of 1,000 source tables;
the sensor's cursor sits NEW rows before the end (NEW = 10, 100 and
1,000: every table landed once since the last tick, the most one tick reports). Timed in one process, interleaved, median
of N after a warm-up:
  bare    open the warehouse read-only, SELECT the NEW rows past the cursor, fetch them
  tick    the landing sensor's whole evaluation, as the daemon calls it
          (`sensor.evaluate_tick`): open, check the log, read, build one runless
          materialization per landing, check the batch was not reported before
          (one lookup in a Dagster instance on disk)
Target: tick / bare < 2x at NEW = 1,000. Also printed: what storing the tick's
events costs the daemon afterwards (Dagster's work, not the sensor's).

    python benchmarks/landing_sensor.py [--quick] [--runs N]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

TABLES = 1_000
LANDINGS = 100_000
BARE_SQL = 'SELECT id, "table", partition, rows, epoch(landed_at), source FROM nb_assets.landings WHERE id > $after ORDER BY id LIMIT $limit'


def make_log(path: Path) -> None:
    """100,000 landings round-robin over 1,000 tables, written as loaders would (one id each, in order)."""
    from nb_assets.warehouse.landing import LOG_DDL

    statements = [
        *LOG_DDL,
        f"""INSERT INTO nb_assets.landings (id, "table", partition, rows, landed_at, source)
            SELECT i, printf('raw.t%04d', i % {TABLES}), NULL, 100 + i % 7,
                   TIMESTAMPTZ '2026-11-01 00:00:00+00' + i * INTERVAL 1 SECOND, 'bench loader'
            FROM range(1, {LANDINGS + 1}) AS r(i)""",
        "CHECKPOINT",
    ]
    C.seed_duckdb(path, statements)


def _instance(home: Path):  # noqa: ANN202
    """A Dagster instance with SQLite storage on disk, as the daemon's."""
    import dagster as dg

    home.mkdir()
    return dg.DagsterInstance.local_temp(str(home))


def main() -> None:
    args = C.parse_args(__doc__, lambda p: p.add_argument("--runs", type=int, default=None))
    runs = args.runs or (5 if args.quick else 15)
    warnings.filterwarnings("ignore")
    import dagster as dg
    import duckdb

    from nb_assets.defs.automation import MAX_LANDINGS_PER_TICK, landing_sensor
    from nb_assets.defs.landing_sensor import parse_cursor  # the cursor is the last id plus the sources' digest

    C.print_machine("dagster", "duckdb")
    sources = {f"raw.t{i:04d}": dg.AssetKey(["raw", f"t{i:04d}"]) for i in range(TABLES)}
    sizes = [10, 100, MAX_LANDINGS_PER_TICK]
    results: dict[int, tuple[list[float], list[float]]] = {}
    with C.temp_dir("landing", memory=False) as tmp:
        warehouse = tmp / "warehouse.duckdb"
        make_log(warehouse)
        sensor = landing_sensor(warehouse, sources)
        instance = _instance(tmp / "dagster_home")
        print(f"\nlog: {LANDINGS:,} landings of {TABLES:,} tables; median of {runs} interleaved runs after 1 warm-up\n")
        for new in sizes:
            after = LANDINGS - new

            def bare(after: int = after, new: int = new) -> float:
                started = time.perf_counter()
                with duckdb.connect(str(warehouse), read_only=True) as con:
                    rows = con.execute(BARE_SQL, {"after": after, "limit": new}).fetchall()
                elapsed = time.perf_counter() - started
                assert len(rows) == new
                return elapsed

            def tick(after: int = after, new: int = new) -> float:
                context = dg.build_sensor_context(instance=instance, cursor=str(after))
                started = time.perf_counter()
                data = sensor.evaluate_tick(context)
                elapsed = time.perf_counter() - started
                assert len(data.asset_events) == new and parse_cursor(data.cursor)[0] == LANDINGS
                return elapsed

            times = C.time_round_robin({"bare": bare, "tick": tick}, runs)
            results[new] = (times["bare"], times["tick"])
        # What the daemon does after a tick: store each event (Dagster's work, not the sensor's).
        events = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=str(LANDINGS - 100))).asset_events
        started = time.perf_counter()
        for event in events:
            instance.report_runless_asset_event(event)
        store_ms = 1000 * (time.perf_counter() - started) / len(events)
    for new, (bare_t, tick_t) in results.items():
        ratio = C.median(tick_t) / C.median(bare_t)
        print(f"NEW={new:6,d}  bare {C.fmt_times(bare_t)}")
        print(f"             tick {C.fmt_times(tick_t)}   ratio {ratio:.2f}x   "
              f"{1e6 * (C.median(tick_t) - C.median(bare_t)) / new:.0f} us/landing over bare")
    print(f"\nafter a tick the daemon stores its events at {store_ms:.1f} ms each (SQLite instance on disk)")
    bare_t, tick_t = results[1_000]
    C.summary("landing_sensor", C.median(tick_t) / C.median(bare_t), 2.0)


if __name__ == "__main__":
    main()
