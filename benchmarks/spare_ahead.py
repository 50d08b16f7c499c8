"""Spares for scheduled runs: the memory idle spares hold, per hour of the demo's schedule (issue 27).

1. Measured: the memory of a real spare made ahead for a run (its cgroup's RSS
   and total usage), while it waits unbooted (a sleeping supervisor) and once it
   has booted (runner with papermill imported, kernel started); how long a
   spare takes to boot; and, interleaved, a run that claims a booted spare
   against a cold one (DockerSandbox.run in this process; papermill is not the
   baseline here, run_overhead.py and cold_docker.py have it).
2. Computed from (1): the memory held by idle spares in each hour of a Monday
   on the demo's schedule (definitions.py's crons: daily_traffic 06:00,
   daily_orders 06:30, regional_revenue 07:00 for two instances, revenue_report
   05:00 on Mondays; one run per tick), for two policies:
     after-run   today's: each run leaves a booted spare that waits
                 NB_ASSETS_SPARE_TTL_S (180 s) and expires unused, since the
                 notebook's next run is a day away; every scheduled run is cold
     ahead       each run leaves a spare for its next tick that boots LEAD
                 before it (sandbox/ahead.py) and is claimed DELAY after the
                 tick (the automation sensor's tick and the run launch)

    python benchmarks/spare_ahead.py [--quick] [--runs N] [--lead S] [--delay S]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.ensure_venv()

# (notebook, minute of day, weekdays: None = every day, 0 = Monday), as definitions.py declares them
DEMO_TICKS = [
    ("daily_traffic", 6 * 60, None),
    ("daily_orders", 6 * 60 + 30, None),
    ("regional_revenue[emea]", 7 * 60, None),
    ("regional_revenue[apac]", 7 * 60, None),
    ("revenue_report", 5 * 60, {0}),
]


def memory_mb(client: Any, container_id: str) -> tuple[float, float]:
    """(RSS, usage) of a container's memory cgroup in MB, as the engine reports them."""
    stats = client.api.stats(container_id, stream=False)["memory_stats"]
    inner = stats.get("stats", {})
    rss = inner.get("total_rss", inner.get("rss", inner.get("anon", 0)))
    return rss / 1e6, stats.get("usage", 0) / 1e6


def booted(client: Any, container_id: str) -> bool:
    processes = client.api.top(container_id)["Processes"] or []
    return any("ipykernel" in " ".join(p) for p in processes)


def make_run_folder(root: Path, *cells: str) -> Any:
    """A run folder as the host pipeline lays it out, with a notebook of code cells."""
    import nbformat

    from nb_assets.sandbox.base import RunFolder

    folder = RunFolder(root).create()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, folder.parameterized_notebook)
    folder.parameters_file.write_text("{}")
    folder.install_inbox_files()
    return folder


def measure(runs: int) -> dict[str, list[float]]:
    from nb_assets.sandbox.base import SandboxLimits
    from nb_assets.sandbox.container import DockerSandbox
    from nb_assets.sandbox.ahead import lead_s

    sandbox = DockerSandbox(spares=False)
    out: dict[str, list[float]] = {k: [] for k in (
        "idle_rss", "idle_usage", "booted_rss", "booted_usage", "boot_s", "run_warm", "run_cold")}
    limits = SandboxLimits(tmp_mb=97)  # limits of its own: nothing else claims these spares
    with C.temp_dir("spare_ahead") as tmp:
        for i in range(runs + 1):
            # Due just after the lead: it boots by itself 8 s from now (its command holds whole seconds), and
            # only then may a run claim it; its memory unbooted is read well before.
            boot_at = time.time() + 8
            spare = sandbox.make_spare(limits, due=boot_at + lead_s())
            if spare is None:
                raise RuntimeError("no spare made (NB_ASSETS_MAX_IDLE_SPARES reached?)")
            time.sleep(3)
            idle = memory_mb(sandbox.client, spare)
            while not booted(sandbox.client, spare):
                time.sleep(0.05)
            boot_s = time.time() - boot_at  # from its boot time (whole seconds in its command) to the kernel up
            time.sleep(5)  # the kernel finishes its start (papermill waits for it ready when claimed)
            full = memory_mb(sandbox.client, spare)
            folder = make_run_folder(tmp / f"warm{i}", "import pandas as pd", "df = pd.DataFrame({'i': range(1000)})")
            sandbox.spares = True  # claim the spare just made
            sandbox.next_run_at = time.time() + 10**6
            took = time.perf_counter()
            result = sandbox.run(folder, limits)
            warm = time.perf_counter() - took
            sandbox.wait_for_spare()
            if not result.facts.get("warm_spare"):
                raise RuntimeError("the run did not claim the spare")
            sandbox.spares, sandbox.next_run_at = False, None
            folder = make_run_folder(tmp / f"cold{i}", "import pandas as pd", "df = pd.DataFrame({'i': range(1000)})")
            took = time.perf_counter()
            sandbox.run(folder, limits)
            cold = time.perf_counter() - took
            _remove_made_ahead(sandbox, limits)
            if i:  # the first round is a warm-up
                for k, v in zip(out, (*idle, *full, boot_s, warm, cold)):
                    out[k].append(v)
            time.sleep(1)
    return out


def _remove_made_ahead(sandbox: Any, limits: Any) -> None:
    """The spares the warm run left (for its next run, and for one a million seconds away): not needed here."""
    import json

    from nb_assets.sandbox.container import _runtime_tar
    from nb_assets.sandbox.base import RunFolder
    from nb_assets.sandbox.spares import spare_key

    with C.temp_dir("key") as tmp:
        folder = RunFolder(tmp).create()
        folder.install_inbox_files()
        key = spare_key(json.dumps(sandbox._settings(limits), sort_keys=True, default=repr), _runtime_tar(folder.runtime_dir))
    for c in sandbox.client.api.containers(all=True, filters={"label": f"nb_assets.spare={key}"}):
        sandbox.client.api.remove_container(c["Id"], force=True, v=True)


def hourly(idle_mb: float, booted_mb: float, lead: float, delay: float, ttl: float) -> list[tuple[int, float, float, int]]:
    """(hour, after-run MB held on average, ahead MB held on average, ahead spares waiting at the hour's start)
    over a Monday, in steady state (each run's spare for its next tick was made by its previous run)."""
    day = 24 * 3600
    intervals: dict[str, list[tuple[float, float, float]]] = {"after": [], "ahead": []}
    for name, minute, weekdays in DEMO_TICKS:
        tick = minute * 60.0
        if weekdays is not None and 0 not in weekdays:
            continue
        period = day if weekdays is None else 7 * day
        # after-run: the run ends ~1 min after the tick (cold), then its spare waits ttl, booted
        intervals["after"].append((tick + 60, tick + 60 + ttl, booted_mb))
        # ahead: the previous run (one period earlier) left it; idle until tick - lead, booted until claimed
        intervals["ahead"].append((tick + 60 - period, tick - lead, idle_mb))
        intervals["ahead"].append((tick - lead, tick + delay, booted_mb))
        intervals["ahead"].append((tick + 60, tick + period - lead, idle_mb))  # today's run leaves one for the next
    rows = []
    for hour in range(24):
        start, end = hour * 3600.0, (hour + 1) * 3600.0
        held = {}
        for policy, spans in intervals.items():
            mb_s = sum(mb * max(0.0, min(b, end) - max(a, start)) for a, b, mb in spans)
            held[policy] = mb_s / 3600
        waiting = sum(1 for a, b, _ in intervals["ahead"] if a <= start < b)
        rows.append((hour, held["after"], held["ahead"], waiting))
    return rows


def main() -> None:
    def options(p: Any) -> None:
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--lead", type=float, default=None, help="seconds a spare boots before its run (NB_ASSETS_SPARE_LEAD_S)")
        p.add_argument("--delay", type=float, default=40.0, help="seconds from the tick to the run claiming its spare")

    args = C.parse_args(__doc__, options)
    runs = args.runs or (2 if args.quick else 5)
    C.print_machine("docker")
    reason = C.docker_reason()
    if reason is not None:
        print(f"spare_ahead: skipped: {reason}")
        return
    from nb_assets.sandbox.ahead import lead_s
    from nb_assets.sandbox.spares import spare_ttl_s

    lead = args.lead if args.lead is not None else lead_s()
    m = measure(runs)
    print(f"\nmeasured, median of {runs} (min, max) after a warm-up:")
    for k, label in (("idle_rss", "spare waiting unbooted, RSS MB"), ("idle_usage", "  its cgroup usage MB"),
                     ("booted_rss", "spare booted, RSS MB"), ("booted_usage", "  its cgroup usage MB"),
                     ("boot_s", "boot (its boot time → kernel process up), s"),
                     ("run_warm", "DockerSandbox.run claiming a booted spare, s"), ("run_cold", "DockerSandbox.run cold, s")):
        print(f"  {label:46s} {C.median(m[k]):8.2f}  ({min(m[k]):.2f}, {max(m[k]):.2f})")
    print(f"  warm / cold: {C.median(m['run_warm']) / C.median(m['run_cold']):.2f}x")
    idle_mb, booted_mb = C.median(m["idle_rss"]), C.median(m["booted_rss"])
    ttl = spare_ttl_s()
    rows = hourly(idle_mb, booted_mb, lead, args.delay, ttl)
    print(f"\nidle spares on the demo's schedule, a Monday (RSS; lead {lead:g} s, claimed {args.delay:g} s after the tick, "
          f"after-run spares wait {ttl:g} s):")
    print(f"{'hour':>4s} {'after-run MB (avg)':>19s} {'ahead MB (avg)':>15s} {'ahead spares waiting':>21s}")
    for hour, after, ahead, waiting in rows:
        print(f"{hour:4d} {after:19.1f} {ahead:15.1f} {waiting:21d}")
    day_after = sum(r[1] for r in rows)
    day_ahead = sum(r[2] for r in rows)
    print(f"day: after-run alone {day_after:.0f} MB·h, every scheduled run cold; ahead alone {day_ahead:.0f} MB·h, "
          f"every scheduled run warm; both (what a run leaves now: the next run's and the next tick's) "
          f"{day_after + day_ahead:.0f} MB·h")
    print(f"spare_ahead: warm/cold {C.median(m['run_warm']) / C.median(m['run_cold']):.2f}x; "
          f"idle {idle_mb:.0f} MB unbooted, {booted_mb:.0f} MB booted (reported)")


if __name__ == "__main__":
    main()
