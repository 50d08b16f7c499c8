"""Warm spares: a fresh sandbox container started ahead of the run that will use it.

A run's container boots slowly on some engines (Python, papermill and the
kernel start inside it; on fuse-overlayfs each file lookup is slow). A spare
does that boot before any run needs it: made by a process of its own
(spare_maker.py) that the previous run starts once it is over (so the two do
not compete for the CPU), its in-box runner imports papermill, starts the
kernel, and waits for a job (inbox_supervisor.py). The next run
with the same container settings claims it, copies its job in, and the
supervisor's deadline starts then.

Isolation is that of any run's container: a spare is made with exactly the
settings (limits, mounts, image, in-box code) of the run that claims it, its
settings' hash is its `nb_assets.spare` label, and it is claimed once:

  claim     O_EXCL of a file named after the container in this user's claims
            folder (two runs never both win), then a rename to
            nb-assets-run-<token>.<pid>.<start time> so anyone can see whose
            run it is; the claimed container is removed after its run.
  whose     only spares this user made on this machine are claimed; in a pool
            (NB_ASSETS_SPARE_POOL: a deployment's run workers, each a
            container of its own, so a pid namespace of its own), the spares
            its members made, whatever their namespace, with the claims
            folder shared (NB_ASSETS_SPARE_CLAIMS) so the O_EXCL still decides.
  lifetime  an offered spare waits for a run until its `nb_assets.claim_by`
            label (SPARE_TTL_S); then its supervisor ends it (auto-remove) and
            the janitor removes what is left. A spare outlives the process
            that made it on purpose: the next run is usually another process.

Names say where a spare is in its life, for the janitor (sandbox/janitor.py):
nb-assets-boot-<token> while it is being made (its maker's death orphans it),
nb-assets-spare-<token> once offered, nb-assets-run-<token>.<pid>.<start> once claimed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from nb_assets.sandbox.janitor import (
    BOOT_AT_LABEL,
    BOOT_PREFIX,
    CLAIM_BY_LABEL,
    CLAIMED_PREFIX,
    MAKER_LABEL,
    MAKER_UID_LABEL,
    OFFERED_PREFIX,
    POOL_LABEL,
    SPARE_LABEL,
    here,
    owner,
    remove_container,
)
from nb_assets.sandbox.image import cache_dir
from nb_assets.inbox.supervisor import BOOT_FILE

CLAIM_MARGIN_S = 30.0  # a spare this close to its claim-by is left alone: the go must arrive before it

__all__ = [
    "boot_spare", "claim_spare", "forget_claim", "idle_count", "offer_spare", "offered_count", "spare_key", "spare_pool",
    "spare_ttl_s", "spares_per_settings", "spares_wanted", "sweep_claims",
]


def spares_wanted() -> bool:
    """Runs chosen by kind (CLI, Dagster) keep a warm spare unless NB_ASSETS_DOCKER_SPARES=0."""
    return os.environ.get("NB_ASSETS_DOCKER_SPARES", "1") != "0"


def spare_ttl_s() -> float:
    """How long an offered spare waits for a run (NB_ASSETS_SPARE_TTL_S, default 180 s)."""
    return float(os.environ.get("NB_ASSETS_SPARE_TTL_S", "180"))


def spare_pool() -> str:
    """The pool this process's runs share spares with (NB_ASSETS_SPARE_POOL), or "" for this host's own.

    A deployment's run worker lives for one run in a container of its own: a
    spare only it could claim would die unused. Its pool is the deployment, so
    the spare one run worker leaves is claimed by the next (deploy/config.py)."""
    return os.environ.get("NB_ASSETS_SPARE_POOL", "")


def spares_per_settings() -> int:
    """How many offered spares of one settings hash are enough (NB_ASSETS_SPARES_PER_SETTINGS, default 1):
    a deployment sets its number of run slots, so runs side by side each find one."""
    return max(1, int(os.environ.get("NB_ASSETS_SPARES_PER_SETTINGS", "1")))


def spare_key(settings: str, runtime_tar: bytes) -> str:
    """The hash of everything a run's container is made with: a spare serves only runs with the same."""
    return hashlib.sha256(settings.encode() + b"\0" + runtime_tar).hexdigest()[:24]


def claims_dir() -> Path:
    path = Path(os.environ.get("NB_ASSETS_SPARE_CLAIMS") or cache_dir() / "spare-claims")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def offered_count(client: Any, key: str, *, until: float | None = None) -> int:
    """How many spares made with `key` are offered to this user's runs here (none is claimed by this);
    with `until` (epoch seconds), only those still claimable then."""
    at = time.time() if until is None else until
    return len([o for o in _offered(client, key) if o[0] - at > CLAIM_MARGIN_S and o[3] <= at])


def idle_count(client: Any) -> int:
    """This user's spares on this host (or pool) that wait for a run booted, whatever their settings: offered
    or being made. One made ahead that has yet to boot holds a sleeping supervisor (~6 MB), not a kernel, and
    there is one per settings and time at most (DockerSandbox.make_spare): it is not counted."""
    now = time.time()
    count = 0
    for summary in client.api.containers(all=True, filters={"label": SPARE_LABEL}):
        name = (summary.get("Names") or ["/"])[0].lstrip("/")
        labels = summary.get("Labels") or {}
        if name.startswith((OFFERED_PREFIX, BOOT_PREFIX)) and _ours(labels) and _boot_at(labels) <= now:
            count += 1
    return count


def _boot_at(labels: dict[str, str]) -> float:
    try:
        return float(labels.get(BOOT_AT_LABEL, "0"))
    except ValueError:
        return 0.0


def _ours(labels: dict[str, str]) -> bool:
    """Made by this user, here: on this host and pid namespace, or in this process's pool."""
    if labels.get(MAKER_UID_LABEL) != str(os.getuid()):
        return False
    pool = spare_pool()
    if pool:
        return labels.get(POOL_LABEL) == pool
    return POOL_LABEL not in labels and (labels.get(MAKER_LABEL) or "").partition(":")[0] == here()


def claim_spare(client: Any, key: str) -> tuple[str | None, int]:
    """Claim one offered spare made with `key`: (its id or None, how many others are still offered)."""
    now = time.time()
    # One made ahead of a run is that run's until it boots: unbooted it would save another run little.
    offered = [o for o in _offered(client, key) if o[3] <= now]
    # One made ahead for now first (the run it was made for is likely this one), then the freshest.
    for n, (_, container_id, token, _) in enumerate(sorted(offered, key=lambda o: (o[3] > 0, o[0]), reverse=True)):
        if _take(container_id):
            with contextlib.suppress(Exception):  # the name only tells the janitor whose run it is
                client.api.rename(container_id, claimed_name(token))
            return container_id, len(offered) - n - 1
    return None, 0


def _offered(client: Any, key: str) -> list[tuple[float, str, str, float]]:
    """(claim-by, id, token, boot-at or 0) of the spares made with `key` that this user's runs here may claim."""
    now = time.time()
    offered = []
    for summary in client.api.containers(filters={"label": f"{SPARE_LABEL}={key}", "status": "running"}):
        labels = summary.get("Labels") or {}
        name = (summary.get("Names") or ["/"])[0].lstrip("/")
        try:
            claim_by = float(labels.get(CLAIM_BY_LABEL, "0"))
        except ValueError:
            continue
        if name.startswith(OFFERED_PREFIX) and _ours(labels) and claim_by - now > CLAIM_MARGIN_S:
            offered.append((claim_by, summary["Id"], name[len(OFFERED_PREFIX):], _boot_at(labels)))
    return offered


def claimed_name(token: str) -> str:
    """Whose run it is, for the janitors (janitor.claimed_by): the claimer's pid and start time, and in a
    pool its pid namespace, which is not the maker's: <token>.<pid>-<namespace>.<start>, so a janitor that
    knows no pools reads a pid that is no number and leaves the container to its deadline."""
    host, pid, started = owner().split(":")
    if spare_pool() and "+" in host:
        pid = f"{pid}-{host.rpartition('+')[2]}"
    return f"{CLAIMED_PREFIX}{token}.{pid}.{started}"


def _take(container_id: str) -> bool:
    try:
        fd = os.open(claims_dir() / container_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False  # another run has it
    except OSError as exc:  # no claim can be decided: the run starts cold, it does not fail
        print(f"[nb_assets] no warm spare claimed: the claims folder cannot be written ({exc})", file=sys.stderr)
        return False
    with os.fdopen(fd, "w") as f:
        f.write(owner())
    return True


def forget_claim(container_id: str) -> None:
    """After the claimed container is removed; until then the file keeps it from a second claim."""
    with contextlib.suppress(OSError):
        (claims_dir() / container_id).unlink()


def sweep_claims(client: Any, older_than_s: float = 3600.0) -> None:
    """Claim files of containers that are gone (their run's host died before forgetting them)."""
    live = {c["Id"] for c in client.api.containers(all=True, filters={"label": SPARE_LABEL})}
    now = time.time()
    try:
        paths = list(claims_dir().iterdir())
    except OSError:
        return  # unreadable: claims fail too, and say so (_take)
    for path in paths:
        with contextlib.suppress(OSError):
            if path.name not in live and now - path.stat().st_mtime > older_than_s:
                path.unlink()


def offer_spare(client: Any, config: dict[str, Any], key: str, runtime_tar: bytes, job_dir: str) -> str:
    """Create, fill with the in-box code and start a spare, then offer it; return its id.

    `config` is a run container's (docker_sandbox), whose command waits for a
    go until `claim_by`; it gets the spare's labels and name here.
    """
    token, container = make_spare(client, config, key)
    try:
        if not container.put_archive(job_dir, io.BytesIO(runtime_tar)):
            raise OSError("could not copy the in-box code into the spare")
        container.start()
        client.api.rename(container.id, f"{OFFERED_PREFIX}{token}")  # offered: any run of this user may claim it
    except BaseException:
        remove_container(client, container.id)
        raise
    return str(container.id)


def boot_spare(client: Any, container_id: str, job_dir: str) -> None:
    """Tell an offered spare to boot (import papermill, start the kernel): the run that made it is over."""
    spool = io.BytesIO()
    with tarfile.open(fileobj=spool, mode="w") as tar:
        info = tarfile.TarInfo(BOOT_FILE)
        info.mode, info.uid, info.gid = 0o444, 0, 0
        tar.addfile(info)
    client.api.put_archive(container_id, job_dir, spool.getvalue())


def make_spare(client: Any, config: dict[str, Any], key: str) -> tuple[str, Any]:
    """The first step of offer_spare: a created container, named as being made by this process."""
    token = secrets.token_hex(6)
    labels = {**config["labels"], SPARE_LABEL: key, MAKER_LABEL: owner(), MAKER_UID_LABEL: str(os.getuid())}
    if spare_pool():
        labels[POOL_LABEL] = spare_pool()
    return token, client.containers.create(**{**config, "name": f"{BOOT_PREFIX}{token}", "labels": labels})
