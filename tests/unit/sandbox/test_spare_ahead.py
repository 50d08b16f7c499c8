"""When a spare for a known later run boots and how long it waits (sandbox/ahead.py), and the in-box
supervisor's optional BOOT_AT argument."""

from __future__ import annotations

import pytest

from nb_assets.inbox import supervisor
from nb_assets.sandbox.ahead import SpareWindow, idle_held_mb_s, spare_window


def test_a_spare_for_a_later_run_boots_lead_seconds_before_and_waits_grace_seconds_after() -> None:
    window = spare_window(due=10_000.0, now=1_000.0, lead=30, grace=600)
    assert window == SpareWindow(due=10_000.0, boot_at=9_970.0, claim_by=10_600.0)


def test_a_run_due_within_the_lead_gets_a_spare_that_boots_at_once() -> None:
    window = spare_window(due=1_010.0, now=1_000.0, lead=30, grace=5, min_claim_s=180)
    assert window.boot_at == 0.0
    assert window.claim_by == 1_180.0  # never claimable for less than min_claim_s


def test_memory_held_counts_idle_then_booted_until_claimed_or_claim_by() -> None:
    windows = [SpareWindow(due=100.0, boot_at=70.0, claim_by=700.0)] * 2
    held = idle_held_mb_s(windows, [110.0, None], idle_mb=10, booted_mb=150, made_at=[0.0, 0.0])
    # claimed at 110: 70 s idle + 40 s booted; never claimed: 70 s idle + 630 s booted
    assert held == pytest.approx(10 * 70 + 150 * 40 + 10 * 70 + 150 * 630)


def test_the_supervisor_boots_by_itself_at_boot_at(tmp_path) -> None:  # noqa: ANN001
    go = str(tmp_path / "go")
    import time

    now = time.time()
    assert supervisor.wait_for((go,), claim_by=now + 60, boot_at=now + 0.3) is True  # no file: BOOT_AT came
    assert supervisor.wait_for((go,), claim_by=now - 1) is False  # no file, claim-by passed


def test_the_supervisor_reads_an_optional_boot_at_before_the_separator(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    seen = []
    monkeypatch.setattr(supervisor, "wait_for", lambda files, claim_by, boot_at=0.0: seen.append(boot_at) or False)
    base = ["60", str(tmp_path), str(tmp_path), str(tmp_path / "go"), "123"]
    assert supervisor.main([*base, "--", "true"]) == 0
    assert supervisor.main([*base, "456", "--", "true"]) == 0
    assert seen == [0.0, 456.0]
    with pytest.raises(SystemExit):
        supervisor.main([*base, "456", "true"])
