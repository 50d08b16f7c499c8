"""Runs inside a Docker sandbox as the container's main process: the run's deadline and its copy-out.

Standalone (stdlib only), copied into each run folder like the runner.

    python3 inbox_supervisor.py TIMEOUT_S OUTPUT_DIR RECORD_DIR GO_FILE CLAIM_BY [BOOT_AT] -- RUNNER_ARGV...

1. Once BOOT_FILE (next to GO_FILE) or GO_FILE is there, or BOOT_AT (epoch
   seconds; a spare made ahead for a run due later, sandbox/ahead.py) has
   come, starts the runner
   (inbox_papermill.py --wait), which boots (papermill imported, kernel
   started) while the host copies the job in. A spare is told to boot when
   the run that made it has ended, so its boot does not slow that run down. Its output
   goes to stderr, which the host reads as the run's log; what it says
   before the go is held back and sent after it, since nobody may be
   attached before (a spare container waits for a run to claim it).
2. Waits for GO_FILE, which the host copies in last, after the job. None by
   CLAIM_BY (epoch seconds): nobody claimed the container; everything is
   killed and it ends without sending anything.
3. Waits for the runner, at most TIMEOUT_S from the go: the deadline lives in
   the container, so a run ends on time even when the host that started it is gone.
4. Kills every other process of the sandbox user (the kernel, anything the
   notebook left behind), so nothing changes the files while they are copied.
5. Writes one tar to stdout, which the host reads through the engine API:
   first `sandbox.json` (the runner's exit code, whether the deadline hit,
   the memory cgroup's OOM kills, how full the size-limited outputs and
   record folders are), then the entries of OUTPUT_DIR (unless the run timed
   out or filled it: it fails then anyway) and RECORD_DIR as they are (links,
   folders and other odd entries go as such, and the host refuses them), then
   `sandbox.end`. The host trusts none of it beyond what it checks itself.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time

STARTED = time.time()  # the interpreter is up: the first mark of the run's timeline
FACTS = "sandbox.json"
END = "sandbox.end"  # the last member: without it, the host knows the copy was cut off
TIMELINE_FILE = "timeline.json"  # in RECORD_DIR: the runner's marks (inbox/runner.py)
BOOT_FILE = "boot"  # in GO_FILE's folder: start booting the runner
GO_POLL_S = 0.01  # how often the go file is looked for; a stat of a local volume costs microseconds
IDLE_POLL_S = 0.25  # the same while waiting, unbooted, for BOOT_AT: a run claiming it that early waits that much more
MAX_ENTRIES = 1001  # one past the host's limit on files in the outputs folder, so it can say "more than"
OOM_FILES = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events")  # cgroup v1, v2


def runner_marks(path: str) -> dict[str, float]:
    """The runner's timeline (inbox_papermill.py writes it): numbers only, bounded, for the host's benchmark
    timeline. The notebook could have written that file too; nothing but a timeline is made of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read(4096))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {f"runner.{k}"[:40]: v for k, v in list(data.items())[:16] if isinstance(v, (int, float))}


CPU_FILES = ("/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu.stat")


def cpu_seconds() -> float | None:
    """CPU time this container's cgroup has used so far (cgroup v1 in ns, v2's usage_usec)."""
    for path in CPU_FILES:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read(4096)
        except OSError:
            continue
        try:
            if path.endswith("cpu.stat"):
                usec = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec "))
                return int(usec) / 1e6
            return int(text.strip()) / 1e9
        except (ValueError, StopIteration, IndexError):
            continue
    return None


def oom_kills() -> int | None:
    """How many processes the kernel's OOM killer ended in this container's memory cgroup."""
    for path in OOM_FILES:
        try:
            with open(path, encoding="ascii") as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def usage(path: str) -> dict[str, int] | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return {"size": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize}


def full(space: dict[str, int] | None) -> bool:
    """As the host judges it (docker_sandbox._full): (almost) nothing left."""
    return space is not None and space["free"] < min(1 << 20, space["size"] // 20)


def kill_the_rest() -> None:
    """kill(-1) reaches every process this user may signal except this one and PID 1 (the init)."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def ship(out: io.BufferedWriter, facts: dict, folders: dict[str, str]) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(facts).encode()
        info = tarfile.TarInfo(FACTS)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for arcdir, folder in sorted(folders.items()):  # output/ before record/: the verdict comes last
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)[:MAX_ENTRIES]
            except OSError:
                continue
            for entry in entries:
                try:
                    tar.add(entry.path, arcname=f"{arcdir}/{entry.name}", recursive=False)
                except OSError as exc:  # vanished or unreadable: the host reports what is missing
                    print(f"[nb_assets supervisor] not copied: {entry.name}: {exc}", file=sys.stderr)
        tar.addfile(tarfile.TarInfo(END))


class HeldLog:
    """Copies the runner's output to stderr, holding it back until released (the go)."""

    def __init__(self, pipe: io.BufferedReader) -> None:
        self.pipe = pipe
        self.held: list[bytes] = []
        self.lock = threading.Lock()
        self.released = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        for chunk in iter(lambda: self.pipe.read1(65536), b""):
            with self.lock:
                if self.released:
                    _write_all(chunk)
                elif sum(map(len, self.held)) < 1 << 20:  # a boot says little; more is not kept
                    self.held.append(chunk)

    def release(self) -> None:
        with self.lock:
            self.released = True
            for chunk in self.held:
                _write_all(chunk)
            self.held.clear()


def _write_all(data: bytes) -> None:
    while data:
        data = data[os.write(2, data):]


def wait_for(files: tuple[str, ...], claim_by: float, boot_at: float = 0.0) -> bool:
    """True once one of `files` is there, or BOOT_AT (when given) has come; False at CLAIM_BY."""
    while not any(os.path.exists(f) for f in files):
        now = time.time()
        if now > claim_by:
            return False
        if boot_at:
            if now >= boot_at:
                return True
            time.sleep(max(GO_POLL_S, min(IDLE_POLL_S, boot_at - now)))  # idle: a few stats a second
        else:
            time.sleep(GO_POLL_S)
    return True


def main(argv: list[str]) -> int:
    timeout_s, output_dir, record_dir, go_file, claim_by, *rest = argv
    boot_at = "0"
    if rest[:1] != ["--"]:
        boot_at, *rest = rest
    sep, *runner = rest or [""]
    if sep != "--" or not runner:
        raise SystemExit("usage: inbox_supervisor.py TIMEOUT_S OUTPUT_DIR RECORD_DIR GO_FILE CLAIM_BY [BOOT_AT] -- RUNNER_ARGV...")
    # Wall-clock marks (the host's clock too: one kernel), sent with the facts for the host's timeline.
    marks = {"supervisor": round(STARTED, 4)}
    boot_file = os.path.join(os.path.dirname(go_file), BOOT_FILE)
    if not wait_for((boot_file, go_file), float(claim_by), float(boot_at)):
        return 0  # nobody claimed this spare; nothing started
    marks["boot"] = round(time.time(), 4)
    proc = subprocess.Popen(runner, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = HeldLog(proc.stdout)
    if not wait_for((go_file,), float(claim_by)):
        kill_the_rest()
        return 0
    started = time.monotonic()
    marks["go"] = round(time.time(), 4)
    log.release()
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except OSError:  # the runner died while booting: its exit code and log say why
        pass
    timed_out = False
    try:
        exit_code: int | None = proc.wait(timeout=float(timeout_s))
    except subprocess.TimeoutExpired:
        timed_out = True
        exit_code = None
    marks["runner_exit"] = round(time.time(), 4)
    kill_the_rest()
    if exit_code is None:
        proc.wait()
    log.thread.join(5)  # the runner's last words, before the copy-out
    marks.update(runner_marks(os.path.join(record_dir, TIMELINE_FILE)))
    marks["ship"] = round(time.time(), 4)
    cpu = cpu_seconds()
    if cpu is not None:
        marks["cpu_s"] = round(cpu, 3)  # the whole box's: supervisor, runner, kernel, notebook
    facts = {
        "runner_exit_code": exit_code,
        "timed_out": timed_out,
        "oom_kills": oom_kills(),
        "elapsed_s": round(time.monotonic() - started, 3),
        "output": usage(output_dir),
        "record": usage(record_dir),
        "marks": marks,
    }
    folders = {"record": record_dir}
    if not timed_out and not full(facts["output"]):  # otherwise the run fails whatever they hold: keep them here
        folders["output"] = output_dir
    sys.stderr.flush()
    ship(sys.stdout.buffer, facts, folders)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    os._exit(code)  # nothing to tear down; leave before anything at exit can fail
