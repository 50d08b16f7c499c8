"""Deadlines for the host's own stages (prefetch, load, output checks), enforced from the host.

The sandbox has a wall clock; the host's stages talk to the warehouse, where
one slow query (a cross join of ranges, a server that waits) would hold a run
forever. A `Deadline` is a stage's time: at most its own limit
(`SandboxLimits.prefetch_timeout`, `load_timeout`, `checks_timeout`) and never
more than what is left of the run's `timeout_s` (`RunBudget`).

A backend runs its queries inside `deadline.watching(cancel, step)`: a timer
thread calls `cancel` when the time is up, which stops the query in the engine
itself (DuckDB's `connection.interrupt()`, Postgres's cancel request through
ADBC), because a server-side `statement_timeout` alone can be reset by the
session it limits. The engine then fails the running statement; the backend
rolls its transaction back as for any error, and on leaving the block that
error becomes a `StageTimeoutError` naming the notebook, what was running and
the limit. A stage that finished before the engine noticed is not failed.

Output checks run inside the load's transaction, so they fall under the load's
deadline; `deadline.sub("checks_timeout")` gives them their own, shorter one
(never past the load's), to watch with the same cancel:

    with deadline.watching(con.interrupt, notebook, "starting the transaction") as watch:
        watch.at(f"loading {table}")       # what the message names if the deadline cuts it
        ...
        with deadline.sub("checks_timeout").watching(con.interrupt, notebook, f"checks of {table}"):
            run the checks on `con`         # cut at checks_timeout, or at the load's deadline
        deadline.check(notebook, "before the commit")

No driver here: the backends hand in their own cancel.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from nb_assets.errors import WarehouseError

_CANCEL_WAIT_S = 30.0  # how long leaving a block waits for a cancel under way (a Postgres cancel is a connection)


class StageTimeoutError(WarehouseError):
    """A host stage (prefetch, load, output checks) passed its deadline; its query was cancelled, nothing changed."""

    kind = "stage-timeout"


@dataclass(frozen=True)
class RunBudget:
    """The run's `timeout_s`, counted from the run's start: no stage gets more than what is left of it."""

    timeout_s: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.timeout_s - (time.monotonic() - self.started)

    def stage(self, stage: str, limit: str, seconds: float, subs: Mapping[str, float] | None = None) -> Deadline:
        """The deadline of `stage` (e.g. "prefetch", limit "prefetch_timeout"), starting now."""
        left = self.left()
        if seconds <= left:
            return Deadline(seconds, stage=stage, why=f"{limit} {seconds:g} s", subs=subs)
        return Deadline(max(left, 0.0), stage=stage, why=f"{limit} {seconds:g} s, cut to what was left of the run's "
                        f"timeout_s {self.timeout_s:g} s", subs=subs)


class Deadline:
    """A point in time a stage must end by; `watching` enforces it on a connection."""

    def __init__(self, seconds: float, *, stage: str, why: str, subs: Mapping[str, float] | None = None) -> None:
        self.seconds = seconds
        self.stage = stage  # "prefetch", "load", "output checks"
        self.why = why  # the limit, as the message gives it: "prefetch_timeout 300 s"
        self.ends = time.monotonic() + seconds
        self.subs = dict(subs or {})  # limits of stages run inside this one (checks_timeout), by name
        self._expired = threading.Event()

    @classmethod
    def unlimited(cls, stage: str = "stage") -> Deadline:
        """No deadline (a caller that gives none: an interactive `%%sql`, a direct API call)."""
        return cls(math.inf, stage=stage, why="no limit")

    @property
    def expired(self) -> bool:
        """Whether the timer fired (the engine was asked to cancel)."""
        return self._expired.is_set()

    def left(self) -> float:
        return self.ends - time.monotonic()

    def sub(self, limit: str, seconds: float | None = None, *, stage: str | None = None) -> Deadline:
        """A stage inside this one (the output checks inside the load): `seconds` (default: the
        limit this deadline was given under that name), never past this deadline."""
        wanted = self.subs.get(limit, math.inf) if seconds is None else seconds
        left = self.left()
        stage = stage or ("output checks" if limit == "checks_timeout" else limit.removesuffix("_timeout"))
        if wanted <= left:
            return Deadline(wanted, stage=stage, why=f"{limit} {wanted:g} s")
        return Deadline(max(left, 0.0), stage=stage, why=f"{limit} {wanted:g} s, cut to what was left of the {self.stage} ({self.why})")

    def message(self, notebook: str, step: str, *, cancelled: bool = True) -> str:
        """`cancelled`: a query was running and the engine was told to stop it (else the stage was still waiting)."""
        done = "nothing was fetched" if self.stage == "prefetch" else "the transaction was rolled back, nothing loaded"
        if not cancelled:
            done = "nothing was fetched" if self.stage == "prefetch" else "nothing loaded"
        return (f"{notebook}: {step}: the {self.stage} did not finish within the deadline of {self.seconds:.3g} s "
                f"({self.why}); " + ("the query was cancelled in the warehouse and " if cancelled else "") + done)

    def check(self, notebook: str, step: str) -> None:
        """Raise StageTimeoutError if the time is up (between statements, and before a commit)."""
        if self.expired or self.left() <= 0:
            self._expired.set()
            raise StageTimeoutError(self.message(notebook, step))

    @contextmanager
    def watching(self, cancel: Callable[[], None], notebook: str, step: str = "") -> Iterator[Watch]:
        """Call `cancel` when the deadline passes while the block runs; an error leaving the block
        after that is a StageTimeoutError naming `notebook` and the block's current `watch.step`."""
        watch = Watch(step, None)
        if self.left() <= 0:  # nothing left (the run's budget is spent): do not start
            self._expired.set()
            raise StageTimeoutError(self.message(notebook, step or "before it started", cancelled=False))
        timer = None
        if math.isfinite(self.ends):
            timer = threading.Timer(max(self.left(), 0.0), self._fire, (cancel,))
            timer.daemon = True
            timer.start()
        try:
            yield watch
        except StageTimeoutError:
            raise
        except BaseException as exc:
            if self.expired:
                raise StageTimeoutError(self.message(notebook, watch.step), cell=watch.cell) from exc
            raise
        finally:
            if timer is not None:
                # If the timer is cancelling right now, wait: its cancel must not reach a later statement.
                timer.cancel()
                timer.join(_CANCEL_WAIT_S)

    def _fire(self, cancel: Callable[[], None]) -> None:
        self._expired.set()
        try:
            cancel()
        except Exception:  # noqa: BLE001  # a cancel that fails leaves the server-side timeout as the backstop
            pass


@dataclass
class Watch:
    """What a watched block is doing now, for the message if the deadline cuts it."""

    step: str
    cell: int | None

    def at(self, step: str, cell: int | None = None) -> None:
        self.step, self.cell = step, cell
