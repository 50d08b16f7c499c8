"""Definitions load time: N notebooks through nb_assets vs N plain Dagster assets.

For N in 50, 200, 1000, generates N notebooks (two SQL inputs over raw.a /
raw.b, a third of them chained to earlier notebooks' outputs, a parameters
cell, code cells, one output) and two definitions modules:
  notebooks   notebook_definitions([NotebookAsset(...) x N], warehouse=...)
  plain       N `@dg.asset` functions with the same keys and deps + dg.Definitions
  triggered   the same notebooks, each with a trigger (cron or on_inputs_landed),
              every tenth partitioned daily
and times `python -c "import MODULE"` as a whole fresh process (median of 3),
reporting its CPU time (user + system) too: steadier than the wall time when
other work shares the machine.
Targets at N=1000: notebooks / plain < 2x; triggered / plain < 1.5x.

Also measures, in one process, what parsing costs cold, warm (nb_assets's
in-process lru_cache) and when read back from a pickle on disk, to say
whether a disk parse cache would matter.

    python benchmarks/load_time.py [--quick] [--runs 3] [--sizes 50 200 1000 10000]

Each N also reports the peak RSS of one fresh import of either module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

NB_DEFS = '''
from pathlib import Path
from nb_assets import NotebookAsset, notebook_definitions
HERE = Path(__file__).parent
NOTEBOOKS = [NotebookAsset(f"notebooks/nb_{{i}}.ipynb", owners=["bench@example.com"], group="bench") for i in range({n})]
defs = notebook_definitions(NOTEBOOKS, warehouse=str(HERE / "warehouse.duckdb"), base_dir=HERE, sandbox="local")
'''

# Every notebook with a trigger (cron or on_inputs_landed, alternately), every tenth one
# partitioned daily (with cron: waiting on unpartitioned inputs is refused).
TRIGGERED_DEFS = '''
from pathlib import Path
from nb_assets import DailyPartitions, NotebookAsset, notebook_definitions
HERE = Path(__file__).parent
def decl(i):
    trigger = dict(cron="0 6 * * *", timezone="Europe/Amsterdam") if i % 2 == 0 else dict(on_inputs_landed=True)
    if i % 10 == 0:
        trigger = dict(cron="0 6 * * *", partitions=DailyPartitions(start="2026-01-01"))
    return NotebookAsset(f"notebooks/nb_{{i}}.ipynb", owners=["bench@example.com"], group="bench", **trigger)
NOTEBOOKS = [decl(i) for i in range({n})]
defs = notebook_definitions(NOTEBOOKS, warehouse=str(HERE / "warehouse.duckdb"), base_dir=HERE, sandbox="local")
'''

PLAIN_ASSET = '''
@dg.asset(key=["mart", "nb_{i}"], deps=[{deps}], owners=["bench@example.com"], group_name="bench",
          description="Notebook {i}")
def nb_{i}() -> None:
    pass
'''

PARSE_PROBE = '''
import pickle, sys, time
from pathlib import Path
from nb_assets.analysis.parser import parse_notebook
paths = sorted(Path(sys.argv[1]).glob("*.ipynb"))
t0 = time.perf_counter(); specs = [parse_notebook(p) for p in paths]
t1 = time.perf_counter(); [parse_notebook(p) for p in paths]
t2 = time.perf_counter(); blob = pickle.dumps(specs); t3 = time.perf_counter(); pickle.loads(blob)
t4 = time.perf_counter()
print(f"{t1 - t0:.4f} {t2 - t1:.4f} {t4 - t3:.4f} {len(blob)}")
'''


TRIGGERED: dict[int, float] = {}


def key_expr(table: str) -> str:
    return f"dg.AssetKey({table.split('.')!r})"


def write_plain(path: Path, notebooks: list[tuple[Path, list[int]]]) -> None:
    parts = ["import dagster as dg\n", 'raw_a = dg.AssetSpec(["raw", "a"])\nraw_b = dg.AssetSpec(["raw", "b"])\n']
    for i, (_, upstream) in enumerate(notebooks):
        tables = [f"mart.nb_{k}" for k in upstream[:2]]
        tables += ["raw.a", "raw.b"][len(tables):]
        parts.append(PLAIN_ASSET.format(i=i, deps=", ".join(key_expr(t) for t in tables)))
    names = ", ".join(f"nb_{i}" for i in range(len(notebooks)))
    parts.append(f"\ndefs = dg.Definitions(assets=[raw_a, raw_b, {names}])\n")
    path.write_text("".join(parts))


def peak_rss_mb(folder: Path, module: str) -> float:
    """ru_maxrss of one fresh process that imports `module` (KiB on Linux)."""
    code = f"import resource, {module}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return int(out.stdout.split()[-1]) / 1024


CPU: dict[str, list[float]] = {}


def import_time(folder: Path, module: str, name: str) -> float:
    """Wall time of one fresh import; its CPU time goes to CPU[name]."""
    wall, cpu = C.time_process_cpu([sys.executable, "-c", f"import {module}"], cwd=folder, env={"PYTHONDONTWRITEBYTECODE": "1"})
    CPU.setdefault(name, []).append(cpu)
    return wall


def measure(n: int, runs: int) -> tuple[float, float, list[float]]:
    with C.temp_dir(f"load{n}") as tmp:
        notebooks = C.generate_pipeline(tmp / "notebooks", n)
        (tmp / "defs_notebooks.py").write_text(NB_DEFS.format(n=n))
        (tmp / "defs_triggered.py").write_text(TRIGGERED_DEFS.format(n=n))
        write_plain(tmp / "defs_plain.py", notebooks)
        # The modules must load and declare the same asset keys.
        check = ("import defs_notebooks as a, defs_plain as b, defs_triggered as c; "
                 "g = lambda d: {k for k in d.resolve_asset_graph().get_all_asset_keys()}; "
                 "ka, kb, kc = g(a.defs), g(b.defs), g(c.defs); assert ka == kb == kc, (len(ka), len(kb), sorted(ka ^ kb)[:5])")
        subprocess.run([sys.executable, "-W", "ignore", "-c", check], cwd=tmp, check=True, capture_output=True)
        times = C.time_round_robin(
            {"notebooks": lambda: import_time(tmp, "defs_notebooks", "notebooks"),
             "triggered": lambda: import_time(tmp, "defs_triggered", "triggered"),
             "plain": lambda: import_time(tmp, "defs_plain", "plain")},
            runs, warmup=1)
        probe = subprocess.run([sys.executable, "-c", PARSE_PROBE, str(tmp / "notebooks")],
                               capture_output=True, text=True, check=True)
        parse = [float(x) for x in probe.stdout.split()]
        rss = peak_rss_mb(tmp, "defs_notebooks"), peak_rss_mb(tmp, "defs_plain")
    nb, plain, trig = C.median(times["notebooks"]), C.median(times["plain"]), C.median(times["triggered"])
    cpu = {name: C.median(values[-runs:]) for name, values in CPU.items()}  # the timed runs, not the warm-up
    CPU.clear()
    print(f"N={n:5d}  notebooks {C.fmt_times(times['notebooks'])}")
    print(f"         triggered {C.fmt_times(times['triggered'])}")
    print(f"         plain     {C.fmt_times(times['plain'])}")
    print(f"         ratio {nb / plain:.2f}x   extra {nb - plain:.3f} s = {1000 * (nb - plain) / n:.2f} ms/notebook")
    print(f"         peak RSS: notebooks {rss[0]:.0f} MB, plain {rss[1]:.0f} MB ({rss[0] / rss[1]:.2f}x)")
    print(f"         triggered ratio {trig / plain:.2f}x (each notebook a trigger, a tenth partitioned)")
    print(f"         CPU time (user+sys) medians: plain {cpu['plain']:.3f} s, notebooks {cpu['notebooks']:.3f} s "
          f"({cpu['notebooks'] / cpu['plain']:.2f}x), triggered {cpu['triggered']:.3f} s ({cpu['triggered'] / cpu['plain']:.2f}x)")
    TRIGGERED[n] = trig / plain
    print(f"         parse in-process: cold {parse[0]:.3f} s, warm (lru_cache) {parse[1]:.4f} s, "
          f"from pickle {parse[2]:.4f} s ({parse[3] / 1e6:.1f} MB)")
    return nb, plain, parse


def main() -> None:
    def extra(parser) -> None:  # noqa: ANN001
        parser.add_argument("--runs", type=int, default=3, help="timed runs per variant (median)")
        parser.add_argument("--sizes", "--n", type=int, nargs="+", default=None, help="N values (default 50 200 1000)")

    args = C.parse_args(__doc__, extra)
    sizes = args.sizes or ([50, 200] if args.quick else [50, 200, 1000])
    runs = args.runs
    C.print_machine("dagster", "sqlglot", "nbformat")
    print(f"\nwhole-process `python -c 'import MODULE'`, median of {runs} after 1 warm-up\n")
    results = {n: measure(n, runs) for n in sizes}
    # Linear means a flat cost per notebook past the fixed start-up (the smallest N's time).
    base_nb, base_plain = results[sizes[0]][0], results[sizes[0]][1]
    for n in sizes[1:]:
        nb, plain, _ = results[n]
        print(f"N={n:5d}: ms per extra notebook past N={sizes[0]}: notebooks "
              f"{1000 * (nb - base_nb) / (n - sizes[0]):.2f}, plain {1000 * (plain - base_plain) / (n - sizes[0]):.2f}")
    n = sizes[-1]
    nb, plain, parse = results[n]
    saved = parse[0] - parse[2]
    print(f"\na disk parse cache at N={n} could save at most ~{saved:.2f} s of {nb:.2f} s "
          f"(ratio {nb / plain:.2f}x -> ~{(nb - saved) / plain:.2f}x)")
    C.summary("load_time", nb / plain, 2.0)
    C.summary("load_time_triggered", TRIGGERED[n], 1.5)


if __name__ == "__main__":
    main()
