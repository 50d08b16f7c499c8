"""What checking a policy finds: violations (with the advice an author needs), reclassifications, the report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nb_assets.policy.model import Mode


@dataclass(frozen=True)
class Violation:
    notebook: str
    purpose: str
    table: str
    zone: str
    mode: Mode
    writer: str | None = None  # the notebook that writes `table`; None for a source table
    allowed_by: tuple[str, ...] = ()  # purposes whose notebooks may read `zone`
    labels: frozenset[str] = frozenset()  # all of `table`'s labels
    via: tuple[str, ...] = ()  # below a view or macro input: the path to where the zone is written
    through: bool = False  # `table` is a view or table macro, not a table

    def message(self) -> str:
        verdict = "refused" if self.mode == "enforce" else "allowed (zone in log mode) but recorded"
        read = f"source table {self.table}" if self.writer is None else f"input {self.table}, written by notebook {self.writer}"
        kind = "table macro" if self.table.endswith("()") else "view"
        if self.via:  # a view or table macro: say where the zone really comes from
            chain = " → ".join((self.table, *self.via))
            read = f"{kind} {self.table}, which reads {self.via[-1]} carrying '{self.zone}': {chain}"
        elif self.through:
            read = f"{kind} {self.table}, labelled '{self.zone}' in the policy"
        purposes = (
            f"run the notebook for a purpose that allows '{self.zone}': {', '.join(self.allowed_by)}"
            if self.allowed_by
            else f"no purpose in the policy allows '{self.zone}'; a purpose that should, must be added to it"
        )
        return "\n".join((
            f"notebook {self.notebook}: purpose '{self.purpose}' may not read zone '{self.zone}' ({read}); {verdict}.",
            "  Either:",
            f"  - {purposes}",
            f"  - or add '{self.zone}' to purposes.{self.purpose} in the policy",
            f"  - or {self._reclassify_advice()}",
        ))

    def _reclassify_advice(self) -> str:
        """reclassify applies only to a notebook's own outputs: a source table keeps its labels."""
        why = f'"<why it no longer holds {self.zone} data>"'
        zones: tuple[str, ...]
        if self.writer is None:
            table, zones = "<schema.table>", ("<zone>",)
            advice = (
                f"read a table derived from {self.table} by a notebook that runs for such a purpose and "
                f"reclassifies its own output, in its declaration:"
            )
        else:
            table, zones = self.table, tuple(sorted(self.labels - {self.zone})) or ("<zone>",)
            advice = (
                f"if {self.table} no longer holds {self.zone} data, reclassify it "
                f"in the declaration of notebook {self.writer}:"
            )
        zone_tuple = "(" + ", ".join(f'"{z}"' for z in zones) + ("," if len(zones) == 1 else "") + ")"
        return (
            f"{advice}\n      from nb_assets import Reclassify\n"
            f'      NotebookAsset(..., reclassify={{"{table}": Reclassify({zone_tuple}, {why})}})'
        )


@dataclass(frozen=True)
class Reclassification:
    notebook: str
    table: str
    inherited: frozenset[str]  # labels propagation would have given
    labels: frozenset[str]
    reason: str


@dataclass(frozen=True)
class PolicyReport:
    labels: Mapping[str, frozenset[str]]
    violations: tuple[Violation, ...]
    reclassified: tuple[Reclassification, ...]
    writers: Mapping[str, str] = field(default_factory=dict)  # table -> the notebook that writes it

    def blocking(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.mode == "enforce")
