"""The deployment's queue, soaked: N notebook runs (200 by default) through a durable deployment.

    python benchmarks/soak/deploy_queue.py [--runs 200] [--max-runs 2]      (make soak)

`nb-assets deploy up` of the demo on free ports (durable cluster, passwords, the reaper), then N
runs of mart.daily_traffic launched at once through the webserver's GraphQL API; the queue starts
--max-runs at a time. Counted from Dagster's own records once all have finished: spurious
failures (must be 0), runs started more than once, materializations per run (exactly one), run
workers left behind by the reaper (0), and the throughput in runs per minute. Not in `make test`
or `make bench`: it takes about an hour on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--max-runs", type=int, default=2)
    args = parser.parse_args()

    import dagster as dg

    from support.deployment import deployed, new_settings  # the e2e tests' driver, as a user drives it
    from nb_assets.deploy.config import DEPLOY_LABEL
    from nb_assets.sandbox.image import docker_client

    settings = new_settings(Path(tempfile.mkdtemp(prefix="nb-assets-soak-")), max_concurrent_runs=args.max_runs,
                            worker_retention_s=0)
    with deployed(settings) as deployment:
        started = time.monotonic()
        run_ids = [deployment.launch([["mart", "daily_traffic"]]) for _ in range(args.runs)]
        statuses = deployment.wait_until_finished(run_ids, timeout_s=args.runs * 300)
        elapsed = time.monotonic() - started
        failed = [r for r, s in statuses.items() if s != dg.DagsterRunStatus.SUCCESS]
        twice, materializations = [], {}
        for run_id in run_ids:
            logs = deployment.instance.all_logs(run_id)
            kinds = [e.dagster_event.event_type for e in logs if e.dagster_event is not None]
            if kinds.count(dg.DagsterEventType.RUN_START) != 1:
                twice.append(run_id)
            materializations[run_id] = kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION)
        time.sleep(15)  # one reaper pass after the last run
        left = docker_client().api.containers(all=True, filters={
            "label": [f"{DEPLOY_LABEL}={settings.label}", "dagster/run_id"], "status": "exited"})
    report = {"runs": args.runs, "max_runs": args.max_runs, "spurious_failures": len(failed),
              "started_more_than_once": len(twice), "runs_without_exactly_one_materialization":
              sum(1 for n in materializations.values() if n != 1), "run_workers_left": len(left),
              "runs_per_minute": round(args.runs / (elapsed / 60), 2), "failed_run_ids": failed[:10]}
    print(json.dumps(report, indent=2))
    ok = not failed and not twice and not report["runs_without_exactly_one_materialization"] and not left
    print("soak passed" if ok else "soak FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
