"""Parse many notebooks at once, on several cores when the folder is large.

Pure like notebook_parser (no Dagster, DuckDB or Docker). Notebooks already in
the disk cache are served in this process; only the misses go to a pool of
worker processes, and results come back in the order of `paths`, so the
output is the same whatever `jobs` is.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from nb_assets.errors import NotebookParseError
from nb_assets.analysis.parser import parse_notebook, parse_uncached
from nb_assets.analysis.spec_cache import cached_spec, store_spec
from nb_assets.spec import NotebookSpec

__all__ = ["AUTO_JOBS_FROM", "default_jobs", "parse_notebooks"]

# Below this many notebooks to parse, starting workers costs more than it saves.
AUTO_JOBS_FROM = 200
_PER_TASK = 25  # notebooks per task: small enough to balance, big enough to amortize pickling

Parsed = NotebookSpec | NotebookParseError


def default_jobs(misses: int) -> int:
    """Every core this process may use, when there is enough to parse; else 1."""
    if misses < AUTO_JOBS_FROM:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, misses // (AUTO_JOBS_FROM // 2)))


def parse_notebooks(paths: Sequence[str | Path], jobs: int | None = None, dialect: str = "duckdb") -> list[Parsed]:
    """One NotebookSpec (or the NotebookParseError naming the file) per path, in order.

    `jobs`: worker processes for the notebooks not in the cache; None picks
    one per core for large folders (see `default_jobs`), 1 parses in this process.
    `dialect`: the warehouse's SQL dialect (notebook_parser.parse_notebook).
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be 1 or more, got {jobs}")
    results: list[Parsed | None] = [None] * len(paths)
    misses: list[int] = []
    for i, path in enumerate(paths):
        try:
            raw = Path(path).read_bytes()
        except OSError:
            results[i] = _parse_one(str(path), dialect)  # parse_notebook words the error
            continue
        spec = cached_spec(str(path), hashlib.sha256(raw).hexdigest(), dialect)
        if spec is None:
            misses.append(i)
        else:
            results[i] = spec
    workers = default_jobs(len(misses)) if jobs is None else min(jobs, max(1, len(misses)))
    todo = [str(paths[i]) for i in misses]
    if workers <= 1:
        parsed = _parse_batch(todo, dialect)
    else:
        import nb_assets.sql.lineage, nb_assets.analysis.checks  # noqa: F401,E401 - before fork: workers inherit them
        size = max(1, min(_PER_TASK, len(todo) // (workers * 4)))
        batches = [todo[start:start + size] for start in range(0, len(todo), size)]
        with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
            parsed = [p for batch in pool.map(_parse_batch, batches, [dialect] * len(batches)) for p in batch]
    for i, one in zip(misses, parsed):
        results[i] = one
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _parse_batch(paths: list[str], dialect: str = "duckdb") -> list[Parsed]:
    """Parse, in order; errors come back as values, so one bad file does not stop the rest.

    Creating cache files is slow on some disks (a file creation is a journal
    write), so a thread writes them while the next notebooks are parsed.
    """
    out: list[Parsed] = []
    with ThreadPoolExecutor(1, thread_name_prefix="nb-assets-cache") as writer:
        for path in paths:
            try:
                spec, cache = parse_uncached(path, Path(path).read_bytes(), dialect)
            except OSError:
                out.append(_parse_one(path, dialect))  # parse_notebook words the error
                continue
            except NotebookParseError as exc:
                out.append(exc)
                continue
            writer.submit(store_spec, cache, spec)
            out.append(spec)
    return out


def _parse_one(path: str, dialect: str = "duckdb") -> Parsed:
    try:
        return parse_notebook(path, dialect)
    except NotebookParseError as exc:
        return exc


def _context() -> multiprocessing.context.BaseContext:
    # fork: workers inherit the parser's imports (sqlglot, IPython) instead of repeating them
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
