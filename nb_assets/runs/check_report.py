"""What a run's output checks found, as lines for a terminal (`nb-assets run`, `backfill`).

Warnings and failures are listed with their failing rows' sample: the terminal is the runner's own,
as the run's record is. Notices never get these lines (warehouse/checks.py keeps rows out of the
error's text).
"""

from __future__ import annotations

from collections.abc import Sequence

from nb_assets.warehouse.checks import CheckOutcome


def check_lines(outcomes: Sequence[CheckOutcome]) -> list[str]:
    """One line per check that did not pass (then its sample, indented), and one for those that did."""
    if not outcomes:
        return []
    lines: list[str] = []
    for outcome in outcomes:
        if outcome.passed:
            continue
        lines.append(f"  {outcome.summary()}")
        if outcome.sample:
            lines.append("      " + " | ".join(outcome.columns))
            lines += ["      " + " | ".join("NULL" if v is None else str(v) for v in row) for row in outcome.sample]
    passed = [o.check.name for o in outcomes if o.passed]
    if passed:
        lines.append(f"  output checks passed: {', '.join(passed)}")
    return ["output checks:", *lines]
