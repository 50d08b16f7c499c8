"""`nb-assets check` on 1000 notebooks vs merely reading them with nbformat.

Generates 1000 notebooks (two SQL cells, parameters, a few code cells, one
output; a third chained to earlier ones) and times, as whole processes
(median of 3 after 1 warm-up):
  nbformat  a Python process that `nbformat.read`s every notebook
  check     `nb-assets check DIR --json`
Target: check / nbformat < 3x.

    python benchmarks/check_speed.py [--quick] [--count N] [--unique]

The generated notebooks share text (the runtime's setup cell, the pandas
cells, the queries over raw.a / raw.b), which check's caches by text reuse.
`--unique` adds a comment naming the notebook to every code cell, so that no
cell or query repeats: the worst case for those caches.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

READ_ALL = """
import sys
from pathlib import Path
import nbformat
for path in sorted(Path(sys.argv[1]).rglob("*.ipynb")):
    nbformat.read(str(path), as_version=4)
"""

PROFILE = """
import sys, time
from pathlib import Path
t0 = time.perf_counter()
from nb_assets.cli.check import spec_to_json
from nb_assets.analysis.notebook_file import read_cells
from nb_assets.analysis.parser import parse_notebook
from nb_assets.sql.lineage import analyze_query
from nb_assets.analysis.checks import analyze
t1 = time.perf_counter()
paths = sorted(Path(sys.argv[1]).rglob("*.ipynb"))
cells = [read_cells(str(p), p.read_bytes()) for p in paths]
t2 = time.perf_counter()
for c in cells:
    analyze(c)
t3 = time.perf_counter()
for c in cells:
    for cell in c:
        if cell.source.lstrip().startswith("%%sql"):
            analyze_query(cell.source.split("\\n", 1)[1])
t4 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {t4 - t3:.3f}")
"""


def main() -> None:
    def options(p):  # noqa: ANN001, ANN202
        p.add_argument("--count", type=int, default=None)
        p.add_argument("--unique", action="store_true", help="no cell or query text repeats across notebooks")

    args = C.parse_args(__doc__, options)
    count = args.count or (200 if args.quick else 1000)
    runs = 3
    C.print_machine("nbformat", "sqlglot", "ipython")
    with C.temp_dir("check") as tmp:
        folder = tmp / "notebooks"
        C.generate_pipeline(folder, count)
        if args.unique:
            make_unique(folder)
        out = subprocess.run([C.bin_path("nb-assets"), "check", str(folder), "--json"], capture_output=True, text=True)
        report = json.loads(out.stdout)
        findings = sum(len(r["findings"]) for r in report["notebooks"])
        print(f"\n{len(report['notebooks'])} notebooks, {findings} findings, exit {out.returncode}; "
              f"whole-process median of {runs} after 1 warm-up\n")
        warm_cache = tmp / "warm-cache"
        variants = {
            "nbformat": lambda: C.time_process([sys.executable, "-c", READ_ALL, str(folder)]),
            # cold: an empty parse cache every time, as on first contact with a notebook
            "check": lambda: _check(folder, Path(tempfile.mkdtemp(dir=tmp))),
            # warm: the notebooks were checked before and have not changed
            "check-warm": lambda: _check(folder, warm_cache),
        }
        times = C.time_round_robin(variants, runs)
        split = subprocess.run([sys.executable, "-c", PROFILE, str(folder)], capture_output=True, text=True, check=True)
        imports, read, static, sql = (float(x) for x in split.stdout.split())
    for name, values in times.items():
        print(f"{name:9s} {C.fmt_times(values)}  {1000 * C.median(values) / count:.2f} ms/notebook")
    ratio = C.median(times["check"]) / C.median(times["nbformat"])
    warm = C.median(times["check-warm"]) / C.median(times["nbformat"])
    print(f"\ncold cache (the headline): {ratio:.2f}x; warm cache (unchanged notebooks): {warm:.2f}x")
    print(f"\nwhere check spends it (one in-process pass): imports {imports:.2f} s, read {read:.2f} s, "
          f"static analysis {static:.2f} s, SQL lineage {sql:.2f} s")
    C.summary("check_speed", ratio, 3.0)


def make_unique(folder: Path) -> None:
    """A comment naming the notebook at the end of every code cell (`--` in SQL)."""
    for path in folder.glob("*.ipynb"):
        doc = json.loads(path.read_text())
        for cell in doc["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                cell["source"] = f"{source}\n{'--' if source.startswith('%%sql') else '#'} {path.stem}"
        path.write_text(json.dumps(doc, indent=1))


def _check(folder: Path, cache: Path) -> float:
    """`nb-assets check` exits 1 when there are findings; time it either way."""
    import time

    started = time.perf_counter()
    proc = subprocess.run([C.bin_path("nb-assets"), "check", str(folder), "--json"], capture_output=True,
                          env={**os.environ, "NB_ASSETS_CACHE": str(cache)})
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"nb-assets check exited {proc.returncode}: {proc.stderr[-2000:]!r}")
    return elapsed


if __name__ == "__main__":
    main()
