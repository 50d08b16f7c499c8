"""Failure context read from real executed notebooks (papermill, a real kernel)."""

from __future__ import annotations

from pathlib import Path

import papermill
import pytest

from nb_assets.runs.failure import compact, failure_context, strip_ansi, trim
from support.notebook_factory import code, md, params, write_notebook

LONG_CELL = "\n".join([f"step_{i} = {i}" for i in range(1, 30)] + ["lookup(step_29)"] + [f"after_{i} = {i}" for i in range(10)])


def _execute(tmp_path: Path, *cells) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    authored = write_notebook(tmp_path / "nb.ipynb", *cells)
    executed = tmp_path / "executed.ipynb"
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(str(authored), str(executed), parameters={"ds": "2026-11-20"},
                                   progress_bar=False, kernel_name="python3")
    return authored, executed


def test_a_failing_line_deep_in_a_long_cell_is_marked_in_the_authors_numbering(tmp_path: Path) -> None:
    authored, executed = _execute(
        tmp_path, md("# Title"), params('ds = "x"'), code("def lookup(n):\n    return {}['currency']"), code(LONG_CELL),
    )
    context = failure_context(str(authored), 4, executed)
    assert (context.cell, context.failing_line, context.ename, context.evalue) == (4, 30, "KeyError", "'currency'")
    excerpt = context.excerpt()
    assert "> 30 | lookup(step_29)" in excerpt
    assert "(23 line(s) above)" in excerpt and "more line(s)" in excerpt
    assert "step_1 = 1" not in excerpt  # a window around the failing line, not the whole cell
    # IPython's `Cell In[N]` counts papermill's injected cell; the author reads cell numbers.
    assert "cell 4, line 30" in context.traceback and "cell 3, line 2, in lookup(n)" in context.traceback
    assert "In[" not in context.traceback and "\x1b" not in context.traceback
    assert context.traceback.rstrip().endswith("KeyError: 'currency'")
    # Found without being told the cell, from the error output alone:
    assert failure_context(str(authored), None, executed).cell == 4


def test_a_deep_traceback_is_trimmed_keeping_where_it_started_and_ended(tmp_path: Path) -> None:
    authored, executed = _execute(
        tmp_path, params('ds = "x"'), code("def down(n):\n    return down(n - 1) if n else 1 / 0"), code("down(60)"),
    )
    context = failure_context(str(authored), 3, executed)
    lines = context.traceback.splitlines()
    assert len(lines) <= 40 and any("lines omitted" in line for line in lines)
    assert "cell 3, line 1" in context.traceback  # the start
    assert lines[-1] == "ZeroDivisionError: division by zero"  # the end
    assert context.failing_line == 1


def test_without_an_executed_notebook_the_source_comes_from_the_authored_file(tmp_path: Path) -> None:
    authored = write_notebook(tmp_path / "nb.ipynb", md("# t"), code("%%sql orders\nSELECT * FROM raw.missing"))
    context = failure_context(str(authored), 2, None)
    assert context.cell_source == "%%sql orders\nSELECT * FROM raw.missing" and context.traceback == ""
    assert context.describe() == f"{authored}, cell 2:\n  1 | %%sql orders\n  2 | SELECT * FROM raw.missing"


def test_a_garbage_executed_notebook_yields_what_is_known(tmp_path: Path) -> None:
    garbage = tmp_path / "executed.ipynb"
    garbage.write_text('{"cells": "not a list"')
    context = failure_context("nb.ipynb", 3, garbage, ename="KeyError", evalue="'x'")
    assert (context.cell, context.cell_source, context.ename, context.traceback) == (3, None, "KeyError", "")


def test_colour_codes_and_library_frames_are_reduced() -> None:
    assert strip_ansi("\x1b[31mKeyError\x1b[39m \x1b[38;5;28;01mdef\x1b[39;00m") == "KeyError def"
    traceback = "head\ncell 2, line 1\n----> 1 f()\n\nFile /lib/x.py:10, in f()\n      9 a = 1\n---> 10 g()\n     11 b\n\nFile /lib/y.py:3, in g()\n----> 3 raise E\n\nE: boom"
    assert compact(traceback) == "head\ncell 2, line 1\n----> 1 f()\n\nFile /lib/x.py:10, in f()\n---> 10 g()\n\nFile /lib/y.py:3, in g()\n----> 3 raise E\n\nE: boom"
    assert trim("x" * 500, max_lines=5).endswith("...") and len(trim("x" * 500)) == 300


def test_chained_exceptions_raised_inside_libraries_are_dropped() -> None:
    inner = "KeyError    Traceback (most recent call last)\nFile /lib/base.py:3812, in get_loc()\n-> 3812 return x\n\nKeyError: 'c'"
    outer = "KeyError    Traceback (most recent call last)\ncell 5, line 2\n----> 2 rows['c']\n\nKeyError: 'c'"
    mine = "ValueError    Traceback (most recent call last)\ncell 4, line 1\n----> 1 parse()\n\nValueError: bad"
    cause = "\n\nThe above exception was the direct cause of the following exception:\n\n"
    handling = "\n\nDuring handling of the above exception, another exception occurred:\n\n"
    assert compact(inner + cause + outer) == "(1 chained exception(s) raised inside libraries omitted)\n\n" + outer
    assert compact(mine + handling + outer) == mine + handling + outer  # both have notebook frames


def test_a_cell_stopped_mid_run_shows_its_source_without_a_traceback(tmp_path: Path) -> None:
    """A timeout or a memory kill leaves no error output: the cell still shows, unmarked."""
    executed = write_notebook(tmp_path / "executed.ipynb", md("# t"), code("while True:\n    pass"))
    context = failure_context("nb.ipynb", 2, executed)
    assert (context.cell_source, context.failing_line, context.traceback) == ("while True:\n    pass", None, "")
    assert context.describe() == "nb.ipynb, cell 2:\n  1 | while True:\n  2 |     pass"
