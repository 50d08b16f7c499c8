"""The hint for a notebook that reads a file literally, followed word for word: the Source it
suggests is declared in definitions.py, the cell it suggests replaces the read, and the project's
own run path (`nb-assets run --definitions`, a real kernel in the local sandbox) reads the file."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from nb_assets.analysis.parser import parse_notebook
from nb_assets.cli.main import main
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.warehouses import warehouse_snapshot

READ = "import pandas as pd\nregions = pd.read_csv('../sources/regions/europe.csv')"
USE = "output('mart.region_rows', regions)"


def _notebook(project: Path, read: str) -> Path:
    return write_notebook(project / "notebooks" / "regions.ipynb", code(RUNTIME), params("ds = '2026-11-01'"), code(read), code(USE))


def test_declaring_the_suggested_source_and_reading_it_as_suggested_runs(tmp_path: Path, capsys) -> None:
    project = tmp_path / "project"
    (project / "sources" / "regions").mkdir(parents=True)
    (project / "sources" / "regions" / "europe.csv").write_text("region,amount\nEU,10\nUK,5\n", encoding="utf-8")
    (project / "definitions.py").write_text("", encoding="utf-8")  # a project, so the hint can name the path in it
    notebook = _notebook(project, READ)
    (hint,) = [f.message for f in parse_notebook(notebook).errors if f.rule == "direct-data-access"]
    declaration = re.search(r"`(Source\(.*?, zones=\[\.\.\.\]\))`", hint)
    cell = re.search(r"`(%%source df \w+)`", hint)
    assert declaration and cell, hint

    source = declaration.group(1).replace("zones=[...]", "zones=['public']")  # the author picks the zones
    (project / "definitions.py").write_text(textwrap.dedent(f"""\
        from pathlib import Path
        from nb_assets import NotebookAsset, Source, notebook_definitions

        BASE_DIR = Path(__file__).parent
        defs = notebook_definitions(
            [NotebookAsset("notebooks/regions.ipynb", owners=["data@example.invalid"])],
            warehouse=str(BASE_DIR / "warehouse.duckdb"), base_dir=BASE_DIR, sandbox="local",
            sources=[{source}],
        )
        """), encoding="utf-8")
    _notebook(project, cell.group(1).replace(" df ", " regions "))
    assert not parse_notebook(notebook).errors

    code_ = main(["run", str(notebook), "--definitions", str(project / "definitions.py"), "--sandbox", "local",
                  "--records", str(tmp_path / "records")])
    out = capsys.readouterr()
    assert code_ == 0, out.out + out.err
    assert warehouse_snapshot(project / "warehouse.duckdb")["mart.region_rows"] == [("EU", 10), ("UK", 5)], out.out
    assert declaration.group(1) == "Source('europe', path='sources/regions/europe.csv', zones=[...])", hint
