"""What a user writes in definitions.py for one notebook: a small typed object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nb_assets.inbox.checks import OutputCheck
from nb_assets.sandbox.base import SandboxKind, SandboxLimits
# Defined with the warehouse, which must not import the declarations; re-exported for FileDrop's users.
from nb_assets.warehouse.base import LoadMode


@dataclass(frozen=True)
class Reclassify:
    """Give an output other zones than its inputs' union; the reason is recorded."""

    zones: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class DailyPartitions:
    """Daily partitions for a notebook's assets.

    start: the first day, "YYYY-MM-DD".
    column: the date column in every output that says which day a row belongs to;
        a run replaces the rows whose column equals its day, and no others.
    Each partition runs on its own (a backfill is one run per day): the notebook
    takes one `ds`, so a ranged run would have to loop it anyway, and one run per
    day keeps a failed day from failing the others.
    """

    start: str
    column: str = "ds"


PARTITION_PARAM = "ds"  # the parameter a partitioned notebook receives its day in


@dataclass(frozen=True)
class NotebookAsset:
    """One scheduled notebook.

    path: the .ipynb file, relative to the definitions' base folder.
    params: parameter values for scheduled runs (checked against the notebook's
        `parameters` cell; unknown names are an error).
    key_prefix: prefixes the report asset's key (notebooks without outputs);
        output assets are always keyed by their table, `["schema", "table"]`.
    purpose: the policy zone this notebook runs for.
    allow: rule id → written reason, downgrading that static-analysis finding.
    reclassify: output table → new zones and the reason.
    cron: run at each tick of this cron schedule; None means on demand or on_inputs_landed.
    timezone: the IANA time zone the cron schedule is read in (default UTC); needs cron.
    on_inputs_landed: run once every input table has landed (or been rematerialized)
        since this notebook last ran, never with only some of them. With cron too:
        at each tick, wait until every input has landed since the tick, then run once.
    instances: instance name → parameter values: one asset group per instance
        (`<notebook>_<instance>`), each with its own lineage, zones and trigger.
    outputs: output table as the notebook writes it → the warehouse table it loads
        into, a template over `{instance}` and the instance's parameters, e.g.
        `{"mart.revenue": "mart.revenue_{region}"}`. With instances, an output not
        named here loads into `<table>_<instance>`; the notebook still calls
        `output("mart.revenue", df)`.
    partitions: `DailyPartitions(...)`: one partition per day, its key given to the
        notebook as the `ds` parameter; each output replaces only that day's rows.
    checks: output table → output checks (`unique("id")`, ... from nb_assets), run inside the
        load before it commits, besides the notebook's own `output(..., checks=[...])` (docs/checks.md).
    freshness: how fresh the outputs must be: a maximum age ("26h") or a daily deadline
        ("by 07:00 Europe/Berlin"); a stale notebook's owners are told once, and again
        when it is fresh (project/freshness.py, defs/freshness_sensor.py).
    instance: set by nb_assets.project.instances when it expands `instances`; not for users.
    declared_at: where the declaration was read, "declarations.yaml:12", so that every
        error about it names the file and line; set by load_declarations_yaml.
    """

    path: str | Path
    owners: Sequence[str] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None
    key_prefix: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    purpose: str | None = None
    allow: Mapping[str, str] = field(default_factory=dict)
    reclassify: Mapping[str, Reclassify] = field(default_factory=dict)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    sandbox: SandboxKind = "auto"
    cron: str | None = None
    timezone: str | None = None
    on_inputs_landed: bool = False
    instances: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    partitions: DailyPartitions | None = None
    checks: Mapping[str, Sequence[OutputCheck]] = field(default_factory=dict)
    freshness: str | None = None
    instance: str | None = None
    declared_at: str | None = field(default=None, compare=False, repr=False)

    def notebook_file(self, base_dir: str | Path) -> Path:
        """The .ipynb file: `path` as given when absolute, else under the definitions' base folder."""
        return Path(base_dir) / self.path  # joining an absolute path yields that path

    def trigger(self) -> str:
        """The trigger in words, as the CLI, the context pane and messages show it."""
        cron = f"cron {self.cron}" + (f" ({self.timezone})" if self.timezone else "") if self.cron else ""
        if cron and self.on_inputs_landed:
            return f"{cron}, then when all inputs have landed"
        return cron or ("when all inputs have landed" if self.on_inputs_landed else "on demand")


def at(decl: NotebookAsset, message: str) -> str:
    """`message`, first naming the file and line `decl` was read from when it came from YAML."""
    return f"{decl.declared_at}: {message}" if decl.declared_at else message


@dataclass(frozen=True)
class FileDrop:
    """A folder where files for one source table are dropped; a sensor loads each new file once.

    table: the source table the files load into (one that a declared notebook reads).
    folder: the watched folder, relative to the definitions' base folder; loaded files
        move to its `loaded/` subfolder, refused ones to `rejected/` with a `.reason.txt`.
    pattern: which files in the folder to load (a glob, not recursive); CSV or Parquet.
    mode: "append" the file's rows, or "replace" the table's rows with them.
    """

    table: str
    folder: str | Path
    pattern: str = "*.parquet"
    mode: LoadMode = "append"
