"""A notebook's first run waits for every input a notebook writes, whatever landed before its first evaluation.

The demo's fx_revenue reads mart.orders_clean (written by clean_orders) and two watched sources. The source
sensor reports a source once when it first sees it, and in the real daemon that tick could come before the
automation sensor's first evaluation of fx_revenue. Then fx_revenue started at the next tick, before
mart.orders_clean had ever materialized: each input's "had landed before the first evaluation" memory was a
`since` over an AND naming no key, Dagster keys a `since`'s memory by its children's names, so the three shared
one, and the sources' "landed" was read back as mart.orders_clean's (automation.py, `_input_landed`). Which
input's memory was kept depends on the order of the inputs: the other order forgot the sources instead, and the
notebook never ran for them. Both orders are here.

Real parts: the project's definitions built by notebook_definitions from real notebooks, the real source sensor
over real folders, the automation conditions evaluated tick by tick by Dagster against one instance. A notebook
run is stood in for by the materialization it records.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from nb_assets import NotebookAsset, Source, notebook_definitions
from nb_assets.defs.source_sensor import SOURCE_SENSOR
from support.notebook_factory import RUNTIME, code, params, write_notebook


class Ticks:
    """The source sensor and the automation sensor, ticked by hand against one instance, as the daemon does."""

    def __init__(self, defs: dg.Definitions) -> None:
        self.defs, self.instance = defs, dg.DagsterInstance.ephemeral()
        self.source_cursor: str | None = None
        self.cursor = None
        self.ticks = 0
        self.log: list[str] = []

    def sources(self) -> list[str]:
        sensor = self.defs.resolve_sensor_def(SOURCE_SENSOR)
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=self.instance, cursor=self.source_cursor, definitions=self.defs))
        for event in data.asset_events:
            self.instance.report_runless_asset_event(event)
        self.source_cursor = data.cursor or self.source_cursor
        reported = sorted(e.asset_key.to_user_string() for e in data.asset_events)
        self.log.append(f"source sensor reported {reported}")
        return reported

    def land(self, *keys: str) -> None:
        """A landing, or a notebook's run ending: the materialization the conditions count."""
        for key in keys:
            self.instance.report_runless_asset_event(dg.AssetMaterialization(key.split("/")))
        self.log.append(f"materialized {list(keys)}")

    def tick(self) -> list[str]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        requested = sorted(r.key.to_user_string() for r in result.results if result.get_num_requested(r.key))
        self.ticks += 1
        self.log.append(f"automation tick {self.ticks} requested {requested}")
        return requested

    def story(self) -> str:
        return "\n".join(f"  {line}" for line in self.log)


def _drop(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


@pytest.fixture
def project(tmp_path: Path, warehouse: Path) -> Ticks:
    """clean (raw.orders → mart.clean) and fx (mart.clean + two watched sources → mart.fx), both on landed inputs."""
    write_notebook(tmp_path / "clean.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.clean', rows)"))
    write_notebook(tmp_path / "fx.ipynb", code(RUNTIME), params('ds = "2026-11-01"'), code("%%source rates rates"),
                   code("%%source regions regions"), code("%%sql orders\nSELECT * FROM mart.clean"), code("output('mart.fx', orders)"))
    _drop(tmp_path / "rates", "rates.csv", "currency,per_eur\nEUR,1.0\n")
    _drop(tmp_path / "regions", "europe.csv", "currency,sales_region\nEUR,Europe\n")
    sources = [Source("rates", path="rates/", format="csv", poll_s=1), Source("regions", path="regions/", format="csv", poll_s=1)]
    defs = notebook_definitions([NotebookAsset("clean.ipynb", on_inputs_landed=True), NotebookAsset("fx.ipynb", on_inputs_landed=True)],
                                warehouse=warehouse, base_dir=tmp_path, sources=sources)
    return Ticks(defs)


def test_sources_seen_before_the_first_evaluation_do_not_start_a_reader_whose_upstream_never_ran(project: Ticks) -> None:
    assert project.sources() == ["source/rates", "source/regions"]  # their first sight, before any evaluation
    for _ in range(3):
        assert project.tick() == [], f"fx started before mart.clean ever materialized:\n{project.story()}"
    project.land("raw/orders")
    assert project.tick() == ["mart/clean"], project.story()
    assert project.tick() == [], project.story()
    project.land("mart/clean")  # clean's run
    # Now every input of fx is there: the sources from before its first evaluation count, once.
    assert project.tick() == ["mart/fx"], f"fx forgot that its sources had landed:\n{project.story()}"
    assert project.tick() == [] and project.tick() == [], project.story()


@pytest.mark.parametrize("there", [["raw/orders"], ["mart/clean"]], ids=["the-table-a-notebook-reads", "the-notebook-output"])
def test_a_never_run_notebook_waits_for_each_input_that_is_missing(tmp_path: Path, warehouse: Path, there: list[str]) -> None:
    """Two inputs, one there before the first evaluation, the other missing: in either order of the two, the notebook
    waits for the missing one, and runs once when it lands."""
    write_notebook(tmp_path / "clean.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM raw.orders"), code("output('mart.clean', rows)"))
    write_notebook(tmp_path / "both.ipynb", code(RUNTIME), code("%%sql rows\nSELECT * FROM mart.clean JOIN raw.orders USING (order_id)"),
                   code("output('mart.both', rows)"))
    # clean is run by hand only: mart.clean appears when the test says so.
    ticks = Ticks(notebook_definitions([NotebookAsset("clean.ipynb"), NotebookAsset("both.ipynb", on_inputs_landed=True)],
                                       warehouse=warehouse, base_dir=tmp_path))
    ticks.land(*there)
    for _ in range(3):
        assert ticks.tick() == [], f"both started with {there} there and the other input missing:\n{ticks.story()}"
    ticks.land(*({"mart/clean", "raw/orders"} - set(there)))
    assert ticks.tick() == ["mart/both"], f"both forgot what had landed before its first evaluation:\n{ticks.story()}"
    assert ticks.tick() == [], ticks.story()
