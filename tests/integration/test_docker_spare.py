"""Warm spares against the real engine and sandbox image: claimed once, the run's own settings, cleaned up.

Each test uses limits no other test uses, so the spares it sees are its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nb_assets.sandbox.janitor import BOOT_AT_LABEL, CLAIMED_PREFIX, OFFERED_PREFIX, POOL_LABEL, SPARE_LABEL, sweep_abandoned
from nb_assets.sandbox.container import DockerSandbox, _runtime_tar
from nb_assets.sandbox.spares import claim_spare, claims_dir, forget_claim, spare_key
from nb_assets.sandbox.base import RunFolder, SandboxLimits

from support.docker_runs import make_run_folder, result_json
from support.paths import REPO
from support.polling import read_line

pytestmark = pytest.mark.docker


@pytest.fixture()
def spares(docker_image: str) -> DockerSandbox:
    return DockerSandbox(image=docker_image, spares=True)


def limits_of_this_test(tmp_mb: int) -> SandboxLimits:
    return SandboxLimits(timeout_s=120, memory_mb=1024, cpus=1.0, pids=128, tmp_mb=tmp_mb)


def spare_ids(sandbox: DockerSandbox, key: str, prefix: str = OFFERED_PREFIX) -> list[str]:
    found = sandbox.client.api.containers(all=True, filters={"label": f"{SPARE_LABEL}={key}"})
    return [c["Id"] for c in found if c["Names"][0].lstrip("/").startswith(prefix)]


def key_of(sandbox: DockerSandbox, folder: RunFolder, limits: SandboxLimits) -> str:
    return spare_key(json.dumps(sandbox._settings(limits), sort_keys=True, default=repr), _runtime_tar(folder.runtime_dir))


def remove_all(sandbox: DockerSandbox, key: str) -> None:
    for c in sandbox.client.api.containers(all=True, filters={"label": f"{SPARE_LABEL}={key}"}):
        sandbox.client.api.remove_container(c["Id"], force=True)


def test_each_run_gets_its_own_container_and_a_spare_serves_one_run(spares: DockerSandbox, tmp_path: Path) -> None:
    limits = limits_of_this_test(71)
    folders = [make_run_folder(tmp_path / f"run{i}", f"x = {i}", "print(x)") for i in range(3)]
    key = key_of(spares, folders[0], limits)
    try:
        results = []
        for folder in folders:
            [offered] = [None] if not results else spare_ids(spares, key)  # the previous run left exactly one
            result = spares.run(folder, limits)
            spares.wait_for_spare()  # the next run's spare is made by a process of its own
            assert result.exit_code == 0, result.logs
            assert result_json(folder) == {"status": "success", "error": None}
            if offered is not None:  # claimed: this run used the spare it found, which is gone now
                assert result.facts["warm_spare"] is True and offered.startswith(result.facts["container"])
                assert spares.client.api.containers(all=True, filters={"id": offered}) == []
                assert not (claims_dir() / offered).exists()
            results.append(result)
        assert results[0].facts["warm_spare"] is False
        assert len({r.facts["container"] for r in results}) == 3
        [left] = spare_ids(spares, key)
        assert all(not left.startswith(r.facts["container"]) for r in results)
    finally:
        remove_all(spares, key)


def test_two_runs_never_claim_the_same_spare(spares: DockerSandbox, tmp_path: Path) -> None:
    limits = limits_of_this_test(72)
    folder = make_run_folder(tmp_path / "run", "pass")
    key = key_of(spares, folder, limits)
    try:
        offered = spares.make_spare(limits)
        assert spare_ids(spares, key) == [offered]
        claims: list[str | None] = []
        start = threading.Barrier(8)

        def claim() -> None:
            start.wait()
            claims.append(claim_spare(spares.client, key)[0])

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [c for c in claims if c] == [offered] and claims.count(None) == 7
        assert spare_ids(spares, key, CLAIMED_PREFIX) == [offered]  # renamed: whose run it is, for the janitor
        assert claim_spare(spares.client, key) == (None, 0)  # and never again
    finally:
        remove_all(spares, key)
        for c in claims:
            if c:
                (claims_dir() / c).unlink(missing_ok=True)


def test_a_claimed_spare_has_the_settings_of_a_container_made_for_the_run(spares: DockerSandbox, tmp_path: Path) -> None:
    limits = SandboxLimits(timeout_s=90, memory_mb=768, cpus=0.5, pids=99, tmp_mb=73, output_mb=33)
    seen: dict[str, dict] = {}

    def watch(name: str, folder: RunFolder) -> None:
        """The container running this run: made for it (labelled with its folder), or a claimed spare."""
        deadline = time.monotonic() + 120
        while name not in seen and time.monotonic() < deadline:
            for c in spares.client.api.containers(filters={"status": "running"}):
                ours = c["Labels"].get("nb_assets.run_folder") == str(folder.root) if name == "cold" else (
                    c["Labels"].get(SPARE_LABEL) == key and c["Names"][0].lstrip("/").startswith(CLAIMED_PREFIX))
                if ours:
                    seen[name] = spares.client.api.inspect_container(c["Id"])
            time.sleep(0.1)

    cold_folder = make_run_folder(tmp_path / "cold", "import time\ntime.sleep(4)")
    warm_folder = make_run_folder(tmp_path / "warm", "import time\ntime.sleep(4)")
    key = key_of(spares, cold_folder, limits)
    try:
        for name, folder in (("cold", cold_folder), ("warm", warm_folder)):
            watcher = threading.Thread(target=watch, args=(name, folder))
            watcher.start()
            result = spares.run(folder, limits)
            spares.wait_for_spare()
            watcher.join()
            assert result.exit_code == 0, result.logs
            assert result.facts["warm_spare"] is (name == "warm")
        cold, warm = seen["cold"], seen["warm"]
        assert warm["Name"].lstrip("/").startswith(CLAIMED_PREFIX)
        assert warm["HostConfig"] == cold["HostConfig"]  # limits, mounts, tmpfs sizes, caps, network, runtime
        for k in ("Image", "User", "Env", "WorkingDir", "Hostname"):
            assert warm["Config"][k] == cold["Config"][k], k
        host = warm["HostConfig"]
        assert host["Memory"] == host["MemorySwap"] == 768 << 20
        assert host["NanoCpus"] == 5 * 10**8 and host["PidsLimit"] == 99
        assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert "size=73m" in host["Tmpfs"]["/tmp"] and "size=33m" in host["Tmpfs"]["/nb/output"]
        # The commands differ only in the claim-by (when the spare stops waiting for a run).
        differ = [i for i, (a, b) in enumerate(zip(warm["Config"]["Cmd"], cold["Config"]["Cmd"])) if a != b]
        assert len(differ) == 1 and len(warm["Config"]["Cmd"]) == len(cold["Config"]["Cmd"])
    finally:
        remove_all(spares, key)


MAKER = """
import sys, tempfile, time
from pathlib import Path
from nb_assets.sandbox.container import DockerSandbox, _runtime_tar
from nb_assets.sandbox.spares import make_spare, offer_spare
from nb_assets.sandbox.base import RunFolder, SandboxLimits
sandbox = DockerSandbox(image=sys.argv[1])
limits = SandboxLimits(timeout_s=120, memory_mb=1024, cpus=1.0, pids=128, tmp_mb=int(sys.argv[3]))
config = sandbox._container_config(limits, time.time() + 600, labels={})
if sys.argv[2] == "booting":  # killed between making the container and offering it
    print(make_spare(sandbox.client, config, "k-" + sys.argv[3])[1].id, flush=True)
    time.sleep(600)
else:  # offered, then the maker leaves
    folder = RunFolder(Path(tempfile.mkdtemp())).create()
    folder.install_inbox_files()
    print(offer_spare(sandbox.client, config, "k-" + sys.argv[3], _runtime_tar(folder.runtime_dir), "/nb/in"), flush=True)
"""


def test_the_janitor_removes_a_dead_hosts_spare_and_keeps_one_offered(spares: DockerSandbox, docker_image: str) -> None:
    """A spare whose maker died while making it is removed; an offered one waits for a run until its claim-by."""

    def maker(state: str, tmp_mb: int) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen([sys.executable, "-c", MAKER, docker_image, state, str(tmp_mb)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        return proc, read_line(proc, f"the {state} spare's container id", timeout_s=300).strip()

    booting, booting_id = maker("booting", 74)
    offered, offered_id = maker("offered", 75)
    try:
        assert offered.wait(60) == 0
        booting.send_signal(signal.SIGKILL)
        booting.wait()
        sweep_abandoned(spares.client)
        alive = {c["Id"] for c in spares.client.api.containers(all=True, filters={"label": SPARE_LABEL})}
        assert booting_id not in alive
        assert offered_id in alive
    finally:
        booting.kill()
        for key in ("k-74", "k-75"):
            remove_all(spares, key)


def test_an_unclaimed_spare_ends_by_itself_at_its_claim_by(spares: DockerSandbox, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    limits = limits_of_this_test(76)
    folder = make_run_folder(tmp_path / "run", "pass")
    key = key_of(spares, folder, limits)
    monkeypatch.setenv("NB_ASSETS_SPARE_TTL_S", "3")
    try:
        spare = spares.make_spare(limits)
        assert spare_ids(spares, key) == [spare]
        assert claim_spare(spares.client, key) == (None, 0)  # too close to its claim-by to be given a run
        deadline = time.monotonic() + 90
        while spare_ids(spares, key) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert spare_ids(spares, key) == [], "the spare outlived its claim-by"
    finally:
        remove_all(spares, key)


# --- spares for runs known in advance (sandbox/ahead.py) --------------------------------------


def runner_running(sandbox: DockerSandbox, container_id: str) -> bool:
    """Whether the in-box runner (papermill, kernel) has been started in the container."""
    processes = sandbox.client.api.top(container_id)["Processes"] or []
    commands = [" ".join(p) for p in processes]  # the supervisor's own command line names the runner too
    return any("inbox_papermill.py" in c and "inbox_supervisor.py" not in c for c in commands)


def test_a_spare_for_a_later_run_boots_by_itself_before_it_is_due_and_serves_that_run(
        spares: DockerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = limits_of_this_test(77)
    folder = make_run_folder(tmp_path / "run", "x = 6 * 7", "print(x)")
    key = key_of(spares, folder, limits)
    monkeypatch.setenv("NB_ASSETS_SPARE_LEAD_S", "6")
    try:
        due = time.time() + 20
        spare = spares.make_spare(limits, due=due)
        assert spare is not None and spare_ids(spares, key) == [spare]
        assert spares.make_spare(limits, due=due) is None  # one for that run is enough
        assert not runner_running(spares, spare)  # waiting unbooted: a sleeping supervisor, no kernel
        deadline = time.monotonic() + 120
        while not runner_running(spares, spare) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert time.time() >= due - 6 - 1, "it booted before its boot time"
        assert runner_running(spares, spare), "it never booted by itself"
        while time.time() < due:
            time.sleep(0.2)
        result = spares.run(folder, limits)
        spares.wait_for_spare()
        assert result.exit_code == 0, result.logs
        assert result.facts["warm_spare"] is True and spare.startswith(result.facts["container"])
        assert spares.client.api.containers(all=True, filters={"id": spare}) == []  # served one run, gone
    finally:
        remove_all(spares, key)


def test_a_run_that_knows_its_next_run_leaves_a_spare_that_boots_only_then(spares: DockerSandbox, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    limits = limits_of_this_test(78)
    folder = make_run_folder(tmp_path / "run", "pass")
    key = key_of(spares, folder, limits)
    monkeypatch.setenv("NB_ASSETS_SPARE_LEAD_S", "30")
    try:
        spares.next_run_at = time.time() + 3600  # e.g. the next tick of an hourly cron
        result = spares.run(folder, limits)
        spares.wait_for_spare()
        assert result.exit_code == 0, result.logs
        labels = {s: spares.client.api.inspect_container(s)["Config"]["Labels"] for s in spare_ids(spares, key)}
        # Two: one booted at once for whatever run comes next (a chain's next step), one for the run due.
        [now] = [s for s, found in labels.items() if BOOT_AT_LABEL not in found]
        [ahead] = [s for s, found in labels.items() if BOOT_AT_LABEL in found]
        assert float(labels[ahead][BOOT_AT_LABEL]) == round(spares.next_run_at - 30)
        assert float(labels[ahead]["nb_assets.claim_by"]) >= spares.next_run_at  # still there when the run comes
        time.sleep(2)
        assert not runner_running(spares, ahead)  # an hour early: not booted, nothing but a supervisor
        # Until it boots it is that run's: a run now claims the other, and sees no other offered now.
        assert claim_spare(spares.client, key) == (now, 0)
        forget_claim(now)
    finally:
        spares.next_run_at = None
        remove_all(spares, key)


def test_idle_spares_are_capped(spares: DockerSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap counts spares that wait booted; one made ahead that has yet to boot holds no kernel, and
    there is one per settings and time."""
    from nb_assets.sandbox.spares import idle_count

    made: list[str] = []
    try:
        monkeypatch.setenv("NB_ASSETS_MAX_IDLE_SPARES", str(idle_count(spares.client) + 1))
        made.append(spares.make_spare(limits_of_this_test(79)) or "")
        assert made[0] and spares.make_spare(limits_of_this_test(80)) is None  # the cap
        due = time.time() + 3600
        made.append(spares.make_spare(limits_of_this_test(84), due=due) or "")
        assert made[1], "an unbooted spare for a later run is not held back by the cap"
        assert spares.make_spare(limits_of_this_test(84), due=due) is None  # one for that run is enough
    finally:
        for spare in filter(None, made):
            remove_all(spares, spares.client.api.inspect_container(spare)["Config"]["Labels"][SPARE_LABEL])


def test_an_unclaimed_spare_made_ahead_ends_by_itself_at_its_claim_by(spares: DockerSandbox, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing on the host has to stay alive for it to go: its maker is gone, it ends by itself."""
    limits = limits_of_this_test(81)
    folder = make_run_folder(tmp_path / "run", "pass")
    key = key_of(spares, folder, limits)
    monkeypatch.setenv("NB_ASSETS_SPARE_LEAD_S", "2")
    monkeypatch.setenv("NB_ASSETS_SPARE_GRACE_S", "2")
    monkeypatch.setenv("NB_ASSETS_SPARE_TTL_S", "3")
    try:
        spare = spares.make_spare(limits, due=time.time() + 4)
        assert spare_ids(spares, key) == [spare]
        deadline = time.monotonic() + 90
        while spare_ids(spares, key) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert spare_ids(spares, key) == [], "the spare outlived its claim-by"
    finally:
        remove_all(spares, key)


def test_in_a_pool_a_run_makes_its_spare_itself_and_only_the_pool_claims_it(
    spares: DockerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deployment's run workers (each in a pid namespace of its own) share spares: the run makes the next
    spare before it returns, since its process ends with its container, and the claim is decided in a
    folder every member sees."""
    pool = f"pool-{tmp_path.name}"
    monkeypatch.setenv("NB_ASSETS_SPARE_POOL", pool)
    monkeypatch.setenv("NB_ASSETS_SPARE_CLAIMS", str(tmp_path / "claims"))
    limits = limits_of_this_test(82)
    folders = [make_run_folder(tmp_path / f"run{i}", f"x = {i}", "print(x)") for i in range(2)]
    key = key_of(spares, folders[0], limits)
    try:
        first = spares.run(folders[0], limits)
        assert first.exit_code == 0 and first.facts["warm_spare"] is False, first.logs
        assert spares._makers == [], "in a pool no maker process is left to die with the run's container"
        [offered] = spare_ids(spares, key)  # there as soon as run() returned
        assert spares.client.api.inspect_container(offered)["Config"]["Labels"][POOL_LABEL] == pool
        monkeypatch.delenv("NB_ASSETS_SPARE_POOL")
        assert claim_spare(spares.client, key) == (None, 0), "claimed from outside its pool"
        monkeypatch.setenv("NB_ASSETS_SPARE_POOL", "another-pool")
        assert claim_spare(spares.client, key) == (None, 0), "claimed from another pool"
        monkeypatch.setenv("NB_ASSETS_SPARE_POOL", pool)
        second = spares.run(folders[1], limits)
        assert second.exit_code == 0 and result_json(folders[1]) == {"status": "success", "error": None}, second.logs
        assert second.facts["warm_spare"] is True and offered.startswith(second.facts["container"])
        assert claims_dir() == tmp_path / "claims" and not (claims_dir() / offered).exists()  # forgotten once removed
        [left] = spare_ids(spares, key)  # the second run's own, for the next
        assert left != offered
    finally:
        remove_all(spares, key)


def test_a_claims_folder_that_cannot_be_written_makes_the_run_cold_not_failed(
    spares: DockerSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = limits_of_this_test(85)
    folders = [make_run_folder(tmp_path / f"run{i}", f"x = {i}", "print(x)") for i in range(2)]
    key = key_of(spares, folders[0], limits)
    try:
        first = spares.run(folders[0], limits)
        spares.wait_for_spare()
        [offered] = spare_ids(spares, key)
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv("NB_ASSETS_SPARE_CLAIMS", str(tmp_path / "a-file" / "claims"))  # no folder can be made there
        second = spares.run(folders[1], limits)
        spares.wait_for_spare()
        assert first.exit_code == 0 and second.exit_code == 0, second.logs
        assert result_json(folders[1]) == {"status": "success", "error": None}
        assert second.facts["warm_spare"] is False and offered in spare_ids(spares, key)  # not claimed: still offered
    finally:
        remove_all(spares, key)
