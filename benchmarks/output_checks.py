"""What output checks cost inside the load: a 10M-row output, checked in the load's transaction,
against the same checks run by DuckDB directly on the table after a load without them.

  checked     DuckDBWarehouse.load(outputs, checks=...): write, audit (unique, not_null,
              accepted_values, row_count, relationships), commit
  baseline    DuckDBWarehouse.load(outputs), then the very same check queries (sql/check_queries.py)
              run by DuckDB on the loaded table, on a fresh connection

The ratio is checked / baseline (target <= 1.2x), each the median of interleaved runs; each run
loads into a fresh copy of the same starting warehouse.

    python benchmarks/output_checks.py [--rows 10000000] [--runs 3] [--quick]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

import duckdb  # noqa: E402

from nb_assets.inbox.checks import accepted_values, not_null, relationships, row_count, unique  # noqa: E402
from nb_assets.sql.check_queries import compile_check, count_query, source  # noqa: E402
from nb_assets.warehouse.checks import CheckRun  # noqa: E402
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse  # noqa: E402

TABLE = "mart.orders"
CHECKS = (unique("order_id"), not_null(["order_id", "customer_id"]), accepted_values("status", ["paid", "refunded", "pending"]),
          row_count(min=1), relationships("customer_id", to="mart.customers.customer_id"))


def main() -> None:
    args = C.parse_args(__doc__, lambda p: (p.add_argument("--rows", type=int, default=10_000_000), p.add_argument("--runs", type=int, default=3)))
    rows = 200_000 if args.quick else args.rows
    C.print_machine("duckdb")
    with C.temp_dir("nb-bench-checks-") as tmp:
        output = tmp / "orders.parquet"
        start = tmp / "start.duckdb"
        with duckdb.connect(str(start)) as con:
            con.execute("CREATE SCHEMA mart")
            con.execute("CREATE TABLE mart.customers AS SELECT range AS customer_id FROM range(100000)")
            con.execute(
                f"COPY (SELECT range AS order_id, range % 100000 AS customer_id, "
                f"['paid', 'refunded', 'pending'][1 + range % 3] AS status, range * 0.5 AS amount FROM range({rows})) "
                f"TO '{output}' (FORMAT parquet)"
            )
        print(f"output: {rows:,} rows, {output.stat().st_size / 1e6:.0f} MB Parquet; checks: {', '.join(c.describe() for c in CHECKS)}")
        counter = iter(range(10**6))

        def fresh() -> Path:
            path = tmp / f"wh{next(counter)}.duckdb"
            shutil.copyfile(start, path)
            return path

        def checked() -> float:
            path = fresh()
            began = time.perf_counter()
            run = CheckRun({TABLE: CHECKS})
            DuckDBWarehouse(path).load("bench.ipynb", {TABLE: output}, checks=run)
            took = time.perf_counter() - began
            assert all(o.passed for o in run.outcomes), run.outcomes
            path.unlink()
            return took

        def baseline() -> float:
            path = fresh()
            began = time.perf_counter()
            DuckDBWarehouse(path).load("bench.ipynb", {TABLE: output})
            with duckdb.connect(str(path)) as con:
                for check in CHECKS:
                    failing = compile_check(check, source(TABLE)).failing
                    assert failing is not None and con.execute(count_query(failing)).fetchone()[0] == 0
            took = time.perf_counter() - began
            path.unlink()
            return took

        times = C.time_round_robin({"checked": checked, "baseline": baseline}, runs=1 if args.quick else args.runs)
    for name, values in times.items():
        print(f"{name:9s} {C.fmt_times(values)}")
    C.summary("checks inside the load vs load then checks", C.median(times["checked"]) / C.median(times["baseline"]), 1.2)


if __name__ == "__main__":
    main()
