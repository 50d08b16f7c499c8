"""A notebook reading a file literally is told what to declare, placed in the project: the path a
Source takes (relative to the project), or the declared source that already holds the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nb_assets.analysis.parser import parse_notebook
from nb_assets.errors import DeclarationError
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.declare import declare_notebooks
from nb_assets.project.sources import with_source_hints
from nb_assets.sources.model import Source
from support.notebook_factory import RUNTIME, code, write_notebook

SALES_REGIONS = Source("sales_regions", path="sources/sales_regions/", format="csv", zones=["public"])
DROPS = Source("drops", path="landing/$ds/*.parquet", zones=["finance"])
RATES = Source("rates", url="https://rates.example.invalid/v1/fx.json", zones=["public"])


def _project(tmp_path: Path, *reads: str) -> Path:
    (tmp_path / "definitions.py").write_text("", encoding="utf-8")
    (tmp_path / "sources" / "sales_regions").mkdir(parents=True)
    (tmp_path / "sources" / "sales_regions" / "europe.csv").write_text("region,amount\nEU,1\n", encoding="utf-8")
    lines = "\n".join(f"d{i} = pd.{r}" for i, r in enumerate(reads))
    return write_notebook(tmp_path / "notebooks" / "x.ipynb", code(RUNTIME), code(f"import pandas as pd\n{lines}"))


def _messages(tmp_path: Path, *reads: str) -> list[str]:
    spec = with_source_hints(parse_notebook(_project(tmp_path, *reads)), [SALES_REGIONS, DROPS, RATES], tmp_path)
    return [f.message for f in spec.errors]


def test_a_file_under_a_declared_folder_source_is_told_to_read_that_source(tmp_path: Path) -> None:
    (message,) = _messages(tmp_path, "read_csv('../sources/sales_regions/europe.csv')")
    assert ("read '../sources/sales_regions/europe.csv' through the declared source 'sales_regions' instead "
            "(it reads sources/sales_regions/): a `%%source df sales_regions` cell, or `source('sales_regions')` in SQL") in message
    assert "Source(" not in message, message


def test_a_glob_with_a_parameter_and_the_same_url_are_covered_too(tmp_path: Path) -> None:
    glob, url = _messages(tmp_path, "read_parquet('../landing/2026-11-01/a.parquet')",
                          "read_json('https://rates.example.invalid/v1/fx.json')")
    assert "through the declared source 'drops' instead" in glob, glob
    assert "through the declared source 'rates' instead" in url, url


def test_a_file_no_declared_source_holds_gets_the_declaration_relative_to_the_project(tmp_path: Path) -> None:
    (message,) = _messages(tmp_path, "read_csv('../sources/other/asia.csv')")
    assert "Source('asia', path='sources/other/asia.csv', zones=[...])" in message, message
    assert "declared source" not in message


def test_declaring_the_notebook_names_the_covering_source_in_its_problem(tmp_path: Path) -> None:
    _project(tmp_path, "read_csv('../sources/sales_regions/europe.csv')")
    with pytest.raises(DeclarationError) as info:
        declare_notebooks([NotebookAsset("notebooks/x.ipynb", owners=["a@example.invalid"])], tmp_path,
                          sources=[SALES_REGIONS])
    assert "through the declared source 'sales_regions' instead" in str(info.value), info.value
