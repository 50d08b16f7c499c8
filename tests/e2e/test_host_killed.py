"""SIGKILL the host (`nb-assets run`) at random points of a run, and while its load holds the warehouse.

Afterwards the warehouse holds either all of the run's outputs or none of
them, never some, and the next run works with no cleanup by hand: no stale
lock, container or folder stands in its way. The points are drawn at random
(the seed is in every assertion message, to replay a failure); the kills
during the load are aimed by watching the warehouse file's write lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from support.paths import REPO
from nb_assets.warehouse.writer import comment_text
from support.notebook_factory import RUNTIME, code, params, write_notebook

pytestmark = pytest.mark.slow

ROWS = 1_000_000  # big enough that loading takes a while, so a kill can land inside it
RANDOM_KILLS = 4
LOAD_KILL_ATTEMPTS = 6
RUN_TIMEOUT_S = 600


def _seed(warehouse: Path, notebook: Path) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA raw; CREATE SCHEMA mart")
        con.execute(f"CREATE TABLE raw.orders AS SELECT range AS order_id, range * 0.5 AS amount FROM range({ROWS})")
        con.execute(f"CREATE TABLE mart.a AS SELECT range AS order_id, 'seed' AS tag FROM range({ROWS})")
        con.execute(f"CREATE TABLE mart.b AS SELECT range AS order_id, 'seed' AS tag FROM range({ROWS})")
        for table in ("mart.a", "mart.b"):  # as an earlier run of the notebook left them: its own, so run replaces them
            con.execute(f"COMMENT ON TABLE {table} IS '{comment_text(notebook)}'")


def _state(warehouse: Path) -> tuple[tuple[str, int], ...]:
    """(tag, rows) of each output table: one run's outputs carry one tag."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return tuple(
            tuple(con.execute(f"SELECT min(tag), count(*) FROM mart.{t} HAVING min(tag) = max(tag)").fetchone() or ("mixed", -1))
            for t in ("a", "b")
        )


def _writer_holds_lock(warehouse: Path) -> bool:
    """Asks the kernel (F_GETLK) whether a process holds DuckDB's write lock, without taking any lock."""
    fd = os.open(warehouse, os.O_RDONLY)
    try:
        query = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
        return struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, query))[0] == fcntl.F_WRLCK
    finally:
        os.close(fd)


@pytest.mark.parametrize("sandbox", ["local", "docker"])
def test_a_killed_host_leaves_all_or_nothing_and_the_next_run_works(
    sandbox: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if sandbox == "docker":
        request.getfixturevalue("docker_image")  # builds the image, or skips saying why
    warehouse = tmp_path / "warehouse.duckdb"
    _seed(warehouse, tmp_path / "two_outputs.ipynb")
    notebook = write_notebook(
        tmp_path / "two_outputs.ipynb",
        code(RUNTIME),
        params("tag = 'none'"),
        code("%%sql orders\nSELECT order_id, amount FROM raw.orders"),
        code("a = orders[['order_id']].assign(tag=tag)\nb = orders[['order_id']].assign(tag=tag)"),
        code("output('mart.a', a)"),
        code("output('mart.b', b)"),
    )
    records = tmp_path / "records"

    def start(tag: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "nb_assets.cli", "run", str(notebook), "--param", f"tag={tag}",
             "--warehouse", str(warehouse), "--sandbox", sandbox, "--records", str(records),
             "--timeout", "300", "--json"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
        return proc.communicate(timeout=RUN_TIMEOUT_S)

    seed = int(os.environ.get("NB_ASSETS_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)

    started = time.monotonic()
    whole = start("whole")
    out, err = finish(whole)
    duration = time.monotonic() - started
    assert whole.returncode == 0, out + err
    last = (("whole", ROWS), ("whole", ROWS))
    assert _state(warehouse) == last

    def judge(tag: str, when: str) -> None:
        nonlocal last
        state = _state(warehouse)
        new = ((tag, ROWS), (tag, ROWS))
        assert state in (last, new), f"seed {seed}: killed {when}: the warehouse holds {state}, not {last} or {new}"
        last = state

    for k in range(RANDOM_KILLS):
        delay = rng.uniform(0.1, duration)
        proc = start(f"random{k}")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        finish(proc)
        judge(f"random{k}", f"{delay:.2f} s into a run")

    killed_in_load = 0
    for k in range(LOAD_KILL_ATTEMPTS):
        proc = start(f"load{k}")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline and not _writer_holds_lock(warehouse):
            time.sleep(0.002)
        if proc.poll() is None and _writer_holds_lock(warehouse):
            proc.send_signal(signal.SIGKILL)
            killed_in_load += 1
        finish(proc)
        judge(f"load{k}", "while its load held the write lock")
        if killed_in_load >= 2:
            break
    assert killed_in_load >= 1, f"seed {seed}: no kill landed while a load held the warehouse"

    after = start("after")
    out, err = finish(after)
    assert after.returncode == 0, f"seed {seed}: the run after the kills failed: {out}{err}"
    assert json.loads(out)["status"] == "success"
    assert _state(warehouse) == (("after", ROWS), ("after", ROWS))

    if sandbox == "docker":  # the killed runs' containers were swept by the next run (their owner is gone)
        import docker

        client = docker.from_env()
        left = [c["Id"][:12] for c in client.api.containers(all=True, filters={"label": "nb_assets.sandbox"})
                if c["Labels"].get("nb_assets.run_folder", "").startswith(str(records))]
        assert left == [], f"seed {seed}: containers outlived their runs: {left}"
