"""One root error; each stage of a notebook's life has its own subclass.

Every message names the notebook (and the cell, where one is known) so a
failure read in a log or a Dagster run page says where to look.
"""

from __future__ import annotations

from typing import Any


class NbAssetsError(Exception):
    """Root of every error nb_assets raises on purpose.

    `kind` is the stable, machine-readable name (`nb-assets run --json`'s
    error.type); `cell` is the 1-based cell it concerns, when one is known.
    """

    kind = "error"
    cell: int | None = None


class NotebookParseError(NbAssetsError):
    """The file is not a readable Jupyter notebook (bad JSON, wrong nbformat, ...)."""

    kind = "invalid-notebook"


class DeclarationError(NbAssetsError):
    """Notebooks cannot be declared: error findings, unknown parameters, bad options."""

    kind = "declaration"


class TableOwnedError(DeclarationError):
    """An ad hoc run would replace a table that is not its notebook's: a source, or another notebook's output."""

    kind = "table-owned"


class PolicyError(NbAssetsError):
    """A policy file is malformed, or a data flow breaks the policy."""

    kind = "policy-refused"


class UnlabelledSourceError(PolicyError):
    """The policy has no labels for a source table a notebook reads (which may not exist at all)."""

    def __init__(self, message: str, table: str) -> None:
        super().__init__(message)
        self.table = table


class SourceFetchError(NbAssetsError):
    """A declared source could not be fetched (missing, refused, too big, too slow, bad format, schema drift);
    the run stopped before the sandbox, nothing changed. The message names the source and the location."""

    kind = "source-fetch"

    def __init__(self, message: str, *, source: str | None = None, cell: int | None = None) -> None:
        super().__init__(message)
        self.source = source  # the declared source's name, where known: the caller names the cell reading it
        self.cell = cell


class WarehouseError(NbAssetsError):
    """Prefetching an input or loading an output failed; the warehouse is unchanged."""

    kind = "warehouse"

    def __init__(self, message: str, *, cell: int | None = None) -> None:
        super().__init__(message)
        self.cell = cell


class WarehouseBusyError(WarehouseError):
    """Another process held the warehouse file's lock for longer than this caller waits."""

    kind = "warehouse-busy"


class OutputValidationError(WarehouseError):
    """The run's output folder holds something other than the declared outputs."""

    kind = "outputs-refused"


class OutputCheckError(OutputValidationError):
    """A blocking output check failed inside the load; the load was rolled back (warehouse/checks.py).

    `outcomes` holds every check the load ran (warehouse.checks.CheckOutcome), samples included;
    the message names the failed checks and their counts, never the rows (they carry the output's zones)."""

    kind = "output-check-failed"

    def __init__(self, message: str, *, outcomes: tuple[Any, ...] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.outcomes = outcomes


class SandboxError(NbAssetsError):
    """The sandbox could not start, or ended the run abnormally."""

    kind = "sandbox"


class SandboxUnavailableError(SandboxError):
    """The requested sandbox kind cannot run on this host (no Docker engine, no image)."""

    kind = "sandbox-unavailable"


class NotebookRunError(NbAssetsError):
    """The notebook itself failed: a cell raised, the kernel died, a limit was hit."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "cell-error",
        cell: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.cell = cell
        self.ename = ename
        self.evalue = evalue


class LandingError(NbAssetsError):
    """A landing was refused: an unknown table, a bad file, a missing or corrupt landing log.

    Nothing was loaded and nothing was recorded."""

    kind = "landing"


def error_json(error: BaseException) -> dict[str, object]:
    """An error as `nb-assets run --json` and run.json give it: `kind` the category
    (cell-error, policy-refused, ...), `type` the exception's name (ZeroDivisionError
    when a cell raised it, else the nb_assets error's class), `cell` and `message`."""
    kind = getattr(error, "kind", "error")
    return {
        "cell": getattr(error, "cell", None),
        "kind": kind,
        "type": getattr(error, "ename", None) or type(error).__name__,
        "message": str(error),
    }
