"""DockerSandbox against the real engine and the real sandbox image (no mocks).

The session fixture builds the image (offline recipe) when it is missing, so
the first run on a fresh machine takes about a minute longer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from nb_assets.sandbox.container import DockerSandbox
from nb_assets.errors import SandboxUnavailableError
from nb_assets.sandbox.image import image_tag
from nb_assets.sandbox.base import RunFolder, SandboxLimits
from support.docker_runs import make_run_folder, result_json

pytestmark = pytest.mark.docker

QUICK = SandboxLimits(timeout_s=120, memory_mb=1024, cpus=1.0, pids=128, tmp_mb=64)


@pytest.fixture(scope="session")
def sandbox(docker_image: str) -> DockerSandbox:
    return DockerSandbox(image=docker_image)


def leftover_containers(sandbox: DockerSandbox, folder: RunFolder) -> list:
    label = f"nb_assets.run_folder={folder.root}"
    return sandbox.client.containers.list(all=True, filters={"label": label})


def test_trivial_notebook_succeeds(sandbox: DockerSandbox, tmp_path: Path) -> None:
    folder = make_run_folder(tmp_path / "run", "x = 40 + 2", "print(x)")

    result = sandbox.run(folder, QUICK)

    assert result.exit_code == 0, result.logs
    assert not result.timed_out and not result.oom_killed
    assert result_json(folder) == {"status": "success", "error": None}
    executed = nbformat.read(folder.executed_notebook, as_version=4)
    assert executed.cells[-1].outputs[0]["text"] == "42\n"
    assert result.facts["kind"] == "docker" and result.facts["network"] == "none"
    assert result.facts["image"] == image_tag()
    assert result.facts["image_id"].startswith("sha256:")
    assert result.facts["exit_code"] == 0
    assert result.facts["limits"]["memory_mb"] == QUICK.memory_mb
    assert leftover_containers(sandbox, folder) == []
    # What the container wrote is handed back to the host user.
    assert folder.executed_notebook.stat().st_uid == Path(tmp_path).stat().st_uid


def test_reads_input_writes_output_and_nothing_else(sandbox: DockerSandbox, tmp_path: Path) -> None:
    folder = make_run_folder(
        tmp_path / "run",
        """
import json, os, pandas as pd
orders = pd.read_parquet(os.path.join(os.environ["NB_ASSETS_INPUT_DIR"], "orders.parquet"))
totals = orders.groupby("customer")["amount"].sum().reset_index()
totals.to_parquet(os.path.join(os.environ["NB_ASSETS_OUTPUT_DIR"], "totals.parquet"))

def refused(path):
    try:
        with open(path, "w") as f:
            f.write("x")
    except OSError as exc:
        return exc.strerror
    return None

status = open("/proc/self/status").read()
facts = {
    "uid": os.getuid(),
    "cwd": os.getcwd(),
    "cap_eff": [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0],
    "no_new_privs": [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")][0],
    "write_input": refused(os.path.join(os.environ["NB_ASSETS_INPUT_DIR"], "evil.parquet")),
    "write_input_file": refused(os.path.join(os.environ["NB_ASSETS_INPUT_DIR"], "orders.parquet")),
    "write_runtime": refused(os.path.join(os.environ["PYTHONPATH"], "evil.py")),
    "write_root_fs": refused("/usr/evil"),
    "write_work": refused("scratch.txt"),
    "write_tmp": refused("/tmp/scratch.txt"),
}
with open(os.path.join(os.environ["NB_ASSETS_OUTPUT_DIR"], "facts.json"), "w") as f:
    json.dump(facts, f)
""",
    )
    pd.DataFrame({"customer": [1, 1, 2], "amount": [1.0, 2.0, 5.0]}).to_parquet(folder.input_dir / "orders.parquet")
    folder.input_dir.chmod(0o700)  # the sandbox must still be able to read it

    result = sandbox.run(folder, QUICK)

    assert result.exit_code == 0, result.logs + json.dumps(result_json(folder))
    totals = pd.read_parquet(folder.output_dir / "totals.parquet")
    assert totals.to_dict("list") == {"customer": [1, 2], "amount": [3.0, 5.0]}
    facts = json.loads((folder.output_dir / "facts.json").read_text())
    assert facts["uid"] == 1000 and facts["cwd"] == "/nb/work"
    assert int(facts["cap_eff"], 16) == 0 and facts["no_new_privs"] == "1"
    # The job is copied into the container's own volume as root's read-only files.
    assert facts["write_input"] == facts["write_input_file"] == facts["write_runtime"] == "Permission denied"
    assert facts["write_root_fs"] == "Read-only file system"
    assert facts["write_work"] is None and facts["write_tmp"] is None  # tmpfs scratch
    assert sorted(p.name for p in folder.input_dir.iterdir()) == ["orders.parquet"]
    assert list(folder.work_dir.iterdir()) == []  # scratch stayed in the container


@pytest.fixture
def loopback_server():
    """A TCP server on the host's loopback that counts the connections it gets."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(peer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_no_network_inside(sandbox: DockerSandbox, tmp_path: Path, loopback_server) -> None:
    port, accepted = loopback_server
    # The UDP probe only asks the kernel for a route (connect() on UDP sends
    # nothing), and 192.0.2.1 is a documentation address: no packet leaves.
    folder = make_run_folder(
        tmp_path / "run",
        f"""
import json, os, socket

def attempt(family, kind, address):
    s = socket.socket(family, kind)
    s.settimeout(3)
    try:
        s.connect(address)
        return "connected"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        s.close()

probe = {{
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "route_to_internet": attempt(socket.AF_INET, socket.SOCK_DGRAM, ("192.0.2.1", 53)),
    "host_loopback_server": attempt(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", {port})),
}}
with open(os.path.join(os.environ["NB_ASSETS_OUTPUT_DIR"], "probe.json"), "w") as f:
    json.dump(probe, f)
""",
    )

    result = sandbox.run(folder, QUICK)

    assert result.exit_code == 0, result.logs
    probe = json.loads((folder.output_dir / "probe.json").read_text())
    assert probe["interfaces"] == ["lo"]
    assert probe["route_to_internet"] == "Network is unreachable"
    assert probe["host_loopback_server"] == "Connection refused"  # its own loopback, not the host's
    assert accepted == []


def test_timeout_kills_and_removes_the_container(sandbox: DockerSandbox, tmp_path: Path) -> None:
    folder = make_run_folder(tmp_path / "run", "import time\ntime.sleep(600)")

    result = sandbox.run(folder, SandboxLimits(timeout_s=6, memory_mb=512, tmp_mb=16))

    assert result.timed_out
    assert result.exit_code != 0
    assert 6 <= result.duration_s < 30
    assert not folder.result_file.exists()  # the runner never got to its verdict
    assert leftover_containers(sandbox, folder) == []


def test_memory_bomb_is_oom_killed(sandbox: DockerSandbox, tmp_path: Path) -> None:
    folder = make_run_folder(
        tmp_path / "run",
        "hog = []\nfor _ in range(64):\n    hog.append(b'x' * (32 * 1024 * 1024))",
    )

    result = sandbox.run(folder, SandboxLimits(timeout_s=120, memory_mb=256, tmp_mb=16))

    assert result.oom_killed, result.logs
    assert not result.timed_out
    assert result.exit_code != 0
    verdict = result_json(folder)
    assert verdict["status"] == "failed" and verdict["error"]["kind"] == "dead-kernel"
    assert leftover_containers(sandbox, folder) == []


def test_missing_image_is_a_clear_error(sandbox: DockerSandbox) -> None:
    with pytest.raises(SandboxUnavailableError, match="nb-assets sandbox build"):
        DockerSandbox(image="nb-assets-sandbox:no-such-recipe", client=sandbox.client)
    lazy = DockerSandbox(image="nb-assets-sandbox:no-such-recipe", client=sandbox.client, lazy=True)
    assert lazy.describe(QUICK)["image_id"] is None


def test_containers_nobody_will_collect_are_swept(sandbox: DockerSandbox, tmp_path: Path) -> None:
    """Past their deadline, or owned by a host process that is gone: removed. Others: left alone."""
    import subprocess
    import time

    from nb_assets.sandbox.janitor import DEADLINE_LABEL, OWNER_LABEL, owner, sweep_abandoned

    ended = subprocess.Popen(["sleep", "0"])
    owner_that_ended = f"{owner().split(':')[0]}:{ended.pid}:{Path(f'/proc/{ended.pid}/stat').read_text().rpartition(')')[2].split()[19]}"
    ended.wait()
    later = f"{time.time() + 3600:.0f}"
    cases = {
        "past-deadline": {DEADLINE_LABEL: f"{time.time() - 5:.0f}", OWNER_LABEL: owner()},
        "owner-gone": {DEADLINE_LABEL: later, OWNER_LABEL: owner_that_ended},
        "alive": {DEADLINE_LABEL: later, OWNER_LABEL: owner()},
        "other-host": {DEADLINE_LABEL: later, OWNER_LABEL: "elsewhere.invalid:1:1"},
        # A run worker in a container with host networking: this host's name, pids of its own
        # namespace that this one cannot check; only its deadline may end it.
        "other-pid-namespace": {DEADLINE_LABEL: later, OWNER_LABEL: owner_in_another_pid_namespace()},
    }
    mine = {"nb_assets.sandbox": "1", "nb_assets.run_folder": str(tmp_path)}
    ids = {
        name: sandbox.client.api.create_container(sandbox.image, ["true"], labels={**mine, **labels})["Id"]
        for name, labels in cases.items()
    }
    try:
        sweep_abandoned(sandbox.client)

        remaining = {c["Id"] for c in leftover_containers_by_label(sandbox, tmp_path)}
        assert {name for name, cid in ids.items() if cid in remaining} == {"alive", "other-host", "other-pid-namespace"}
    finally:
        for c in leftover_containers_by_label(sandbox, tmp_path):
            sandbox.client.api.remove_container(c["Id"], force=True)


def owner_in_another_pid_namespace() -> str:
    """owner() as a process of a new pid namespace on this host sees itself (as pid 1)."""
    import subprocess
    import sys

    code = "from nb_assets.sandbox.janitor import owner; print(owner())"
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def leftover_containers_by_label(sandbox: DockerSandbox, root: Path) -> list[dict]:
    return sandbox.client.api.containers(all=True, filters={"label": f"nb_assets.run_folder={root}"})


def test_nothing_of_the_host_is_mounted(sandbox: DockerSandbox, tmp_path: Path) -> None:
    """Copy-in and copy-out go through the engine API, so the engine need not share the host's disk."""
    import time

    folder = make_run_folder(tmp_path / "run", "import time\ntime.sleep(8)")
    seen: list[dict] = []

    def watch() -> None:
        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:
            for c in leftover_containers_by_label(sandbox, folder.root):
                seen.append(sandbox.client.api.inspect_container(c["Id"]))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = sandbox.run(folder, QUICK)
    watcher.join()

    assert result.exit_code == 0, result.logs
    [container] = seen[:1]
    assert {m["Type"] for m in container["Mounts"]} == {"volume"}  # the job's own anonymous volume
    assert not container["HostConfig"].get("Binds")
    assert set(container["HostConfig"]["Tmpfs"]) == {"/tmp", "/home/nb", "/nb/work", "/nb/output", "/nb/record"}
    assert container["HostConfig"]["AutoRemove"] is True


def test_the_python_trees_come_read_only_from_their_volumes(sandbox: DockerSandbox, tmp_path: Path) -> None:
    """sandbox/usr_volume.py: the image's stdlib and site-packages, copied once into volumes, mounted
    read-only over the same paths: the notebook sees the same files and can change none of them."""
    from nb_assets.sandbox import usr_volume

    assert usr_volume.ensure(sandbox.client, sandbox.image)
    folder = make_run_folder(
        tmp_path / "run",
        "import os, pandas, json\n"
        "trees = ['/usr/lib/python3.11', '/usr/local/lib/python3.11']\n"
        "flags = {t: bool(os.statvfs(t).f_flag & os.ST_RDONLY) for t in trees}\n"
        "denied = {}\n"
        "for t in trees:\n"
        "    try:\n"
        "        open(os.path.join(t, 'planted.py'), 'w').write('x = 1')\n"
        "        denied[t] = False\n"
        "    except OSError:\n"
        "        denied[t] = True\n"
        "print(json.dumps({'read_only': flags, 'denied': denied, 'pandas': pandas.__file__}))",
    )
    seen: list[dict] = []

    def watch() -> None:
        import time

        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:
            for c in leftover_containers_by_label(sandbox, folder.root):
                seen.append(sandbox.client.api.inspect_container(c["Id"]))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = sandbox.run(folder, QUICK)
    watcher.join()

    assert result.exit_code == 0, result.logs
    out = json.loads(nbformat.read(folder.executed_notebook, as_version=4).cells[-1].outputs[0]["text"])
    assert out["read_only"] == {"/usr/lib/python3.11": True, "/usr/local/lib/python3.11": True}
    assert all(out["denied"].values())
    assert out["pandas"].startswith("/usr/local/lib/python3.11/")
    [container] = seen[:1]
    trees = {m["Destination"]: m for m in container["Mounts"] if m["Destination"].startswith("/usr")}
    assert set(trees) == {"/usr/lib/python3.11", "/usr/local/lib/python3.11"}
    assert all(m["RW"] is False and m["Name"].startswith(usr_volume.VOLUME_PREFIX) for m in trees.values())


def test_a_copy_of_the_python_trees_that_is_not_complete_is_never_mounted(sandbox: DockerSandbox) -> None:
    from nb_assets.sandbox import usr_volume

    image_id = "sha256:" + "0" * 64  # no image: nothing made its volumes, let alone finished them
    name = usr_volume.volume_name(image_id, "site")
    sandbox.client.api.create_volume(name, labels={usr_volume.VOLUME_LABEL: image_id})
    try:
        assert usr_volume.mounts_for(sandbox.client, image_id) == []  # no `-ok` volume: not complete
    finally:
        sandbox.client.api.remove_volume(name, force=True)


def test_a_filler_a_dead_process_left_behind_is_cleared_and_the_copy_made_again(sandbox: DockerSandbox) -> None:
    """A filler process that died (a deployment's run worker removed under it) leaves its exited container
    holding the volumes and no `-ok` mark: the next filler removes it and copies again, instead of failing
    to remove volumes "in use" (409). On an image of its own, so no other test's volumes are touched."""
    import io
    import uuid

    from docker.types import Mount

    from nb_assets.sandbox import usr_volume

    client = sandbox.client
    tag = f"nb-assets-usr-leftover-test:{uuid.uuid4().hex[:8]}"
    image, _ = client.images.build(fileobj=io.BytesIO(f"FROM {sandbox.image}\nLABEL nb_assets.test={tag}\n".encode()),
                                   tag=tag, rm=True)
    names = [usr_volume.volume_name(image.id, tree) for tree in usr_volume.TREES]
    try:
        for name in names:
            client.api.create_volume(name, labels={usr_volume.VOLUME_LABEL: image.id})
        leftover = client.containers.create(tag, command=["true"], network_mode="none", labels={usr_volume.VOLUME_LABEL: image.id},
                                            mounts=[Mount(f"/fill/{n}", n, type="volume", no_copy=True) for n in names])
        leftover.start()
        leftover.wait(timeout=60)

        assert usr_volume.ensure(client, tag)
        assert usr_volume.mounts_for(client, image.id)  # complete: `-ok` made after a whole copy
        assert not client.containers.list(all=True, filters={"label": f"{usr_volume.VOLUME_LABEL}={image.id}"})
    finally:
        for container in client.containers.list(all=True, filters={"label": f"{usr_volume.VOLUME_LABEL}={image.id}"}):
            container.remove(force=True)
        for name in [*names, usr_volume.volume_name(image.id) + "-ok"]:
            with contextlib.suppress(Exception):
                client.api.remove_volume(name, force=True)
        client.images.remove(image.id, force=True)
