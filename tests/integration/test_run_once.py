"""runs.once: one real run (LocalSandbox kernel, DuckDB), its record and the lifetime of its data files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nb_assets.errors import PolicyError
from nb_assets.analysis.parser import parse_notebook
from nb_assets.runs.guard import Taken
from nb_assets.runs.once import Refused, RunOutcome, about_run, run_once
from nb_assets.sandbox.local import LocalSandbox
from nb_assets.warehouse.duckdb.warehouse import DuckDBWarehouse
from nb_assets.warehouse.duckdb.partitions import PartitionLoad
from support.notebook_factory import RUNTIME, code, params, write_notebook


def _daily(tmp_path: Path) -> Path:
    return write_notebook(
        tmp_path / "daily.ipynb",
        code(RUNTIME),
        params('ds = "2026-11-01"'),
        code("%%sql orders\nSELECT order_id, order_date FROM raw.orders WHERE order_date = CAST($ds AS DATE)"),
        code("output('mart.daily', orders)"),
    )


def test_the_outputs_are_there_until_the_block_ends_and_the_record_says_who_what_and_what_it_replaced(
    warehouse: Path, tmp_path: Path
) -> None:
    spec = parse_notebook(_daily(tmp_path))
    about = about_run("r1", "cli", warehouse=str(warehouse), notebook=spec.path, day="2026-11-02")
    gate_saw: list[Any] = []

    def gate(catalog: Any) -> dict[str, Any]:
        gate_saw.append(catalog)
        return {"policy/purpose": "reporting"}

    replaceable = [Taken("mart.daily", "a source"), Taken("mart.other", "another notebook's")]
    with run_once(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=LocalSandbox(), run_dir=tmp_path / "run",
                  about=about, gate=gate, partition=PartitionLoad("order_date", "2026-11-02"),
                  facts={"notebook/not_loaded": []}, forced=replaceable, html=False) as outcome:
        assert isinstance(outcome, RunOutcome)
        run = outcome.run
        assert run.status == "success", run.error
        assert run.output_files["mart.daily"].is_file()  # readable in the block: Dagster's preview, the trial's columns
    assert not run.output_files["mart.daily"].exists() and not run.folder.input_dir.exists()
    assert run.parameters == {"ds": "2026-11-02"} and run.loaded_rows == {"mart.daily": 4}
    assert len(gate_saw) == 1
    assert list(outcome.facts)[:2] == ["notebook/not_loaded", "policy/purpose"]  # the caller's, then the gate's
    assert outcome.about["forced"] is True
    assert outcome.about["replaced"] == [{"table": "mart.daily", "owner": "a source", "rows_before": None}]  # only what it loaded
    kept = json.loads((run.folder.record_dir / "run.json").read_text())
    assert {k: kept[k] for k in ("run_id", "source", "partition", "policy/purpose", "forced")} == {
        "run_id": "r1", "source": "cli", "partition": "2026-11-02", "policy/purpose": "reporting", "forced": True}
    assert kept["warehouse"] == str(warehouse) and set(outcome.record) == {"executed", "run"}  # html=False: no HTML


def test_a_refusal_runs_nothing_and_keeps_a_record_only_when_asked(warehouse: Path, tmp_path: Path) -> None:
    spec = parse_notebook(_daily(tmp_path))

    def gate(catalog: Any) -> dict[str, Any]:
        raise PolicyError(f"{spec.path}: refused before any data was fetched: not for this purpose")

    for keep in (False, True):
        run_dir = tmp_path / f"run-{keep}"
        with run_once(spec, warehouse=DuckDBWarehouse(warehouse), sandbox=LocalSandbox(), run_dir=run_dir,
                      about=about_run(f"r-{keep}", "dagster"), gate=gate, partition=PartitionLoad("order_date", "2026-11-03"),
                      keep_refusal=keep) as outcome:
            assert isinstance(outcome, Refused) and outcome.record_error is None
        assert isinstance(outcome.error, PolicyError) and outcome.parameters == {"ds": "2026-11-03"}
        assert not (run_dir / "input").exists()
        if not keep:
            assert not run_dir.exists()
            continue
        kept = json.loads((run_dir / "record" / "run.json").read_text())
        assert kept["status"] == "refused" and kept["run_id"] == "r-True" and kept["parameters"] == {"ds": "2026-11-03"}
        assert kept["error"]["type"] == "policy-refused" and "not for this purpose" in kept["error"]["message"]
