"""support.dagster_runs: what a failing e2e test prints about a Dagster run that did not succeed. A helper that said
nothing useful would leave the next red CI as unexplained as the fresh-machine failure of issue 26, so it is held to
naming the step, the error, the notebook's failing cell and its source, on real failed runs in a real instance."""

from __future__ import annotations

import dagster as dg
import pytest

from support.dagster_runs import explain_result, explain_run, explain_runs, materialize_ok
from support.failed_project import POLICY, FailedProject, failed_project  # noqa: F401  (fixture)


def test_a_failed_run_is_explained_by_its_step_failure_error_and_failing_cell(failed_project: FailedProject) -> None:
    text = explain_run(failed_project.instance, failed_project.broken_run)
    assert text.startswith(f"run {failed_project.broken_run} ") and ": FAILURE" in text.splitlines()[0], text
    assert "step mart__broken failed:" in text or "step broken failed:" in text, text
    assert "KeyError" in text and "currency" in text, text
    assert "notebook/failed_cell: 4" in text or "notebook/failed_cell: 5" in text, text
    assert "rows['currency']" in text, text  # the failing cell's source
    assert "broken.ipynb" in text, text


def test_a_refused_run_says_why_it_was_refused(failed_project: FailedProject) -> None:
    text = explain_run(failed_project.instance, failed_project.refused_run)
    assert "notebook/refused:" in text and "guarded.ipynb" in text, text
    both = explain_runs(failed_project.instance, [failed_project.broken_run, failed_project.refused_run])
    assert failed_project.broken_run in both and failed_project.refused_run in both
    assert explain_run(failed_project.instance, "no-such-run") == "run no-such-run: not in this instance"


def test_an_in_process_materialization_is_explained_the_same_way(failed_project: FailedProject) -> None:
    from nb_assets import NotebookResource
    from nb_assets.defs.build import RESOURCE_KEY

    resource = NotebookResource(warehouse=str(failed_project.root / "warehouse.duckdb"), sandbox="local")
    policy = failed_project.root / "policy.yaml"
    policy.write_text(POLICY.replace("reporting: [finance]", "reporting: []"))  # refused: no kernel needed
    try:
        with pytest.raises(AssertionError) as failed:
            materialize_ok(list(failed_project.module.defs.assets), resources={RESOURCE_KEY: resource},
                           selection=["mart/guarded"])
        result = dg.materialize(list(failed_project.module.defs.assets), resources={RESOURCE_KEY: resource},
                                selection=["mart/guarded"], raise_on_error=False)
    finally:
        policy.write_text(POLICY)
    assert "guarded.ipynb" in str(failed.value) and "notebook/refused:" in str(failed.value), failed.value
    assert not result.success and "notebook/refused:" in explain_result(result)
