"""nb_assets against dagstermill: the same notebook, end to end through Dagster.

Workload, identical logic on both sides: read 100,000 rows of raw.events from
a DuckDB warehouse, deduplicate them on event_id in pandas (80,000 left), and
write the result back as the table mart.events_dedup. Each side is timed as
one whole `dagster asset materialize -f defs.py --select mart/events_dedup`
process (same DAGSTER_HOME, telemetry off), each with its definitions' own
executor: Dagster's default for dagstermill (a spawned process per step),
nb_assets' for nb_assets (a one-step run executes in the run's process):
  dagstermill  `dagstermill.define_dagstermill_asset(...)` with
               `ConfigurableLocalOutputNotebookIOManager` as
               "output_notebook_io_manager"; the notebook reads the rows itself
               (`duckdb.connect(..., read_only=True)`) and writes the table itself
               (`CREATE OR REPLACE TABLE`), as a dagstermill user writes it
  nb-local     `notebook_definitions([NotebookAsset(nb)], warehouse=..., sandbox="local")`
               on the same logic in the nb_assets contract (`%%sql events`,
               `output("mart.events_dedup", df)`)
  nb-docker    the same with sandbox="docker" (skipped, with the reason, without
               a Docker engine or the sandbox image); 4 s untimed after each run
               so the warm spare it leaves has booted, as in run_overhead.py
  dagster-noop one no-op `@dg.asset`: Dagster's own floor with its default
               executor, a reference; dagster-noop-inproc the same with `in_process`.
               What each side adds above the floor of its own path is printed too
  dagstermill-inproc  dagstermill with `in_process` in run config, a reference:
               how much of the difference is where the step executes
Medians of N interleaved rounds after a warm-up; ratio nb_assets / dagstermill.
Target: nb-local ≤ 0.7x dagstermill.

Second figure, no target: definitions load time of 200 notebooks each way, a
fresh `python -c "import defs"` (warm nb_assets parse cache), wall and CPU
time and the process's peak RSS.

    python benchmarks/vs_dagstermill.py [--quick] [--runs N]

dagstermill 0.29.27 pins jupyter-client<8, so it lives in its own environment,
`.venv-bench` (`make bench` makes it; it is never installed into `.venv`).
Started with another Python, the script re-executes itself under
`.venv-bench/bin/python`; both sides then run with the same dagster, papermill,
jupyter_client and kernel. Without `.venv-bench` it prints how to make it and
a skipped line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

BENCH_VENV = C.REPO / ".venv-bench"
BENCH_BIN = BENCH_VENV / "bin"
SETTLE_S = 4.0  # untimed, after each Docker run: its spare boots before the next variant starts
ROWS, DISTINCT = 100_000, 80_000
LOAD_N = 200
TARGET = 0.7


def ensure_bench_venv() -> bool:
    """Re-exec under .venv-bench's Python when it exists; False when it does not."""
    python = BENCH_BIN / "python"
    if Path(sys.prefix).resolve() == BENCH_VENV.resolve():
        if str(C.REPO) not in sys.path:
            sys.path.insert(0, str(C.REPO))
        return True
    if python.exists():
        os.execv(str(python), [str(python), *sys.argv])
    return False


# --- the two notebooks ----------------------------------------------------------

DESCRIPTION = "# Events, deduplicated\n\nOne row per event_id from the raw event feed."
READ_SQL = "SELECT event_id, user_id, amount, ts, kind FROM raw.events"
DEDUP = 'events_dedup = events.drop_duplicates("event_id")'


def nb_assets_notebook(path: Path, table: str = "mart.events_dedup") -> Path:
    return C.write_notebook(path, [
        ("markdown", DESCRIPTION),
        ("code", C.SETUP_SOURCE),
        ("code", f"%%sql events\n{READ_SQL}"),
        ("code", DEDUP),
        ("code", f'output("{table}", events_dedup)'),
    ])


def dagstermill_notebook(path: Path, warehouse: Path, table: str = "mart.events_dedup") -> Path:
    """What a dagstermill user writes: the notebook opens the warehouse itself, both ways.

    The path is a plain cell: dagstermill replaces a `parameters` cell with its own at run time."""
    return C.write_notebook(path, [
        ("markdown", DESCRIPTION),
        ("code", f"import duckdb\nimport pandas as pd\n\nwarehouse = {str(warehouse)!r}"),
        ("code", f'with duckdb.connect(warehouse, read_only=True) as con:\n    events = con.sql("{READ_SQL}").df()'),
        ("code", DEDUP),
        ("code", "with duckdb.connect(warehouse) as con:\n"
                 '    con.execute("CREATE SCHEMA IF NOT EXISTS mart")\n'
                 '    con.register("events_dedup_df", events_dedup)\n'
                 f'    con.execute("CREATE OR REPLACE TABLE {table} AS SELECT * FROM events_dedup_df")'),
    ])


def seed_warehouse(path: Path) -> Path:
    return C.seed_duckdb(path, [
        "CREATE SCHEMA raw",
        f"""CREATE TABLE raw.events AS SELECT
              (i % {DISTINCT})::BIGINT AS event_id, (i * 7919 % 5000)::BIGINT AS user_id,
              (i % 997) * 1.25 AS amount, TIMESTAMP '2026-11-01' + to_seconds(i % 86400) AS ts,
              'kind_' || (i % 13) AS kind
            FROM range({ROWS}) t(i)""",
    ])


# --- definitions modules ------------------------------------------------------

NB_DEFS = '''
from nb_assets import NotebookAsset, notebook_definitions
defs = notebook_definitions([NotebookAsset({nb!r})], warehouse={wh!r}, sandbox={sandbox!r})
'''

DM_DEFS = '''
import dagster as dg
from dagstermill import ConfigurableLocalOutputNotebookIOManager, define_dagstermill_asset
events_dedup = define_dagstermill_asset(
    name="events_dedup", key_prefix="mart", notebook_path={nb!r},
    deps=[dg.AssetKey(["raw", "events"])],
)
defs = dg.Definitions(
    assets=[dg.AssetSpec(["raw", "events"]), events_dedup],
    resources={{"output_notebook_io_manager": ConfigurableLocalOutputNotebookIOManager()}},
)
'''

# Dagster's own floor: one no-op asset, same executor (a reference, as in run_overhead.py).
NOOP_DEFS = '''
import dagster as dg
@dg.asset
def noop() -> None:
    pass
defs = dg.Definitions(assets=[noop])
'''

NB_LOAD_DEFS = '''
from pathlib import Path
from nb_assets import NotebookAsset, notebook_definitions
HERE = Path(__file__).parent
NOTEBOOKS = [NotebookAsset(f"nb/events_{{i}}.ipynb") for i in range({n})]
defs = notebook_definitions(NOTEBOOKS, warehouse={wh!r}, base_dir=HERE, sandbox="local")
'''

# raw/events declared too, so both graphs hold the same keys.
DM_LOAD_DEFS = '''
from pathlib import Path
import dagster as dg
from dagstermill import ConfigurableLocalOutputNotebookIOManager, define_dagstermill_asset
HERE = Path(__file__).parent
ASSETS = [
    define_dagstermill_asset(name=f"events_dedup_{{i}}", key_prefix="mart",
                             notebook_path=str(HERE / f"dm/events_{{i}}.ipynb"),
                             deps=[dg.AssetKey(["raw", "events"])])
    for i in range({n})
]
defs = dg.Definitions(
    assets=[dg.AssetSpec(["raw", "events"]), *ASSETS],
    resources={{"output_notebook_io_manager": ConfigurableLocalOutputNotebookIOManager()}},
)
'''


def run_measured(argv: list[str], *, env: dict[str, str], cwd: Path) -> tuple[float, float, float]:
    """Wall s, CPU s (user + system) and peak RSS MB of one process (ru_maxrss from wait4)."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}:\n"
                               f"{out.read().decode(errors='replace')[-4000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measured(argv: list[str], env: dict[str, str], cwd: Path, extra: dict[str, list[tuple[float, float]]],
             name: str, settle: float = 0.0) -> Callable[[], float]:
    """A round-robin variant returning wall time, keeping (CPU, RSS) of each call in extra[name]."""
    def run() -> float:
        wall, cpu, rss = run_measured(argv, env=env, cwd=cwd)
        extra.setdefault(name, []).append((cpu, rss))
        if settle:
            time.sleep(settle)
        return wall
    return run


def table_rows(warehouse: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def materialize_figure(tmp: Path, runs: int) -> dict[str, list[float]]:
    wh_nb = seed_warehouse(tmp / "wh_nb.duckdb")
    wh_dm = seed_warehouse(tmp / "wh_dm.duckdb")
    nb = nb_assets_notebook(tmp / "events_dedup.ipynb")
    dm = dagstermill_notebook(tmp / "dm" / "events_dedup.ipynb", wh_dm)
    (tmp / "defs_local.py").write_text(NB_DEFS.format(nb=str(nb), wh=str(wh_nb), sandbox="local"))
    (tmp / "defs_docker.py").write_text(NB_DEFS.format(nb=str(nb), wh=str(wh_nb), sandbox="docker"))
    (tmp / "defs_dagstermill.py").write_text(DM_DEFS.format(nb=str(dm)))
    (tmp / "defs_noop.py").write_text(NOOP_DEFS)
    dagster_home = tmp / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {"DAGSTER_HOME": str(dagster_home), "NB_ASSETS_CACHE": str(tmp / "cache")}

    def argv(defs: str, select: str) -> list[str]:
        return [str(BENCH_BIN / "dagster"), "asset", "materialize", "-f", str(tmp / defs), "--select", select]

    def materialize(defs: str, settle: float = 0.0, select: str = "mart/events_dedup",
                    extra: tuple[str, ...] = ()) -> Callable[[], float]:
        def run() -> float:
            took = C.time_process([*argv(defs, select), *extra], env=env, cwd=tmp)
            time.sleep(settle)
            return took
        return run

    variants = {"dagstermill": materialize("defs_dagstermill.py"), "nb-local": materialize("defs_local.py")}
    reason = C.docker_reason()
    if reason is None:
        variants["nb-docker"] = materialize("defs_docker.py", SETTLE_S)
    variants["dagster-noop"] = materialize("defs_noop.py", select="noop")
    in_process = ("--config-json", json.dumps({"execution": {"config": {"in_process": {}}}}))
    variants["dagster-noop-inproc"] = materialize("defs_noop.py", select="noop", extra=in_process)
    variants["dagstermill-inproc"] = materialize("defs_dagstermill.py", extra=in_process)
    print(f"\nmaterialize: {runs} interleaved rounds after 1 warm-up; whole-process wall time "
          f"({ROWS:,} rows in, {DISTINCT:,} out)")
    times = C.time_round_robin(variants, runs)
    for label, wh in (("nb_assets", wh_nb), ("dagstermill", wh_dm)):
        rows = table_rows(wh, "mart.events_dedup")
        print(f"  {label} wrote mart.events_dedup: {rows:,} rows" + ("" if rows == DISTINCT else "  (UNEXPECTED)"))

    base = C.median(times["dagstermill"])
    print()
    for name, values in times.items():
        ratio = C.median(values) / base
        note = {"dagstermill": " (baseline)", "dagster-noop": f"  ratio {ratio:.2f}x (reference: Dagster's floor)",
                "dagster-noop-inproc": f"  ratio {ratio:.2f}x (reference: Dagster's floor, in_process)",
                "dagstermill-inproc": f"  ratio {ratio:.2f}x (reference: dagstermill in_process)"}.get(
            name, f"  ratio {ratio:.2f}x (target ≤ {TARGET:g})")
        print(f"{name:18s} {C.fmt_times(values)}{note}")
    if reason is not None:
        print(f"nb-docker   skipped: {reason}")
    for name in ("nb-local", "nb-docker"):
        if name in times:
            ratios = [t / b for t, b in zip(times[name], times["dagstermill"])]
            print(f"{name:11s} per-round ratio to dagstermill: median {C.median(ratios):.2f}x "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    # Each side above the floor of the path it took: a spawned step process (Dagster's default,
    # dagstermill) or the run's own process (nb_assets' one-step runs, dagstermill-inproc).
    floors = {"dagstermill": "dagster-noop", "dagstermill-inproc": "dagster-noop-inproc",
              "nb-local": "dagster-noop-inproc", "nb-docker": "dagster-noop-inproc"}
    above = {n: C.median(times[n]) - C.median(times[f]) for n, f in floors.items() if n in times}
    for name in ("nb-local", "nb-docker"):
        if name in above:
            print(f"{name:11s} above its floor: {above[name]:.2f} s vs dagstermill's {above['dagstermill']:.2f} s "
                  f"({above[name] / above['dagstermill']:.2f}x) and dagstermill in_process's "
                  f"{above['dagstermill-inproc']:.2f} s ({above[name] / above['dagstermill-inproc']:.2f}x); "
                  f"end to end vs dagstermill in_process: {C.median(times[name]) / C.median(times['dagstermill-inproc']):.2f}x")
    print("all times: " + "; ".join(f"{n}=" + ",".join(f"{v:.2f}" for v in vs) for n, vs in times.items()))
    return times


def load_figure(tmp: Path, runs: int) -> None:
    """200 notebooks declared each way: a fresh `python -c 'import defs'`."""
    wh = seed_warehouse(tmp / "wh_load.duckdb")
    for kind, template in (("nb", NB_LOAD_DEFS), ("dm", DM_LOAD_DEFS)):
        folder = tmp / f"load_{kind}"
        for i in range(LOAD_N):
            if kind == "nb":
                nb_assets_notebook(folder / "nb" / f"events_{i}.ipynb", f"mart.events_dedup_{i}")
            else:
                dagstermill_notebook(folder / "dm" / f"events_{i}.ipynb", wh, f"mart.events_dedup_{i}")
        (folder / "defs.py").write_text(template.format(n=LOAD_N, wh=str(wh)))
    env = {"NB_ASSETS_CACHE": str(tmp / "cache"), "DAGSTER_HOME": str(tmp / "dagster_home")}
    python = str(BENCH_BIN / "python")
    extra: dict[str, list[tuple[float, float]]] = {}
    variants = {
        "dagstermill": measured([python, "-c", "import defs"], env, tmp / "load_dm", extra, "dagstermill"),
        "nb_assets": measured([python, "-c", "import defs"], env, tmp / "load_nb", extra, "nb_assets"),
    }
    print(f"\nload: {LOAD_N} notebooks each way, fresh `python -c 'import defs'`, "
          f"{runs} interleaved rounds after 1 warm-up (warm nb_assets parse cache)")
    times = C.time_round_robin(variants, runs)
    base = C.median(times["dagstermill"])
    base_cpu = C.median([c for c, _ in extra["dagstermill"][1:]])
    base_rss = C.median([r for _, r in extra["dagstermill"][1:]])
    for name, values in times.items():
        cpu = C.median([c for c, _ in extra[name][1:]])
        rss = C.median([r for _, r in extra[name][1:]])
        print(f"{name:11s} {C.fmt_times(values)}  ratio {C.median(values) / base:.2f}x; "
              f"cpu {cpu:.2f} s ({cpu / base_cpu:.2f}x); peak RSS {rss:.0f} MB ({rss / base_rss:.2f}x)")
    nb, dm = C.median(times["nb_assets"]), base
    print(f"load_{LOAD_N}: nb_assets {nb:.2f} s vs dagstermill {dm:.2f} s, ratio {nb / dm:.2f}x (no target)")


def main() -> None:
    def options(p: Any) -> None:
        p.add_argument("--runs", type=int, default=None)

    args = C.parse_args(__doc__, options)
    if not ensure_bench_venv():
        print(f"no {BENCH_VENV}: dagstermill needs its own environment; make it with `make bench` (or:\n"
              f"  python3 -m venv .venv-bench && .venv-bench/bin/pip install -e '.[test]' dagstermill==0.29.27\n"
              f"  .venv-bench/bin/python -m ipykernel install --sys-prefix --name python3 --display-name 'Python 3')")
        print("vs_dagstermill: skipped (no .venv-bench)")
        return
    runs = args.runs or (2 if args.quick else 5)
    C.print_machine("dagstermill", "dagster", "papermill", "duckdb", "pandas", "ipykernel", "jupyter_client")
    print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (load average 1/5/15 min)")
    with C.temp_dir("vs_dagstermill") as tmp:
        times = materialize_figure(tmp, runs)
        load_figure(tmp, runs)
    print(f"uptime: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (load average 1/5/15 min)")
    base = C.median(times["dagstermill"])
    if "nb-docker" in times:
        C.summary("vs_dagstermill_docker", C.median(times["nb-docker"]) / base, TARGET)
    C.summary("vs_dagstermill", C.median(times["nb-local"]) / base, TARGET)


if __name__ == "__main__":
    main()
