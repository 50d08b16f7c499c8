"""A mistake in an interactive `%%sql` or `%%source` cell is one line saying what to fix, not a traceback
(a real IPython shell running the runtime's magics on a real DuckDB warehouse)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

DEFINITIONS = """\
from pathlib import Path

from nb_assets import Source, notebook_definitions

HERE = Path(__file__).parent
defs = notebook_definitions([], warehouse=HERE / "warehouse.duckdb", base_dir=HERE, sources=[Source("rates", path="rates.csv", zones=["public"])])
"""


@pytest.fixture
def shell(warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("NB_ASSETS_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("NB_ASSETS_MODE", raising=False)
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.run_cell("%load_ext nb_assets.notebook")
    yield ip


def _run(shell: InteractiveShell, cell: str, capsys: pytest.CaptureFixture[str]) -> tuple[bool, str]:
    capsys.readouterr()
    result = shell.run_cell(cell)
    captured = capsys.readouterr()
    return result.success, re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)  # colour codes off


def test_a_misspelled_table_says_the_projects_no_such_table_message(shell: InteractiveShell, warehouse: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ok, shown = _run(shell, "%%sql events\nSELECT * FROM raw.order", capsys)
    assert not ok  # Run All stops at the cell
    assert shown.strip().count("\n") == 0, shown  # one line: the message alone
    assert f"CellInputError: %%sql events: no such table raw.order (did you mean raw.orders?) in the warehouse {warehouse}" in shown, shown
    assert "Traceback" not in shown and "CatalogException" not in shown, shown
    ok, shown = _run(shell, "%%sql events\nSELECT count(*) AS n FROM raw.orders", capsys)
    assert ok and int(shell.user_ns["events"].n[0]) > 0, shown  # the corrected cell runs


def test_an_unknown_column_is_the_engines_message_alone(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ok, shown = _run(shell, "%%sql events\nSELECT no_such_column FROM raw.orders", capsys)
    assert not ok and "CellInputError: %%sql events: Binder Error" in shown and "Traceback" not in shown, shown


def test_an_undeclared_source_says_which_are_declared(shell: InteractiveShell, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "definitions.py").write_text(DEFINITIONS)
    ok, shown = _run(shell, "%%source europe europe", capsys)
    assert not ok and "CellInputError: %%source europe:" in shown and "declares no source 'europe' (declared: rates)" in shown, shown
    assert "Traceback" not in shown, shown
    ok, shown = _run(shell, "%%source rates rates", capsys)  # declared, but its file is not there
    assert not ok and "CellInputError: %%source rates rates: source 'rates'" in shown and "Traceback" not in shown, shown


def test_a_bug_keeps_its_traceback(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    # Not the cell's mistake: a namespace whose lookup breaks is a bug, and its traceback must show.
    class Broken(dict):
        def __contains__(self, key: object) -> bool:
            raise RuntimeError("a bug in binding")

    from nb_assets.jupyter.interactive import interactive_input

    with pytest.raises(RuntimeError, match="a bug in binding"):
        interactive_input("SELECT * FROM raw.orders WHERE order_id = $low", Broken(low=1), "events")
