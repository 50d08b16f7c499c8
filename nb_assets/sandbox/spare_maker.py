"""Makes one warm spare in a process of its own, so the run that asks for it may end (and exit) at once.

    python -m nb_assets.sandbox.spare_maker IMAGE LIMITS_JSON [DUE]

With DUE (epoch seconds), the spare is for a run due then: it boots by itself
shortly before (sandbox/ahead.py).

Started by DockerSandbox.run once its run is over (see sandbox/spares.py). It
leaves without a spare when one is offered already or anything fails: a
missing spare costs the next run its head start, nothing else.
"""

from __future__ import annotations

import json
import sys

from nb_assets.sandbox.container import DockerSandbox
from nb_assets.sandbox.base import SandboxLimits


def main(argv: list[str]) -> int:
    image, limits_json, *due = argv
    try:
        DockerSandbox(image=image, lazy=True).make_spare(
            SandboxLimits(**json.loads(limits_json)), due=float(due[0]) if due else None
        )
    except Exception as exc:
        print(f"[nb_assets] no warm spare made: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
