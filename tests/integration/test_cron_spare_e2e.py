"""Spares ahead, end to end through real Dagster: a notebook declared with a cron leaves, after its run, a spare for
its next tick that waits unbooted, boots by itself shortly before the tick and serves the run at that tick
(issue 27 §2; the sandbox-level tests are in test_docker_spare.py).

The notebook's limits are ones no other test uses, so the spares this test sees (by their settings' hash) are its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from nb_assets import NotebookAsset, notebook_definitions
from nb_assets.runs.history import find_run
from nb_assets.sandbox.base import RunFolder, SandboxLimits
from nb_assets.sandbox.container import DockerSandbox, _runtime_tar
from nb_assets.sandbox.janitor import BOOT_AT_LABEL, CLAIM_BY_LABEL, OFFERED_PREFIX, SPARE_LABEL
from nb_assets.sandbox.spares import idle_count, spare_key

from support.dagster_runs import explain_result
from support.notebook_factory import RUNTIME, code, params, write_notebook

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LIMITS = SandboxLimits(timeout_s=120, memory_mb=1024, cpus=1.0, pids=128, tmp_mb=83)  # this test's own settings
LEAD_S = 20  # the spare boots this long before its tick
GRACE_S = 90  # and waits this long after it: a spare this test leaves behind ends by itself soon
# Run 1 starts at most this many seconds into a minute, so that it and its spare's making are over well before
# the next tick's boot time (tick - LEAD_S): only then is there an unbooted spare to see.
LATEST_START_S = 15  # measured: run 1 and its spare take about 5 s here
ATTEMPTS = 3  # a loaded machine may be too slow for that in one minute: run 1 again in the next
SPARE_MADE_S = 180  # bound on the wait for a spare maker (a process DockerSandbox.run starts) to be done


def spare_key_of(sandbox: DockerSandbox, limits: SandboxLimits) -> str:
    """The settings' hash a spare for runs with `limits` is labelled with (as DockerSandbox.make_spare computes it)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp)).create()
        folder.install_inbox_files()
        runtime = _runtime_tar(folder.runtime_dir)
    return spare_key(json.dumps(sandbox._settings(limits), sort_keys=True, default=repr), runtime)


def spares_of(sandbox: DockerSandbox, key: str) -> list[dict[str, Any]]:
    """Every container labelled with this test's spare key, whatever its state or name (boot, spare, run)."""
    return sandbox.client.api.containers(all=True, filters={"label": f"{SPARE_LABEL}={key}"})


def ahead_of(spares: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those made for a later run (they boot at a time of their own); a run also leaves one booted at once
    for whatever run comes next (a chain's next step), which this test does not follow."""
    return [c for c in spares if BOOT_AT_LABEL in (c.get("Labels") or {})]


def remove_spares(sandbox: DockerSandbox, key: str) -> None:
    for c in spares_of(sandbox, key):
        with contextlib.suppress(Exception):  # it may end by itself meanwhile (auto-remove)
            sandbox.client.api.remove_container(c["Id"], force=True)


def spare_makers() -> list[int]:
    """This process's spare makers still at work: DockerSandbox.run, in this process (dg.materialize runs its
    step in process), starts them as children; an ended one is a zombie until its Popen is polled."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rpartition(")")[2].split()[:2]
            argv = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(ppid) == os.getpid() and state != "Z" and b"nb_assets.sandbox.spare_maker" in argv:
            found.append(int(entry.name))
    return found


def wait_for_spare_makers() -> None:
    deadline = time.monotonic() + SPARE_MADE_S
    while spare_makers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not spare_makers(), f"the spare maker was still at work after {SPARE_MADE_S} s"


def runner_running(sandbox: DockerSandbox, container_id: str) -> bool:
    """Whether the in-box runner (papermill, kernel) has been started in the container: booted."""
    processes = sandbox.client.api.top(container_id)["Processes"] or []
    commands = [" ".join(p) for p in processes]  # the supervisor's own command line names the runner too
    return any("inbox_papermill.py" in c and "inbox_supervisor.py" not in c for c in commands)


def supervisor_times(command: list[str]) -> tuple[float, float]:
    """(CLAIM_BY, BOOT_AT) from a spare's command: `... GO_FILE CLAIM_BY [BOOT_AT] -- RUNNER...` (inbox/supervisor.py);
    BOOT_AT 0 when it is not there (booted at once)."""
    head = command[:command.index("--")]
    assert len(head) in (7, 8), command
    return float(head[6]), float(head[7]) if len(head) == 8 else 0.0


def write_project(root: Path) -> dg.Definitions:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT range AS order_id, range * 1.5 AS amount FROM range(6)")
    write_notebook(root / "ticking.ipynb", code(RUNTIME), params("least = 2"),
                   code("%%sql orders\nSELECT * FROM raw.orders WHERE order_id >= $least"),
                   code("output('mart.ticking', orders)"))
    return notebook_definitions([NotebookAsset("ticking.ipynb", cron="* * * * *", limits=LIMITS)],
                                warehouse=root / "warehouse.duckdb", base_dir=root, sandbox="docker")


class Runs:
    """The test's Dagster runs, told in their own words when an assertion fails."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.results: list[dg.ExecuteInProcessResult] = []
        self.notes: list[str] = []

    def materialize(self) -> dg.ExecuteInProcessResult:
        assets = [a for a in self.defs.assets or () if isinstance(a, dg.AssetsDefinition)]
        result = dg.materialize(assets, instance=self.instance, resources=self.defs.resources, raise_on_error=False)
        self.results.append(result)
        assert result.success, self.story()
        return result

    def facts(self, result: dg.ExecuteInProcessResult) -> dict[str, Any]:
        """The sandbox facts the run's record keeps (run.json), as `nb-assets runs` shows them."""
        record = find_run([Path(self.instance.storage_directory()) / "nb_assets"], result.run_id)
        return dict(record.summary["sandbox"])

    def story(self) -> str:
        lines = [*self.notes]
        for n, result in enumerate(self.results, 1):
            lines.append(f"--- run {n}: " + (f"{result.run_id}: SUCCESS" if result.success else explain_result(result)))
            for entry in self.instance.all_logs(result.run_id):  # its events and what it logged, in order
                kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
                lines.append(f"  {kind}: {entry.user_message.strip()[:400]}")
            try:
                lines.append(f"  record facts: {self.facts(result)}")
            except Exception as exc:  # a run that failed early may have no record
                lines.append(f"  record facts: unreadable ({exc})")
        return "\n".join(lines)


@pytest.fixture()
def project(tmp_path: Path, docker_image: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Runs, DockerSandbox, str]]:
    sandbox = DockerSandbox(image=docker_image)
    monkeypatch.delenv("NB_ASSETS_DOCKER_SPARES", raising=False)  # spares on (the default)
    monkeypatch.setenv("NB_ASSETS_SPARE_TTL_S", "5")  # a run a minute away is a later run: its spare is made ahead
    monkeypatch.setenv("NB_ASSETS_SPARE_LEAD_S", str(LEAD_S))
    monkeypatch.setenv("NB_ASSETS_SPARE_GRACE_S", str(GRACE_S))
    # Other work's spares on this host must not use up the cap (NB_ASSETS_MAX_IDLE_SPARES, default 8).
    monkeypatch.setenv("NB_ASSETS_MAX_IDLE_SPARES", str(idle_count(sandbox.client) + 4))
    key = spare_key_of(sandbox, LIMITS)
    remove_spares(sandbox, key)  # an earlier, interrupted run of this test's: no other test makes these
    (tmp_path / "home").mkdir()
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
            yield Runs(write_project(tmp_path), instance), sandbox, key
    finally:
        with contextlib.suppress(AssertionError):
            wait_for_spare_makers()  # else a maker could start a spare after the removal
        remove_spares(sandbox, key)


def sleep_until(epoch_s: float) -> None:
    while (left := epoch_s - time.time()) > 0:
        time.sleep(min(left, 1.0))


def test_a_cron_notebooks_run_leaves_a_spare_that_boots_before_the_next_tick_and_serves_its_run(
        project: tuple[Runs, DockerSandbox, str]) -> None:
    runs, sandbox, key = project
    for attempt in range(1, ATTEMPTS + 1):
        if time.time() % 60 > LATEST_START_S:
            sleep_until((time.time() // 60 + 1) * 60 + 0.5)  # the next minute's start: time for run 1 and its spare
        started = time.time()
        tick = (started // 60 + 1) * 60  # the next tick of "* * * * *" once run 1 starts
        runs.notes.append(f"run 1 (attempt {attempt}) started at {started:.1f}, the next tick is {tick:.0f}, "
                          f"its spare boots at {tick - LEAD_S:.0f}")
        first = runs.materialize()
        wait_for_spare_makers()
        made = time.time()
        found = ahead_of(spares_of(sandbox, key))
        assert len(found) == 1, f"want one spare made ahead, found {found}\n{runs.story()}"
        assert runs.facts(first)["warm_spare"] is False, runs.story()  # the first run found no spare: it was cold
        if made < tick - LEAD_S - 1:
            break
        # A loaded machine: run 1 and its spare were over too late to see the spare unbooted; again next minute.
        runs.notes.append(f"  over at {made:.1f}: too late to see the spare unbooted")
        remove_spares(sandbox, key)
    else:
        pytest.fail(f"run 1 and its spare were never over before the spare's boot time\n{runs.story()}")
    spare = found[0]
    assert spare["Names"][0].lstrip("/").startswith(OFFERED_PREFIX), f"not offered: {spare['Names']}"

    inspected = sandbox.client.api.inspect_container(spare["Id"])
    claim_by, boot_at = supervisor_times(inspected["Config"]["Cmd"])
    said = f"the spare's command {inspected['Config']['Cmd']}, labels {inspected['Config']['Labels']}\n{runs.story()}"
    assert float(inspected["Config"]["Labels"][CLAIM_BY_LABEL]) == claim_by, said
    assert boot_at == tick - LEAD_S, f"boot at {boot_at:.0f}, want {tick - LEAD_S:.0f}: {said}"  # made for the next tick
    assert claim_by == tick + GRACE_S, f"claim by {claim_by:.0f}, want {tick + GRACE_S:.0f}: {said}"  # there for its run
    assert inspected["State"]["Running"], f"the spare is not running: {inspected['State']}"
    assert not runner_running(sandbox, spare["Id"]), "booted long before its tick"  # only a sleeping supervisor

    # It boots by itself, from inside its container, in the lead before the tick: nothing on the host wakes it.
    unbooted_at = made  # the last time it was seen waiting unbooted
    while True:
        checked = time.time()
        if (booted := runner_running(sandbox, spare["Id"])) or checked >= tick:
            break
        unbooted_at = checked
        time.sleep(0.5)
    assert booted, f"not booted by the tick {tick:.0f}\n{runs.story()}"
    assert unbooted_at >= boot_at - LEAD_S / 2, (  # polls 0.5 s apart, and `docker top` is slow under load
        f"booted before {unbooted_at:.1f}, well before its boot time {boot_at:.0f}\n{runs.story()}")

    sleep_until(tick + 0.5)  # the schedule's run at that tick
    second = runs.materialize()
    facts = runs.facts(second)
    assert facts["warm_spare"] is True and spare["Id"].startswith(facts["container"]), runs.story()
    left = sandbox.client.api.containers(all=True, filters={"id": spare["Id"]})
    assert left == [], f"the claimed spare outlived its run: {left}\n{runs.story()}"
    assert first.asset_materializations_for_node("ticking") and second.asset_materializations_for_node("ticking")

    # Run 2 knows its own next tick too: it leaves one spare, for the tick after.
    wait_for_spare_makers()
    found = ahead_of(spares_of(sandbox, key))
    assert len(found) == 1 and found[0]["Id"] != spare["Id"], f"want one new spare ahead, found {found}\n{runs.story()}"
    after = found[0]
    _, next_boot_at = supervisor_times(sandbox.client.api.inspect_container(after["Id"])["Config"]["Cmd"])
    assert next_boot_at == tick + 60 - LEAD_S, f"boot at {next_boot_at:.0f}, want {tick + 60 - LEAD_S:.0f}\n{runs.story()}"
