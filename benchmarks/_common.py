"""Shared helpers for the benchmarks: venv, machine facts, timing, generated inputs.

Not a benchmark itself (`make bench` runs it too; it does nothing then).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"


def ensure_venv() -> None:
    """Re-exec under the project's venv Python when started with another one."""
    venv_python = VENV_BIN / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        os.execv(str(venv_python), [str(venv_python), *sys.argv])
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def bin_path(name: str) -> str:
    return str(VENV_BIN / name) if (VENV_BIN / name).exists() else name


def parse_args(doc: str | None, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs / smaller inputs (a smoke test)")
    if extra:
        extra(parser)
    return parser.parse_args()


def print_machine(*packages: str) -> None:
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for name in ("nb_assets", *packages):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} -")
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} {platform.system()} {platform.release()}")
    print(f"python {platform.python_version()}; " + ", ".join(versions))
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}")


@contextlib.contextmanager
def temp_dir(prefix: str, *, memory: bool = False) -> Iterator[Path]:
    """A fresh temp folder; `memory` puts it on tmpfs (/dev/shm) when there is one."""
    where = "/dev/shm" if memory and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix=f"nb_bench_{prefix}_", dir=where) as tmp:
        yield Path(tmp)


def time_process(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Wall time of one whole process; raises with its output if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(list(argv), env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def time_process_cpu(argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one whole process; raises with its output if it fails.

    On a loaded machine the wall time of a single-threaded process swings with
    what else runs; its CPU time much less, so ratios of CPU times stay readable."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{err.read().decode(errors='replace')[-3000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def time_round_robin(variants: dict[str, Callable[[], float]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """Interleave variants so that drift on the machine hits all of them alike."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            times[name].append(fn())
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_times(values: Sequence[float]) -> str:
    return f"median {median(values):7.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def summary(name: str, ratio: float, target: float) -> None:
    """The last line every benchmark prints (benchmarks never fail: exit 0)."""
    print(f"verdict: {'meets' if ratio < target else 'MISSES'} the target")
    print(f"{name}: ratio {ratio:.2f}x (target < {target:g})")


# --- notebooks ---------------------------------------------------------------

SETUP_SOURCE = "%load_ext nb_assets.notebook\nfrom nb_assets.notebook import output"


def write_notebook(path: Path, cells: Sequence[tuple[str, str] | tuple[str, str, Sequence[str]]]) -> Path:
    """cells: ("markdown"|"code", source[, tags]) in order; written with nbformat."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, item in enumerate(cells):
        kind, source = item[0], item[1]
        tags = list(item[2]) if len(item) > 2 else []  # type: ignore[misc]
        cell = v4.new_markdown_cell(source) if kind == "markdown" else v4.new_code_cell(source)
        cell["id"] = f"c{i}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def pipeline_notebook(index: int, upstream: Sequence[int], rng) -> list[tuple]:  # noqa: ANN001
    """A realistic generated notebook: two SQL inputs, parameters, code, one output.

    Reads raw.a / raw.b, or the outputs of earlier notebooks (`mart.nb_<k>`).
    """
    first = f"mart.nb_{upstream[0]}" if upstream else "raw.a"
    second = f"mart.nb_{upstream[1]}" if len(upstream) > 1 else "raw.b"
    threshold = int(rng.integers(1, 100))
    return [
        ("markdown", f"# Notebook {index}\n\nGenerated for benchmarks: reads {first} and {second}."),
        ("code", SETUP_SOURCE),
        ("code", f'ds = "2026-11-25"\nlimit = {threshold}', ["parameters"]),
        ("code", f"%%sql left_rows\nSELECT id, k, v, ds FROM {first}\nWHERE ds <= CAST($ds AS DATE) AND v < $limit"),
        ("code", f"%%sql right_rows\nSELECT k, sum(w) AS w\nFROM {second}\nGROUP BY k"),
        ("code", "import pandas as pd\n\nmerged = left_rows.merge(right_rows, on='k', how='left')"),
        ("code", "merged['score'] = merged['v'] * merged['w'].fillna(0)\nsummary = merged.groupby('k', as_index=False)['score'].sum()"),
        ("code", "summary['rank'] = summary['score'].rank(ascending=False)\nsummary.head()"),
        ("code", f'output("mart.nb_{index}", summary.assign(id=summary.index, v=summary["score"], w=summary["rank"], ds=pd.Timestamp(ds).date()))'),
    ]


def generate_pipeline(folder: Path, count: int, seed: int = 7) -> list[tuple[Path, list[int]]]:
    """`count` notebooks; about a third chain to one or two earlier notebooks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    made = []
    for i in range(count):
        upstream: list[int] = []
        if i >= 2 and rng.random() < 0.35:
            upstream = sorted({int(x) for x in rng.integers(0, i, size=int(rng.integers(1, 3)))})
        path = write_notebook(folder / f"nb_{i}.ipynb", pipeline_notebook(i, upstream, rng))
        made.append((path, upstream))
    return made


def seed_duckdb(path: Path, statements: Sequence[str]) -> Path:
    import duckdb

    with duckdb.connect(str(path)) as con:
        for sql in statements:
            con.execute(sql)
    return path


if __name__ == "__main__":
    print("benchmarks/_common.py holds helpers; run the other scripts in this folder.")


def docker_reason() -> str | None:
    """None when a Docker variant can run, else why it is skipped."""
    try:
        from nb_assets.sandbox.container import docker_available
        from nb_assets.sandbox.image import image_exists, image_tag
    except ImportError as exc:
        return f"nb_assets has no Docker sandbox ({exc})"
    if not docker_available():
        return "no Docker engine answers"
    if not image_exists():
        return f"image {image_tag()} not built (nb-assets sandbox build)"
    return None


# The seed script of the deployed benchmarks' projects (deploy up --seed): raw.nums and the read-only role.
PG_SEED = '''"""Seeds the benchmark's warehouse: raw.nums and the read-only role."""
import argparse, os, psycopg
from nb_assets.warehouse.postgres.warehouse import PostgresWarehouse
parser = argparse.ArgumentParser(); parser.add_argument("--warehouse", default=os.environ.get("NB_ASSETS_WAREHOUSE"))
location = parser.parse_args().warehouse
with psycopg.connect(location, autocommit=True) as con:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("DROP TABLE IF EXISTS raw.nums")
    con.execute("CREATE TABLE raw.nums AS SELECT i FROM generate_series(0, 999) AS i")
PostgresWarehouse(location).create_reader()
'''


@dataclass
class DeployedStack:
    """A running `deploy up` of a benchmark's project, as the deployed benchmarks drive it."""

    settings: Any  # nb_assets.deploy.config.DeploySettings
    instance: Any  # its dagster.DagsterInstance (this process given the storage's password)
    url: str  # the webserver
    warehouse: str  # the warehouse's URL, as its owner


@contextlib.contextmanager
def deployed_stack(project: Path, *, max_concurrent_runs: int, warm_spares: bool = True,
                   python_trees: bool = True) -> Iterator[DeployedStack]:
    """`deploy up` of `project` (its seed.py seeds the warehouse; its code image built before, untimed),
    then `deploy down` and the state folder removed, whatever happens. `warm_spares=False` and
    `python_trees=False` deploy without issue 27's two cuts (spares per run slot; the code image's
    Python trees from volumes), for a before/after in one session."""
    import dagster as dg

    from nb_assets.deploy.config import DeploySettings
    from nb_assets.deploy.pg_cluster import free_port
    from nb_assets.deploy.secrets import DAGSTER_PASSWORD_ENV, load_secrets
    from nb_assets.deploy.stack import down, up

    state = Path(tempfile.mkdtemp(prefix="nb_bench_deploy_state_"))
    settings = DeploySettings(state_dir=state, webserver_port=free_port(), code_server_port=free_port(),
                              postgres_port=free_port(), max_concurrent_runs=max_concurrent_runs,
                              warm_spares=warm_spares)
    try:
        started = time.perf_counter()
        trees = os.environ.pop("NB_ASSETS_USR_VOLUME", None)
        if not python_trees:
            os.environ["NB_ASSETS_USR_VOLUME"] = "0"  # read by deploy up only: run workers get their own environment
        try:
            up(settings, project, seed=project / "seed.py")
        finally:
            os.environ.pop("NB_ASSETS_USR_VOLUME", None)
            if trees is not None:
                os.environ["NB_ASSETS_USR_VOLUME"] = trees
        print(f"deploy up (code image built before): {time.perf_counter() - started:.1f} s")
        secrets = load_secrets(state)
        os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
        os.environ[DAGSTER_PASSWORD_ENV] = settings.storage_password(secrets)
        os.environ["NB_ASSETS_READ_DSN"] = settings.reader_url(secrets) or ""
        instance = dg.DagsterInstance.get()
        try:
            yield DeployedStack(settings, instance, f"http://127.0.0.1:{settings.webserver_port}",
                                settings.warehouse_url(secrets))
        finally:
            instance.dispose()
    finally:
        down(state, purge=True)
