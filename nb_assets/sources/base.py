"""The interface every fetcher of a declared source implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class SourceFetcher(Protocol):
    """Reads one declared source on the host, before the run, into a file the run's input
    folder holds (the sandbox never sees the location, only the bytes)."""

    def fetch(self, location: str, dest: Path) -> int:
        """Write the source at `location` (its parameters already bound) to `dest`; return its rows."""
        ...
