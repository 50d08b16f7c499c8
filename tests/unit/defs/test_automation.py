"""Triggers as Dagster AutomationConditions, evaluated tick by tick by real Dagster.

The conditions come from real declarations of real notebooks through the
translator; each notebook's run is stood in for by a no-op multi-asset with the
notebook's own specs (same keys, deps and condition), materialized for real, so
a tick sees exactly the events a notebook run would leave.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
import pytest

from nb_assets import NotebookAsset
from nb_assets.defs.build import build_notebook_graph
from nb_assets.errors import DeclarationError
from support.notebook_factory import RUNTIME, code, write_notebook

UTC = dt.timezone.utc


def _reader(tmp_path: Path, name: str, reads: Sequence[str], writes: str) -> None:
    sql = " JOIN ".join(f"{t} AS t{i}" if i == 0 else f"{t} AS t{i} USING (k)" for i, t in enumerate(reads))
    write_notebook(tmp_path / f"{name}.ipynb", code(RUNTIME), code(f"%%sql rows\nSELECT * FROM {sql}"), code(f"output('{writes}', rows)"))


class Project:
    """Declared notebooks, their conditions, and a Dagster instance to tick against."""

    def __init__(self, tmp_path: Path, declarations: Sequence[NotebookAsset]) -> None:
        graph = build_notebook_graph(declarations, base_dir=tmp_path)
        self.stubs = [self._stub(a) for a in graph.assets if isinstance(a, dg.AssetsDefinition)]
        self.sources = [a for a in graph.assets if isinstance(a, dg.AssetSpec)]
        self.defs = dg.Definitions(assets=[*self.stubs, *self.sources])
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor = None
        self.runs: list[list[str]] = []

    @staticmethod
    def _stub(notebook: dg.AssetsDefinition) -> dg.AssetsDefinition:
        @dg.multi_asset(specs=list(notebook.specs), name=notebook.node_def.name)
        def _run() -> None:
            return None

        return _run

    def land(self, *tables: str) -> None:
        for table in tables:
            self.instance.report_runless_asset_event(dg.AssetMaterialization(table.split(".")))

    def tick(self, at: dt.datetime | None = None) -> list[str]:
        """One evaluation; what it requested, as tables."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=at)
        self.cursor = result.cursor
        keys = [key for a in self.stubs for key in a.keys]
        return sorted(".".join(k.path) for k in keys if result.get_num_requested(k))

    def run(self, tables: Sequence[str], *, fail: bool = False) -> None:
        """Materialize what a tick requested, in one run, as the automation sensor would."""
        if not tables:
            return
        selection = [dg.AssetKey(t.split(".")) for t in tables]
        if fail:
            failing = [self._failing(a) for a in self.stubs if set(a.keys) & set(selection)]
            dg.materialize(failing, instance=self.instance, raise_on_error=False)
        else:
            dg.materialize([*self.stubs, *self.sources], instance=self.instance, selection=selection)
        self.runs.append(sorted(tables))

    @staticmethod
    def _failing(notebook: dg.AssetsDefinition) -> dg.AssetsDefinition:
        @dg.multi_asset(specs=list(notebook.specs), name=notebook.node_def.name)
        def _run() -> None:
            raise RuntimeError("the notebook failed")

        return _run

    def settle(self) -> list[str]:
        """Tick and run until nothing more is requested; every run, in order."""
        before = len(self.runs)
        for _ in range(6):
            requested = self.tick()
            if not requested:
                return [t for run in self.runs[before:] for t in run]
            self.run(requested)
        raise AssertionError(f"still requesting after 6 ticks: {self.runs[before:]}")


@pytest.fixture(autouse=True)
def _quiet_dagster() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)


@pytest.fixture
def chain(tmp_path: Path) -> Project:
    """raw.a → x → mart.x; mart.x + raw.b → y → mart.y; both wait for their inputs."""
    _reader(tmp_path, "x", ["raw.a"], "mart.x")
    _reader(tmp_path, "y", ["mart.x", "raw.b"], "mart.y")
    project = Project(tmp_path, [NotebookAsset("x.ipynb", on_inputs_landed=True), NotebookAsset("y.ipynb", on_inputs_landed=True)])
    assert project.tick() == []  # the first evaluation only starts the conditions' memory
    return project


def test_a_notebook_waits_for_every_input_then_runs_once(chain: Project) -> None:
    chain.land("raw.b")
    assert chain.settle() == []  # one of y's two inputs: nothing runs
    chain.land("raw.a")
    assert chain.settle() == ["mart.x", "mart.y"]
    assert chain.runs == [["mart.x"], ["mart.y"]]  # in order, each once: y starts after x's run
    assert chain.settle() == []


def test_only_some_inputs_landing_never_runs_the_notebook(chain: Project) -> None:
    chain.land("raw.a", "raw.b")
    assert chain.settle() == ["mart.x", "mart.y"]
    chain.land("raw.a")
    assert chain.settle() == ["mart.x"]  # y: mart.x updated, raw.b has not landed since y ran
    chain.land("raw.a")
    assert chain.settle() == ["mart.x"]
    chain.land("raw.b")
    assert chain.settle() == ["mart.y"]  # now both have; once


def test_an_input_landing_while_the_notebook_runs_counts_for_its_next_run(chain: Project) -> None:
    chain.land("raw.a")
    assert chain.tick() == ["mart.x"]
    assert chain.tick() == []  # x's run is under way
    chain.land("raw.a")  # lands after x's run fetched its inputs, before it ends
    chain.run(["mart.x"])
    assert chain.settle() == ["mart.x"]


def test_a_landing_after_the_run_ends_and_before_the_next_tick_starts_one_more_run(chain: Project) -> None:
    chain.land("raw.a")
    assert chain.tick() == ["mart.x"]
    chain.run(["mart.x"])  # the run ends before the next tick
    chain.land("raw.a")  # and the data lands again: the next tick sees the request and the landing together
    assert chain.settle() == ["mart.x"]  # the landing is not lost to the request's reset
    assert chain.settle() == []  # and counted once


def test_an_input_whose_last_run_failed_holds_its_readers(chain: Project) -> None:
    chain.land("raw.a")
    assert chain.settle() == ["mart.x"]  # y has a new mart.x, and waits for raw.b
    chain.land("raw.a")
    assert chain.tick() == ["mart.x"]
    chain.run(["mart.x"], fail=True)
    chain.land("raw.b")
    assert chain.settle() == []  # both inputs are new to y, but mart.x's notebook just failed
    chain.land("raw.a")
    assert chain.settle() == ["mart.x", "mart.y"]


def test_cron_runs_at_each_tick_in_its_time_zone(tmp_path: Path) -> None:
    _reader(tmp_path, "x", ["raw.a"], "mart.x")
    _reader(tmp_path, "z", ["raw.a"], "mart.z")
    project = Project(tmp_path, [
        NotebookAsset("x.ipynb", cron="0 6 * * *", timezone="Europe/Amsterdam"),  # 05:00 UTC in winter
        NotebookAsset("z.ipynb", cron="0 6 * * *"),  # UTC
    ])
    day = dt.datetime(2030, 1, 7, tzinfo=UTC)
    assert project.tick(day.replace(hour=4, minute=30)) == []
    assert project.tick(day.replace(hour=5, minute=1)) == ["mart.x"]  # no input needed
    project.run(["mart.x"])
    assert project.tick(day.replace(hour=5, minute=30)) == []
    assert project.tick(day.replace(hour=6, minute=1)) == ["mart.z"]
    project.run(["mart.z"])
    assert project.tick(day.replace(hour=23)) == []


def test_cron_with_inputs_waits_after_each_tick_for_every_input(tmp_path: Path) -> None:
    _reader(tmp_path, "r", ["raw.a", "raw.b"], "mart.r")
    project = Project(tmp_path, [NotebookAsset("r.ipynb", cron="0 12 * * *", on_inputs_landed=True)])
    day = dt.datetime(2030, 1, 7, tzinfo=UTC)
    assert project.tick(day.replace(hour=10)) == []
    project.land("raw.a", "raw.b")
    assert project.tick(day.replace(hour=11)) == []  # landed, but before the tick
    assert project.tick(day.replace(hour=12, minute=1)) == []  # the tick: now it waits for both
    project.land("raw.a")
    assert project.tick(day.replace(hour=12, minute=2)) == []
    project.land("raw.b")
    assert project.tick(day.replace(hour=12, minute=3)) == ["mart.r"]
    project.run(["mart.r"])
    project.land("raw.a", "raw.b")
    assert project.tick(day.replace(hour=13)) == []  # once per tick
    assert project.tick(day.replace(day=8, hour=12, minute=1)) == []
    project.land("raw.a", "raw.b")
    assert project.tick(day.replace(day=8, hour=12, minute=2)) == ["mart.r"]


def test_a_notebook_without_a_trigger_has_no_condition(tmp_path: Path) -> None:
    _reader(tmp_path, "x", ["raw.a"], "mart.x")
    project = Project(tmp_path, [NotebookAsset("x.ipynb")])
    assert all(spec.automation_condition is None for a in project.stubs for spec in a.specs)


def test_the_ui_names_each_input_the_notebook_waits_for(chain: Project) -> None:
    y = next(s for a in chain.stubs for s in a.specs if s.key == dg.AssetKey(["mart", "y"]))
    labels = [child.get_label() for child in y.automation_condition.children]
    assert labels[:2] == [
        "mart.x landed or was updated since this notebook was last requested",
        "raw.b landed or was updated since this notebook was last requested",
    ]
    assert y.automation_condition.get_label() == "once every input has landed since the last run"


def test_bad_triggers_are_refused_all_at_once_naming_the_notebooks(tmp_path: Path) -> None:
    _reader(tmp_path, "x", ["raw.a"], "mart.x")
    write_notebook(tmp_path / "lonely.ipynb", code(RUNTIME), code("output('mart.l', __import__('pandas').DataFrame())"))
    with pytest.raises(DeclarationError) as err:
        build_notebook_graph([
            NotebookAsset("x.ipynb", cron="0 25 * * *", timezone="Mars/Olympus"),
            NotebookAsset("lonely.ipynb", on_inputs_landed=True, timezone="UTC"),
        ], base_dir=tmp_path)
    message = str(err.value)
    assert "x.ipynb: cron='0 25 * * *' is not a cron schedule" in message
    assert "x.ipynb: timezone='Mars/Olympus' is not an IANA time zone" in message
    assert "lonely.ipynb: timezone='UTC' needs cron=" in message
    assert "lonely.ipynb: on_inputs_landed=True, but the notebook has no SQL inputs to wait for" in message


# --- promises with a run under way (issue 26): a real run, held in its step on a thread until the test lets it end.


class HeldRun:
    """A run of one notebook's stub that stays in progress (STARTED, its materializations planned) until released."""

    def __init__(self, project: Project, table: str) -> None:
        self.release = threading.Event()
        key = dg.AssetKey(table.split("."))
        notebook = next(a for a in project.stubs if key in a.keys)
        release = self.release

        @dg.multi_asset(specs=list(notebook.specs), name=notebook.node_def.name)
        def _held() -> None:
            assert release.wait(120), "the test never released the run"

        self.project, self.key = project, key
        before = {r.run_id for r in project.instance.get_runs()}
        self.thread = threading.Thread(
            target=dg.materialize, args=([_held, *project.sources],), kwargs={"instance": project.instance, "selection": [key]},
            daemon=True,
        )
        self.thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = [r for r in project.instance.get_runs() if r.run_id not in before and r.status == dg.DagsterRunStatus.STARTED]
            if started:
                self.run_id = started[0].run_id
                return
            time.sleep(0.05)
        raise AssertionError(f"the held run of {table} never started")

    def finish(self) -> None:
        self.release.set()
        self.thread.join(120)
        assert not self.thread.is_alive()
        assert self.project.instance.get_run_by_id(self.run_id).status == dg.DagsterRunStatus.SUCCESS


@pytest.fixture
def on_disk(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """An instance on disk: a run on another thread writes to it while the test ticks."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def test_a_notebook_does_not_start_while_one_of_its_inputs_is_being_updated(tmp_path: Path, on_disk: dg.DagsterInstance) -> None:
    _reader(tmp_path, "x", ["raw.a"], "mart.x")
    _reader(tmp_path, "y", ["mart.x", "raw.b"], "mart.y")
    project = Project(tmp_path, [NotebookAsset("x.ipynb", on_inputs_landed=True), NotebookAsset("y.ipynb", on_inputs_landed=True)])
    project.instance = on_disk
    assert project.tick() == []
    project.land("raw.a")
    assert project.settle() == ["mart.x"]  # y has a new mart.x and waits for raw.b
    project.land("raw.a")
    assert project.tick() == ["mart.x"]
    held = HeldRun(project, "mart.x")  # mart.x is being replaced ...
    project.land("raw.b")  # ... when y's other input lands: y has both, but must not read a table mid-update
    assert project.tick() == []
    assert project.tick() == []
    held.finish()
    assert project.settle() == ["mart.y"]  # once the update is done, y runs, once
    assert project.settle() == []


def test_cron_does_not_start_a_run_while_one_is_running(tmp_path: Path, on_disk: dg.DagsterInstance) -> None:
    _reader(tmp_path, "x", ["raw.a"], "mart.x")
    project = Project(tmp_path, [NotebookAsset("x.ipynb", cron="0 6 * * *")])
    project.instance = on_disk
    day = dt.datetime(2030, 1, 7, tzinfo=UTC)
    assert project.tick(day.replace(hour=5)) == []
    assert project.tick(day.replace(hour=6, minute=1)) == ["mart.x"]
    assert project.tick(day.replace(hour=6, minute=2)) == []  # Dagster sees its own request a tick later
    held = HeldRun(project, "mart.x")  # the 06:00 run is still running when the next day's tick passes
    assert project.tick(day.replace(day=8, hour=6, minute=1)) == []
    assert project.tick(day.replace(day=8, hour=6, minute=2)) == []
    held.finish()
    assert project.tick(day.replace(day=8, hour=7)) == []  # the tick that sees the run's end: no catching up
    assert project.tick(day.replace(day=9, hour=6, minute=1)) == ["mart.x"]  # the next cron tick after it ended


def test_a_run_started_by_hand_does_not_reset_what_has_landed(chain: Project) -> None:
    chain.land("raw.a")
    assert chain.settle() == ["mart.x"]  # y: mart.x is new, raw.b has not landed
    dg.materialize([*chain.stubs, *chain.sources], instance=chain.instance, selection=[dg.AssetKey(["mart", "y"])])  # by hand
    assert chain.settle() == []
    chain.land("raw.b")
    assert chain.settle() == ["mart.y"]  # mart.x's update still counts: the hand-started run did not use it up
