"""A skipped Docker, PostgreSQL or browser test fails the run (support.skip_gate), unless NB_ASSETS_ALLOW_SKIPS
says otherwise. Proved on a real pytest, in a subprocess, with the Docker probe forced to answer "absent"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.needs import ALLOW_SKIPS, FORCE_NO_DOCKER
from support.paths import REPO

TINY = '''
import pytest

def test_needs_docker(docker_image):
    assert docker_image

@pytest.mark.postgres
def test_marked_postgres_skipped_another_way():
    pytest.skip("skipped without the tag")

def test_plain_skip():
    pytest.skip("nothing needed here")

def test_plain():
    assert True
'''

PLAIN = '''
import pytest

def test_plain_skip():
    pytest.skip("nothing needed here")

def test_plain():
    assert True
'''


def run_pytest(folder: Path, source: str, *args: str, allow: str | None = None) -> subprocess.CompletedProcess[str]:
    (folder / "test_tiny.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k not in (ALLOW_SKIPS, "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env[FORCE_NO_DOCKER] = "1"
    env["PYTHONPATH"] = str(REPO / "tests")
    if allow is not None:
        env[ALLOW_SKIPS] = allow
    # The folder has no pytest configuration: only the plugins named here are loaded, as tests/conftest.py loads them.
    command = [sys.executable, "-m", "pytest", "-p", "support.sandboxes", "-p", "support.skip_gate",
               "-p", "no:cacheprovider", "-rs", "test_tiny.py", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("workers", [["-n", "0"], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_docker_or_postgres_skip_fails_the_run_and_says_why(tmp_path: Path, workers: list[str]) -> None:
    done = run_pytest(tmp_path, TINY, *workers)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "skips that fail this run" in out, out
    assert "test_tiny.py::test_needs_docker" in out and "forced absent" in out, out
    assert "test_tiny.py::test_marked_postgres_skipped_another_way" in out, out
    assert "test_plain_skip" not in out.split("skips that fail this run")[1], out  # an ordinary skip is no failure
    assert f"{ALLOW_SKIPS}=docker,postgres" in out, out


def test_the_opt_out_accepts_exactly_the_components_it_names(tmp_path: Path) -> None:
    accepted = run_pytest(tmp_path, TINY, "-n", "0", allow="docker,postgres")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "skips that fail this run" not in accepted.stdout

    partly = run_pytest(tmp_path, TINY, "-n", "0", allow="docker")
    assert partly.returncode == 1, partly.stdout + partly.stderr
    summary = partly.stdout.split("skips that fail this run")[1]
    assert "needing postgres" in summary and "needing docker" not in summary, partly.stdout


def test_ordinary_skips_and_failures_keep_their_exit_codes(tmp_path: Path) -> None:
    plain = run_pytest(tmp_path, PLAIN, "-n", "0")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    failing = run_pytest(tmp_path, TINY.replace("assert True", "assert False"), "-n", "0", allow="all")
    assert failing.returncode == 1, failing.stdout + failing.stderr
