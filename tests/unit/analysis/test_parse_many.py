"""Parsing a folder on several cores gives exactly what parsing it in one process gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.notebook_factory import RUNTIME, code, md, params, write_notebook
from nb_assets.errors import NotebookParseError
from nb_assets.analysis.parser import _parse_cached
from nb_assets.analysis.parse_many import AUTO_JOBS_FROM, default_jobs, parse_notebooks
from nb_assets.spec import NotebookSpec


def _folder(root: Path, count: int = 24) -> list[Path]:
    """Clean notebooks, notebooks with findings, and files that are not notebooks, interleaved."""
    paths = []
    for i in range(count):
        path = root / f"nb_{i:02d}.ipynb"
        if i % 8 == 5:
            path.write_text("{nope")
        elif i % 8 == 6:
            path.write_text(json.dumps({"nbformat": 3, "cells": []}))
        else:
            extra = code("import requests\nrequests.get('https://example.invalid')") if i % 3 == 0 else code("x = 1")
            write_notebook(
                path, md(f"# Notebook {i}"), code(RUNTIME), params(f"limit = {i}"),
                code(f"%%sql rows\nSELECT k, v FROM raw.t{i % 4} WHERE v < $limit"),
                extra, code(f'output("mart.nb_{i}", rows)'),
            )
        paths.append(path)
    return paths


def _comparable(parsed: list[NotebookSpec | NotebookParseError]) -> list[object]:
    return [p if isinstance(p, NotebookSpec) else ("error", str(p)) for p in parsed]


def test_two_workers_give_the_serial_result_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _folder(tmp_path / "notebooks")
    monkeypatch.setenv("NB_ASSETS_CACHE", str(tmp_path / "cache-serial"))
    serial = parse_notebooks(paths, jobs=1)
    monkeypatch.setenv("NB_ASSETS_CACHE", str(tmp_path / "cache-pool"))
    _parse_cached.cache_clear()
    pooled = parse_notebooks(paths, jobs=2)
    assert _parse_cached.cache_info().currsize == 0, "the workers parsed, not this process"
    assert _comparable(pooled) == _comparable(serial)
    assert [Path(p.path).name for p in pooled if isinstance(p, NotebookSpec)] == [
        p.name for i, p in enumerate(paths) if i % 8 not in (5, 6)]
    assert sum(isinstance(p, NotebookParseError) for p in pooled) == 6
    # The workers filled the disk cache: a second pass parses nothing.
    _parse_cached.cache_clear()
    assert _comparable(parse_notebooks(paths, jobs=2)) == _comparable(serial)
    assert _parse_cached.cache_info().currsize == 0


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs must be 1 or more"):
        parse_notebooks(_folder(tmp_path, 2), jobs=0)


def test_small_folders_stay_in_one_process() -> None:
    assert default_jobs(AUTO_JOBS_FROM - 1) == 1
    assert default_jobs(10 * AUTO_JOBS_FROM) == min(len(os.sched_getaffinity(0)), 20)


def test_check_json_is_the_same_with_any_jobs(tmp_path: Path) -> None:
    _folder(tmp_path / "notebooks", 40)

    def check(*extra: str) -> subprocess.CompletedProcess[str]:
        cache = tmp_path / f"cache{len(list(tmp_path.iterdir()))}"  # a cold cache each time
        return subprocess.run(
            [sys.executable, "-m", "nb_assets.cli", "check", str(tmp_path / "notebooks"), "--json", *extra],
            capture_output=True, text=True, timeout=300, env={**os.environ, "NB_ASSETS_CACHE": str(cache)},
        )

    serial, pooled, auto = check("--jobs", "1"), check("--jobs", "2"), check()
    assert serial.returncode == pooled.returncode == auto.returncode == 1, serial.stderr
    assert pooled.stdout == serial.stdout and auto.stdout == serial.stdout
    assert len(json.loads(serial.stdout)["notebooks"]) == 40
    bad = check("--jobs", "0")
    assert bad.returncode == 2 and "--jobs must be 1 or more" in bad.stderr


def test_parse_many_stays_pure() -> None:
    """Like the parser (tests/unit/test_layering.py): no Dagster, DuckDB or Docker in a check."""
    code = "import sys, nb_assets.analysis.parse_many; print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'duckdb', 'docker'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
