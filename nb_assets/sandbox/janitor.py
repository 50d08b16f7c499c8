"""Docker sandbox containers nobody will collect, and removing them.

A container's labels say who runs it and until when: `nb_assets.deadline`
(epoch seconds) and `nb_assets.owner` (host:pid:start time of the host
process). A started container ends by itself at its deadline (the supervisor
keeps it inside); sweeping frees it sooner when its owner is gone, and catches
those that never started because their owner died first.

Warm spares (sandbox/spares.py) carry no owner label (a janitor that does not
know them leaves them to their deadline) and are judged by their name: one being made
(nb-assets-boot-*) is its maker's, one offered (nb-assets-spare-*) waits for
any run until its `nb_assets.claim_by` and is abandoned after, one claimed
(nb-assets-run-<token>.<pid>.<start>, in a pool <pid>-<namespace>) belongs to
the run's process named there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

SANDBOX_LABEL = "nb_assets.sandbox"
DEADLINE_LABEL = "nb_assets.deadline"  # epoch seconds after which the container is abandoned
OWNER_LABEL = "nb_assets.owner"  # host:pid:start time of the process that runs it
SPARE_LABEL = "nb_assets.spare"  # on warm spares: the hash of the settings they were made with
CLAIM_BY_LABEL = "nb_assets.claim_by"  # epoch seconds: an offered spare nobody claimed by then is abandoned
BOOT_AT_LABEL = "nb_assets.boot_at"  # on spares made ahead of a run: epoch seconds when it boots, for that run
MAKER_LABEL = "nb_assets.maker"  # on spares, instead of an owner: host:pid:start time of the process making it
MAKER_UID_LABEL = "nb_assets.maker_uid"  # only the user who made a spare claims it
POOL_LABEL = "nb_assets.spare_pool"  # on spares of a pool (a deployment's run workers): claimed by its members only
BOOT_PREFIX, OFFERED_PREFIX, CLAIMED_PREFIX = "nb-assets-boot-", "nb-assets-spare-", "nb-assets-run-"


def sweep_abandoned(client: Any) -> None:
    """Remove sandbox containers nobody will collect: past their deadline, or started by a host
    process (on this machine) that is gone, e.g. killed between creating and starting one.

    A started container ends by itself at its deadline anyway; this frees it
    sooner, and catches those that never started.
    """
    now = time.time()
    for summary in client.api.containers(all=True, filters={"label": SANDBOX_LABEL}):
        labels = summary.get("Labels") or {}
        try:
            deadline = float(labels.get(DEADLINE_LABEL, "inf"))
        except ValueError:
            deadline = float("inf")
        if deadline < now or _abandoned(labels, (summary.get("Names") or ["/"])[0].lstrip("/"), now):
            remove_container(client, summary["Id"])


def _abandoned(labels: dict[str, str], name: str, now: float) -> bool:
    if SPARE_LABEL not in labels:
        return _owner_gone(labels.get(OWNER_LABEL))
    if name.startswith(OFFERED_PREFIX):  # its maker may be gone: handing it to the next run is its purpose
        try:
            return float(labels.get(CLAIM_BY_LABEL, "0")) < now
        except ValueError:
            return True
    if name.startswith(CLAIMED_PREFIX):  # the claiming run's process
        claimer = claimed_by(name, labels)
        return claimer is None or _owner_gone(claimer)
    return _owner_gone(labels.get(MAKER_LABEL))  # being made: its maker's


def claimed_by(name: str, labels: dict[str, str]) -> str | None:
    """host:pid:start of the process that claimed a spare, from its name: nb-assets-run-<token>.<pid>.<start>
    (claimed on the host and in the pid namespace that made it) or, in a pool, <token>.<pid>-<namespace>.<start>
    (a pool member's own namespace on the maker's host: members share the host's name). None for a name that
    says neither."""
    parts = name[len(CLAIMED_PREFIX):].split(".")
    if len(parts) != 3:
        return None
    host = (labels.get(MAKER_LABEL) or "").partition(":")[0]
    pid, _, namespace = parts[1].partition("-")
    if namespace:
        host = f"{host.partition('+')[0]}+{namespace}"
    return f"{host}:{pid}:{parts[2]}"


def claimer_namespace(name: str) -> str:
    """The pid namespace a pool's claimed spare names for its claimer; "" for any other name."""
    parts = name[len(CLAIMED_PREFIX):].split(".") if name.startswith(CLAIMED_PREFIX) else []
    return parts[1].partition("-")[2] if len(parts) == 3 else ""


def owner() -> str:
    """host:pid:start time of this process, so a recycled pid is not taken for its owner."""
    return f"{here()}:{os.getpid()}:{_start_time(os.getpid())}"


def here() -> str:
    """This host's name and PID namespace: the only place whose pids this process can check.

    A run worker in a container (the deployment: host networking) has the host's
    name but its own pids; another run worker's pid 7 is not this one's, so a
    container owned from another namespace is left to its deadline, never taken
    for abandoned."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}+{namespace}" if namespace else socket.gethostname()


def _owner_gone(label: str | None) -> bool:
    host, _, rest = (label or "").partition(":")
    pid, _, started = rest.partition(":")
    if host != here() or not pid.isdigit():
        return False  # another machine's, or no owner recorded: its deadline decides
    return _start_time(int(pid)) != started


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat.rpartition(")")[2].split()[19]  # field 22, counted after the command name


def remove_container(client: Any, container_id: str) -> None:
    """Force-remove with its anonymous volume; already gone (auto_remove) is fine."""
    import docker.errors

    try:
        client.api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: removal already in progress (auto_remove): let it finish
            raise
        with contextlib.suppress(docker.errors.NotFound):
            client.api.wait(container_id, timeout=60, condition="removed")
