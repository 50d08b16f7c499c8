"""Which notebook wrote a table: the identity every load records in the table's comment.

    nb-assets: written by notebook ks_empty (notebooks/ks/ks_empty.ipynb)

The name alone is not an identity: notebooks/ks/ks_empty.ipynb and
notebooks/ks2/ks_empty.ipynb are both `ks_empty`. So the comment also says
where the notebook lives: relative to its project (the folder of the nearest
definitions.py), which stays the same wherever the project is checked out, so
a table a Dagster code server loaded (it sees the project at another path)
names the same notebook `nb-assets run` does on a laptop; outside a project,
its resolved absolute path. A comment of the older form, the name only, names
a notebook whose location is unknown.

Files only: no Dagster, DuckDB or Docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nb_assets.locations import nearest_project

WRITER_COMMENT = "nb-assets: written by notebook "
_RECORDED = re.compile(r"(?P<name>[^\s(]+)(?: \((?P<location>.+)\))?")


@dataclass(frozen=True)
class Writer:
    """A notebook as a table's comment names it."""

    name: str
    location: str | None  # relative to its project, else absolute; None: not recorded (the older, name-only form)

    def __str__(self) -> str:
        return f"{self.name} ({self.location})" if self.location else self.name


def writer_of_notebook(path: str | Path) -> Writer:
    """The identity a load of the notebook at `path` records."""
    from nb_assets.spec import notebook_name

    return Writer(notebook_name(path), notebook_location(path))


def notebook_location(path: str | Path) -> str:
    """Where the notebook lives: relative to its project (posix), else its absolute path."""
    file = Path(path).resolve()
    project = nearest_project(file)
    return file.relative_to(project).as_posix() if project is not None else str(file)


def comment_text(notebook: str | Path) -> str:
    """The comment a load of `notebook` puts on each table it writes."""
    return WRITER_COMMENT + str(writer_of_notebook(notebook))


def writer_of(comment: object) -> Writer | None:
    """The notebook a table's comment names as its writer, or None (no comment of ours)."""
    text = str(comment or "")
    if not text.startswith(WRITER_COMMENT):
        return None
    recorded = _RECORDED.fullmatch(text[len(WRITER_COMMENT):])
    return Writer(recorded["name"], recorded["location"]) if recorded else None
