"""`%%source <var> <name>` in Jupyter: fetch the declared source through the host's own code.

The project is the nearest definitions.py at or above the working folder; the
source is fetched exactly as a scheduled run would (same binding of `$params`
from the notebook's variables, same limits and checks), into a temporary folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from nb_assets.errors import DeclarationError
from nb_assets.sources.fetch import fetch_sources
from nb_assets.sources.model import find_source


def interactive_source(name: str, namespace: Mapping[str, Any], cwd: Path | None = None) -> pa.Table:
    import pyarrow.parquet as pq

    from nb_assets.project.definitions_file import load_declarations
    from nb_assets.warehouse.source_tables import read_table

    here = (cwd or Path.cwd()).resolve()
    definitions = next((d / "definitions.py" for d in (here, *here.parents) if (d / "definitions.py").is_file()), None)
    if definitions is None:
        raise DeclarationError(f"%%source {name}: no definitions.py at or above {here}, so no source registry to read {name!r} from")
    project = load_declarations(definitions)
    source = find_source(project.sources, name)
    if source is None:
        declared = ", ".join(sorted(s.name for s in project.sources)) or "none"
        raise DeclarationError(f"%%source {name}: {definitions} declares no source {name!r} (declared: {declared})")
    params = {p: namespace[p] for p in source.params if p in namespace}
    with tempfile.TemporaryDirectory(prefix="nb_assets_source_") as tmp:
        fetched = fetch_sources([source], [name], params, Path(tmp), base_dir=project.base_dir, read_table=read_table)
        return pq.read_table(fetched[name].file)
