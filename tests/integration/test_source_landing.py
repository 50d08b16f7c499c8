"""Sources that land: a watched folder (poll_s=) reported by the source sensor, each change once,
across restarts (the cursor), and an on_inputs_landed notebook requested once per landing."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nb_assets import NotebookAsset, Source, notebook_definitions
from nb_assets.defs.source_sensor import SOURCE_SENSOR
from nb_assets.errors import DeclarationError
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.source_servers import data_server


class Ticks:
    """The source sensor and the automation sensor, ticked by hand against one instance, as the daemon would."""

    def __init__(self, defs: dg.Definitions) -> None:
        self.defs, self.instance = defs, dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None
        self.automation = None

    def sources(self) -> list[dg.AssetMaterialization]:
        sensor = self.defs.resolve_sensor_def(SOURCE_SENSOR)
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs))
        for event in data.asset_events:
            self.instance.report_runless_asset_event(event)
        self.cursor = data.cursor or self.cursor
        return list(data.asset_events)

    def requested(self) -> list[str]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.automation)
        self.automation = result.cursor
        return sorted(r.key.to_user_string() for r in result.results if result.get_num_requested(r.key))


def _project(tmp_path: Path, source: Source, warehouse: Path) -> Ticks:
    write_notebook(tmp_path / "drops.ipynb", code(RUNTIME), params("ds = '2026-11-01'"), code("%%source orders orders_drop"),
                   code("output('mart.drops', orders)"))
    defs = notebook_definitions([NotebookAsset("drops.ipynb", on_inputs_landed=True)], warehouse=warehouse, base_dir=tmp_path,
                                sources=[source])
    return Ticks(defs)


def _drop(folder: Path, name: str, rows: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"order_id": rows}), folder / name)


def test_a_new_file_under_a_watched_prefix_lands_once_and_starts_the_reader_once(tmp_path: Path, warehouse: Path) -> None:
    _drop(tmp_path / "landing" / "2026-11-01", "a.parquet", [1, 2])
    ticks = _project(tmp_path, Source("orders_drop", path="landing/$ds/*.parquet", poll_s=1), warehouse)
    first = ticks.sources()  # first sight: what is there has landed
    assert [e.asset_key.to_user_string() for e in first] == ["source/orders_drop"]
    assert ticks.requested() == ["mart/drops"]
    time.sleep(1.1)
    assert ticks.sources() == [] and ticks.requested() == []  # nothing new: nothing reported, nothing run
    _drop(tmp_path / "landing" / "2026-11-02", "b.parquet", [3])
    time.sleep(1.1)
    (landed,) = ticks.sources()
    assert landed.metadata["source/new_files"].value == [str(tmp_path / "landing" / "2026-11-02" / "b.parquet")]
    assert ticks.requested() == ["mart/drops"]
    assert ticks.requested() == []  # requested once
    # A restarted daemon starts from the stored cursor: nothing is reported twice.
    restarted = Ticks(ticks.defs)
    restarted.instance, restarted.cursor = ticks.instance, ticks.cursor
    time.sleep(1.1)
    assert restarted.sources() == []


def test_an_empty_or_missing_folder_has_not_landed_until_a_file_appears(tmp_path: Path, warehouse: Path) -> None:
    """Its readers would only fail to fetch: first sight of nothing is no landing, nor is a folder emptied."""
    ticks = _project(tmp_path, Source("orders_drop", path="landing/$ds/*.parquet", poll_s=1), warehouse)
    assert ticks.sources() == [] and ticks.requested() == []  # landing/ does not exist yet
    (tmp_path / "landing" / "2026-11-01").mkdir(parents=True)
    time.sleep(1.1)
    assert ticks.sources() == [] and ticks.requested() == []  # there, but empty
    _drop(tmp_path / "landing" / "2026-11-01", "a.parquet", [1])
    time.sleep(1.1)
    assert [e.asset_key.to_user_string() for e in ticks.sources()] == ["source/orders_drop"]
    assert ticks.requested() == ["mart/drops"]


def test_an_http_source_lands_when_its_content_hash_changes(tmp_path: Path, warehouse: Path) -> None:
    with data_server() as server:
        ticks = _project(tmp_path, Source("orders_drop", url=server.url("/v1/rates"), allow_private=True, poll_s=1), warehouse)
        assert len(ticks.sources()) == 1
        time.sleep(1.1)
        assert ticks.sources() == []  # same body, same hash
    # The server is gone: a warning, not a landing, and the sensor keeps its cursor.
    time.sleep(1.1)
    before = ticks.cursor
    assert ticks.sources() == [] and ticks.cursor == before


def test_a_source_nobody_watches_is_read_but_not_waited_for(tmp_path: Path, warehouse: Path) -> None:
    """on_inputs_landed over a watched and an unwatched source (no poll_s): the unwatched one never lands, so
    the notebook runs when the watched one does (before, it waited forever, silently); with only unwatched
    inputs it could never run, and the load says so."""
    _drop(tmp_path / "landing", "a.parquet", [1])
    _drop(tmp_path / "rates", "r.parquet", [7])
    write_notebook(tmp_path / "both.ipynb", code(RUNTIME), code("%%source orders orders_drop"), code("%%source rates rates"),
                   code("output('mart.both', orders)"))
    watched = Source("orders_drop", path="landing/", format="parquet", poll_s=1)
    unwatched = Source("rates", path="rates/", format="parquet")
    ticks = Ticks(notebook_definitions([NotebookAsset("both.ipynb", on_inputs_landed=True)], warehouse=warehouse,
                                       base_dir=tmp_path, sources=[watched, unwatched]))
    assert [e.asset_key.to_user_string() for e in ticks.sources()] == ["source/orders_drop"]
    assert ticks.requested() == ["mart/both"]

    write_notebook(tmp_path / "rates_only.ipynb", code(RUNTIME), code("%%source rates rates"), code("output('mart.r', rates)"))
    with pytest.raises(DeclarationError, match=r"rates_only.ipynb: on_inputs_landed .* never lands: give one of them poll_s"):
        notebook_definitions([NotebookAsset("rates_only.ipynb", on_inputs_landed=True)], warehouse=warehouse,
                             base_dir=tmp_path, sources=[unwatched])
