"""Judging every notebook's freshness (one freshness-sensor tick, one `nb-assets status`)
against reading every run record once, as `nb-assets runs` does.

A record folder like a year of a busy project: NOTEBOOKS notebooks with RUNS
run records each (one run.json per run, a failure every tenth run), and a
DuckDB warehouse whose landing log holds a landing per run of each source.
Timed in one process, interleaved, median of N after a warm-up:
  baseline  runs/history.find_runs over the whole folder: stat and parse every run.json
  status    runs/status.project_status: the latest run and latest success of every
            notebook (newest record first, stopping at the first success), the
            landing log's latest landing per source, and the judgement
Target: status / baseline < 0.5 (the sensor asks every 30 s; it must not grow with the history).

    python benchmarks/freshness_status.py [--quick] [--runs N]
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()


def make_records(root: Path, notebooks: int, runs: int) -> None:
    start = datetime(2026, 1, 1, 6, tzinfo=timezone.utc)
    for n in range(notebooks):
        folder = root / f"nb_{n:04d}"
        for r in range(runs):
            run_id = f"{n:08x}-{r:04x}-4000-8000-{r:012x}"
            record = folder / run_id / "record"
            record.mkdir(parents=True)
            started = start + timedelta(days=r)
            failed = r % 10 == 9
            summary = {"run_id": run_id, "notebook": f"notebooks/nb_{n:04d}.ipynb", "status": "failed" if failed else "success",
                       "started_at": started.isoformat(), "duration_s": 42.0, "parameters": {"ds": started.date().isoformat()},
                       "error": {"kind": "cell-error", "type": "KeyError", "message": "'currency'", "cell": 4} if failed else None}
            path = record / "run.json"
            path.write_text(json.dumps(summary))
            os.utime(path, (started.timestamp() + 42, started.timestamp() + 42))


def make_log(path: Path, sources: int, runs: int) -> None:
    from nb_assets.warehouse.landing import LOG_DDL

    C.seed_duckdb(path, [
        *LOG_DDL,
        f"INSERT INTO nb_assets.landings SELECT range + 1, 'raw.t' || (range % {sources}), NULL, 10, "
        f"TIMESTAMPTZ '2026-01-01 05:00:00+00' + to_days(CAST(range // {sources} AS INTEGER)), 'bench' FROM range({sources * runs})",
    ])


def main() -> None:
    args = C.parse_args(__doc__, lambda p: p.add_argument("--runs", type=int, default=None))
    notebooks, per, runs = (20, 50, 3) if args.quick else (100, 365, args.runs or 7)
    C.print_machine("dagster")
    from nb_assets.runs.history import find_runs
    from nb_assets.runs.status import Watched, project_status

    with C.temp_dir("freshness") as tmp:
        records = tmp / "nb_assets"
        made = time.perf_counter()
        make_records(records, notebooks, per)
        warehouse = tmp / "warehouse.duckdb"
        make_log(warehouse, notebooks, per)
        print(f"{notebooks} notebooks x {per} records ({notebooks * per} run.json), "
              f"{notebooks * per} landings; made in {time.perf_counter() - made:.1f} s")
        watched = [Watched(f"nb_{n:04d}", f"notebooks/nb_{n:04d}.ipynb", ("a@example.com",), "cron", (f"raw.t{n}",),
                           (f"mart.o{n}",), "26h", waits_for_inputs=True)  # judged on its inputs' landings too
                   for n in range(notebooks)]

        def baseline() -> float:
            started = time.perf_counter()
            assert len(find_runs([records])) == notebooks * per
            return time.perf_counter() - started

        def status() -> float:
            started = time.perf_counter()
            result = project_status(watched, [records], str(warehouse), watched_since={})
            assert len(result.notebooks) == notebooks and result.landings_problem is None
            assert all(s.last_run is not None for s in result.notebooks)
            return time.perf_counter() - started

        times = C.time_round_robin({"baseline": baseline, "status": status}, runs)
    print(f"baseline (find_runs, every record)  {C.fmt_times(times['baseline'])}")
    print(f"status   (project_status)           {C.fmt_times(times['status'])}")
    C.summary("freshness_status", C.median(times["status"]) / C.median(times["baseline"]), 0.5)


if __name__ == "__main__":
    main()
