"""Makes the warm spares a run leaves, in a process of its own, so the run may end (and exit) at once.

    python -m nb_assets.sandbox.spare_maker IMAGE LIMITS_JSON [DUE [--ahead-only]]

It makes what DockerSandbox.make_next_spares makes: a spare booted at once for
the next run, unless enough are offered, and with DUE (epoch seconds) one for
the run due then, which boots by itself shortly before (sandbox/ahead.py);
with --ahead-only that one alone (DockerSandbox.spare_ahead).

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
    limits = SandboxLimits(**json.loads(limits_json))
    try:
        sandbox = DockerSandbox(image=image, lazy=True)
        if due[1:] == ["--ahead-only"]:
            sandbox.make_spare(limits, due=float(due[0]))
        else:
            sandbox.make_next_spares(limits, due=float(due[0]) if due else None)
    except Exception as exc:
        print(f"[nb_assets] no warm spare made: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
