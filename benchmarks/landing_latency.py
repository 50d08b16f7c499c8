"""Latency from `nb-assets land` to the dependent notebook's run starting, with a real daemon.

A small project (one notebook reading raw.src, `on_inputs_landed=True`), a
`dagster-daemon` with its default instance (SQLite, queued runs, as under
`dagster dev`) and every sensor at INTERVAL seconds. Each of N landings is
`nb-assets land raw.src`; the script waits for the notebook's run to finish
before the next landing, and records per landing:
  land      the `nb-assets land` process, start to exit (mostly loading the project)
  reported  commit of the landing row → its event on raw.src (the landing sensor)
  requested commit → the run created by the automation sensor
  started   commit → the run's RUN_START
  total     `nb-assets land` started → RUN_START (the headline)
Target: total within two sensor intervals. The sensors tick independently, so
a landing waits up to one interval for each of the two before its run is asked for.

    python benchmarks/landing_latency.py [--quick] [--landings N] [--interval S]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

DEFS = '''
from pathlib import Path
from nb_assets import NotebookAsset, notebook_definitions
BASE_DIR = Path(__file__).parent
defs = notebook_definitions([NotebookAsset("notebooks/copy.ipynb", on_inputs_landed=True)],
                            warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR, sandbox="local",
                            sensor_interval_s={interval})
'''
WAIT_S = 600


def make_project(folder: Path, interval: int) -> None:
    from nb_assets.warehouse.landing import LOG_DDL

    C.write_notebook(folder / "notebooks" / "copy.ipynb", [
        ("markdown", "# Copy\n\nCopies raw.src whenever it lands."),
        ("code", C.SETUP_SOURCE),
        ("code", "%%sql src\nSELECT * FROM raw.src"),
        ("code", 'output("mart.copy", src)'),
    ])
    (folder / "definitions.py").write_text(DEFS.format(interval=interval))
    C.seed_duckdb(folder / "warehouse.duckdb", ["CREATE SCHEMA raw", "CREATE TABLE raw.src AS SELECT range AS i FROM range(10)", *LOG_DDL])


def wait(what: str, check, log: Path):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise RuntimeError(f"timed out waiting for {what}; daemon log:\n{tail}")


def main() -> None:
    def extra(parser) -> None:  # noqa: ANN001
        parser.add_argument("--landings", type=int, default=None)
        parser.add_argument("--interval", type=int, default=15, help="seconds between sensor ticks (the library's default)")

    args = C.parse_args(__doc__, extra)
    count = args.landings or (3 if args.quick else 20)
    warnings.filterwarnings("ignore")
    import dagster as dg

    C.print_machine("dagster", "duckdb")
    with C.temp_dir("latency") as tmp:
        project, home = tmp / "project", tmp / "dagster_home"
        project.mkdir()
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        make_project(project, args.interval)
        env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": os.pathsep.join([str(C.REPO), os.environ.get("PYTHONPATH", "")])}
        log = home / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-f", "definitions.py"], cwd=project, env=env,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        os.environ["DAGSTER_HOME"] = str(home)
        instance = dg.DagsterInstance.get()
        key = dg.AssetKey(["raw", "src"])
        try:
            # Conditions start remembering at their first evaluation; land after it.
            wait("the automation sensor's first tick", lambda: _ticked(instance, "nb_assets_automation"), log)
            rows = []
            for i in range(count):
                runs_before = len(instance.get_run_records())
                started = time.time()
                land = subprocess.run([sys.executable, "-m", "nb_assets.cli", "land", "raw.src", "--json"], cwd=project,
                                      env=env, capture_output=True, text=True, check=True)
                exited = time.time()
                landing = json.loads(land.stdout)["landing"]
                committed = landing["landed_at"]
                reported = wait("the landing to be reported", lambda: _reported_at(instance, key, landing["id"]), log)
                run = wait("the notebook's run", lambda: _new_run(instance, runs_before), log)
                record = wait("the run to start", lambda: _started(instance, run.run_id), log)
                wait("the run to finish", lambda: instance.get_run_by_id(run.run_id).is_finished, log)
                row = (exited - started, reported - committed, record.create_timestamp.timestamp() - committed,
                       record.start_time - committed, record.start_time - started)
                rows.append(row)
                print(f"landing {i + 1:2d}: land {row[0]:5.1f} s  reported {row[1]:5.1f} s  requested {row[2]:5.1f} s  "
                      f"started {row[3]:5.1f} s  total {row[4]:5.1f} s", flush=True)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
            instance.dispose()
    print(f"\n{count} landings, sensor interval {args.interval} s (two intervals: {2 * args.interval} s)")
    for index, name in enumerate(("land", "reported", "requested", "started", "total")):
        values = sorted(r[index] for r in rows)
        p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
        print(f"{name:9s} median {C.median(values):5.1f} s  p90 {p90:5.1f} s  min {values[0]:5.1f}  max {values[-1]:5.1f}")
    within = sum(1 for r in rows if r[4] <= 2 * args.interval)
    print(f"runs started within two intervals of `nb-assets land`: {within} of {count}; "
          f"of the landing's commit: {sum(1 for r in rows if r[3] <= 2 * args.interval)} of {count}")
    C.summary("landing_latency", C.median([r[4] for r in rows]) / (2 * args.interval), 1.0)


def _ticked(instance, name: str) -> bool:  # noqa: ANN001
    state = next((s for s in instance.all_instigator_state() if s.instigator_name == name), None)
    return bool(state and instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1))


def _reported_at(instance, key, landing_id: int) -> float | None:  # noqa: ANN001
    records = instance.fetch_materializations(key, limit=1).records
    if records and records[0].asset_materialization.metadata["landing/id"].value == landing_id:
        return records[0].timestamp
    return None


def _new_run(instance, before: int):  # noqa: ANN001, ANN202
    records = instance.get_run_records()
    return records[0].dagster_run if len(records) > before else None


def _started(instance, run_id: str):  # noqa: ANN001, ANN202
    record = instance.get_run_record_by_id(run_id)
    return record if record and record.start_time else None


if __name__ == "__main__":
    main()
