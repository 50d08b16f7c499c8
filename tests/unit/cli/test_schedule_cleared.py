"""`schedule --update` makes the entry what the flags say: it names what that clears (cli/schedule_target.py)."""

from __future__ import annotations

from nb_assets import NotebookAsset, SandboxLimits
from nb_assets.cli.schedule_target import cleared, updated


def test_an_update_names_the_fields_it_clears_and_keeps_what_no_flag_sets() -> None:
    existing = NotebookAsset("nb/a.ipynb", owners=("o@example.com",), cron="0 6 * * *", group="kpis",
                             outputs={"mart.a": "mart.a_v2"}, limits=SandboxLimits(timeout_s=60))
    flags = NotebookAsset("nb/a.ipynb", owners=("o@example.com",), cron="0 7 * * *")
    wanted, kept = updated(flags, existing)
    assert kept == ("limits",) and wanted.limits == existing.limits
    assert cleared(wanted, existing) == ("group", "outputs")
    assert cleared(flags, None) == ()
