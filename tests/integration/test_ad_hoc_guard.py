"""An ad hoc `nb-assets run` replaces only its own tables (issue 19, point 1).

The issue's reproduction: in a copy of the demo project, a notebook calling
output("raw.customers", df) and output("mart.orders_clean", df), run with
`--warehouse <copy of the demo warehouse>`, replaced the 250-row pii customers
table. Then the new-user trial's: a notebook of the same file name in another
folder replaced a table silently (ownership matched the name only); --force
left no trace of what it replaced, or where; and --force announced a
replacement for a run then refused for a reason --force does not change.
Each test runs the real CLI against a real DuckDB file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, write_notebook
from support.paths import REPO
from support.warehouses import warehouse_snapshot

PAGES = "import pandas as pd\npages = pd.DataFrame({'page': list('abcdefg'), 'views': range(7)})"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's warehouse, seeded once (250 customers)."""
    path = tmp_path_factory.mktemp("seed") / "warehouse.duckdb"
    subprocess.run([sys.executable, str(REPO / "scripts" / "seed_demo.py"), "--warehouse", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def demo(tmp_path: Path, seeded: Path) -> Path:
    """A copy of the demo project, and beside it a copy of its warehouse (`copy.duckdb`)."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    for name in ("definitions.py", "policy.yaml", "declarations.yaml"):
        shutil.copy(REPO / name, project / name)
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, project / "notebooks" / notebook.name)
    shutil.copy(seeded, tmp_path / "copy.duckdb")
    return project


def _clobber(project: Path) -> Path:
    return write_notebook(project / "notebooks" / "clobber.ipynb", code(RUNTIME), code(PAGES),
                          code("output('raw.customers', pages)"), code("output('mart.orders_clean', pages)"))


def _run(notebook: Path, warehouse: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return nb_assets("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local",
                     "--records", str(cwd / "records"), *extra, cwd=cwd)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _comment(warehouse: Path, table: str) -> str | None:
    schema, name = table.split(".")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute("SELECT comment FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t",
                          {"s": schema, "t": name}).fetchone()
    return row[0] if row else None


def test_a_source_and_another_notebooks_table_are_refused_before_anything_runs(demo: Path) -> None:
    copy = demo.parent / "copy.duckdb"
    before, digest = warehouse_snapshot(copy), _digest(copy)
    proc = _run(_clobber(demo), copy, cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert f"nb-assets run: {demo / 'notebooks' / 'clobber.ipynb'} would replace tables in {copy} that are not its own; nothing ran" in proc.stderr
    assert "- raw.customers (250 rows now): a source read by customer_revenue (definitions.py)" in proc.stderr
    assert ("- mart.orders_clean: written by the declared notebook notebooks/clean_orders.ipynb (definitions.py); "
            "one table, one writer") in proc.stderr
    assert 'write a new table instead (e.g. output("mart.clobber", df)), or pass --force' in proc.stderr
    assert warehouse_snapshot(copy) == before and _digest(copy) == digest  # byte for byte
    assert not (demo / "records").exists()  # nothing ran, so nothing was recorded


def test_force_replaces_them_after_saying_what_it_replaces_and_the_record_keeps_it(demo: Path) -> None:
    copy = demo.parent / "copy.duckdb"
    proc = _run(_clobber(demo), copy, "--force", cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0
    assert f"--force: {demo / 'notebooks' / 'clobber.ipynb'} will replace tables in {copy} that are not its own" in proc.stderr
    assert "- raw.customers (250 rows now): a source read by customer_revenue" in proc.stderr
    assert f"loaded mart.orders_clean (7 rows), raw.customers (7 rows) into {copy}" in proc.stdout
    assert "replaced raw.customers (250 rows before) with --force: a source read by customer_revenue (definitions.py)" in proc.stdout
    assert "wrote mart.orders_clean (new) with --force: written by the declared notebook notebooks/clean_orders.ipynb" in proc.stdout
    tables = warehouse_snapshot(copy)
    assert len(tables["raw.customers"]) == 7 and len(tables["mart.orders_clean"]) == 7

    # Afterwards the record says it: `runs --json`, `show`, run.json.
    runs = nb_assets("runs", "clobber", "--records", str(demo / "records"), "--json", cwd=demo)
    listed = json.loads(runs.stdout)["runs"]
    assert len(listed) == 1, runs.stdout + runs.stderr
    assert listed[0]["warehouse"] == str(copy) and listed[0]["forced"] is True
    assert listed[0]["replaced"] == [
        {"table": "raw.customers", "owner": "a source read by customer_revenue (definitions.py)", "rows_before": 250},
        {"table": "mart.orders_clean", "owner": "written by the declared notebook notebooks/clean_orders.ipynb (definitions.py); "
         "one table, one writer", "rows_before": None},
    ]
    show = nb_assets("show", listed[0]["run_id"], "--records", str(demo / "records"), cwd=demo)
    assert show.returncode == 0, show.stderr
    assert f"warehouse:  {copy}" in show.stdout
    assert "  replaced raw.customers (250 rows before) with --force: a source read by customer_revenue" in show.stdout, show.stdout
    record = json.loads((Path(listed[0]["record"]) / "run.json").read_text())
    assert (record["warehouse"], record["forced"], len(record["replaced"])) == (str(copy), True, 2)


def test_a_run_names_the_warehouse_it_loaded_into(tmp_path: Path, warehouse: Path) -> None:
    """Without --warehouse too: the success line, --json and the record name it; an unforced run records no `forced`."""
    notebook = write_notebook(tmp_path / "pages.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    proc = nb_assets("run", str(notebook), "--sandbox", "local", "--records", str(tmp_path / "records"), "--json",
                     cwd=warehouse.parent)  # the default warehouse: ./warehouse.duckdb
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["warehouse"] == "warehouse.duckdb" and "forced" not in summary and "replaced" not in summary
    assert json.loads((Path(summary["record"]) / "run.json").read_text())["warehouse"] == "warehouse.duckdb"
    text = nb_assets("run", str(notebook), "--sandbox", "local", "--records", str(tmp_path / "records"), cwd=warehouse.parent)
    assert text.returncode == 0, text.stdout + text.stderr
    assert "; loaded mart.pages (7 rows) into warehouse.duckdb" in text.stdout


def test_a_declared_notebook_replaces_its_own_table_ad_hoc(demo: Path) -> None:
    copy = demo.parent / "copy.duckdb"
    proc = _run(demo / "notebooks" / "clean_orders.ipynb", copy, cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loaded mart.orders_clean" in proc.stdout


def test_without_a_project_only_the_notebook_that_loaded_a_table_replaces_it(tmp_path: Path, warehouse: Path) -> None:
    """No definitions.py: the warehouse says whose a table is (each load records it in the table's comment)."""
    first = write_notebook(tmp_path / "first.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    second = write_notebook(tmp_path / "second.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    by_hand = write_notebook(tmp_path / "by_hand.ipynb", code(RUNTIME), code(PAGES), code("output('raw.orders', pages)"))
    for attempt in (1, 2):  # its own table, again and again
        proc = _run(first, warehouse, cwd=tmp_path)
        assert proc.returncode == 0, f"run {attempt}: {proc.stdout}{proc.stderr}"
    before = warehouse_snapshot(warehouse)
    proc = _run(second, warehouse, cwd=tmp_path)
    assert proc.returncode == 1
    assert f"would replace tables in {warehouse} that are not its own" in proc.stderr
    assert f"- mart.pages (7 rows now): already in the warehouse, loaded by notebook first ({first})" in proc.stderr, proc.stderr
    proc = _run(by_hand, warehouse, cwd=tmp_path)
    assert proc.returncode == 1
    assert "- raw.orders (20 rows now): already in" in proc.stderr and "not loaded by a notebook" in proc.stderr, proc.stderr
    assert warehouse_snapshot(warehouse) == before
    assert _comment(warehouse, "mart.pages") == f"nb-assets: written by notebook first ({first})"  # outside a project: its absolute path


def test_a_notebook_declared_with_mapped_outputs_runs_only_as_declared(tmp_path: Path, warehouse: Path) -> None:
    (tmp_path / "definitions.py").write_text(textwrap.dedent(f"""\
        from pathlib import Path
        from nb_assets import NotebookAsset, notebook_definitions

        defs = notebook_definitions([NotebookAsset("pages.ipynb", outputs={{"mart.pages": "mart.pages_eu"}})],
                                    warehouse={str(warehouse)!r}, base_dir=Path(__file__).parent)
        """))
    notebook = write_notebook(tmp_path / "pages.ipynb", code(RUNTIME), code(PAGES), code("output('mart.pages', pages)"))
    before = warehouse_snapshot(warehouse)
    proc = _run(notebook, warehouse, cwd=tmp_path)
    assert proc.returncode == 1
    assert "is declared with outputs= in" in proc.stderr and "run it as declared with --definitions" in proc.stderr, proc.stderr
    assert warehouse_snapshot(warehouse) == before


def _empty(project: Path, folder: str) -> Path:
    return write_notebook(project / "notebooks" / folder / "ks_empty.ipynb", code(RUNTIME),
                          code(f"import pandas as pd\nrows = pd.DataFrame({{'folder': [{folder!r}] * {len(folder)}}})"),
                          code("output('mart.ks_empty', rows)"))


def test_a_notebook_of_the_same_name_in_another_folder_does_not_own_the_table(demo: Path) -> None:
    """notebooks/ks/ks_empty.ipynb and notebooks/ks2/ks_empty.ipynb are two notebooks: the table
    the first loaded is not the second's (the comment says which file, relative to the project)."""
    copy = demo.parent / "copy.duckdb"
    first, second = _empty(demo, "ks"), _empty(demo, "ks2")
    proc = _run(first, copy, cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _comment(copy, "mart.ks_empty") == "nb-assets: written by notebook ks_empty (notebooks/ks/ks_empty.ipynb)"
    before = warehouse_snapshot(copy)
    proc = _run(second, copy, cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert ("- mart.ks_empty (2 rows now): already in the warehouse, loaded by notebook ks_empty "
            "(notebooks/ks/ks_empty.ipynb)") in proc.stderr
    assert 'write a new table instead (e.g. output("mart.ks2_ks_empty", df)), or pass --force' in proc.stderr
    assert warehouse_snapshot(copy) == before
    proc = _run(second, copy, "--force", cwd=demo)  # now it is the second's, and the first's is refused
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("replaced mart.ks_empty (2 rows before) with --force: already in the warehouse, loaded by notebook ks_empty "
            "(notebooks/ks/ks_empty.ipynb)") in proc.stdout
    proc = _run(first, copy, cwd=demo)
    assert proc.returncode == 1 and "loaded by notebook ks_empty (notebooks/ks2/ks_empty.ipynb)" in proc.stderr, proc.stderr
    # `runs` of a file lists that file's runs; of a name, both files'.
    for which, files in ((first, ["notebooks/ks/ks_empty.ipynb"]), (second, ["notebooks/ks2/ks_empty.ipynb"]),
                         ("ks_empty", ["notebooks/ks2/ks_empty.ipynb", "notebooks/ks/ks_empty.ipynb"])):
        runs = nb_assets("runs", str(which), "--records", str(demo / "records"), "--json", cwd=demo)
        assert [r["notebook_file"] for r in json.loads(runs.stdout)["runs"]] == files, runs.stdout + runs.stderr


def test_a_table_whose_comment_names_only_the_notebook_takes_force_once(demo: Path) -> None:
    """A comment of the older form (the name only) cannot say which ks_empty.ipynb loaded it:
    refused, saying --force once makes it this file's; from then on the run needs no --force."""
    copy = demo.parent / "copy.duckdb"
    with duckdb.connect(str(copy)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS mart; CREATE TABLE mart.ks_empty AS SELECT 'old' AS folder")
        con.execute("COMMENT ON TABLE mart.ks_empty IS 'nb-assets: written by notebook ks_empty'")
    notebook = _empty(demo, "ks")
    before = warehouse_snapshot(copy)
    proc = _run(notebook, copy, cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert ("- mart.ks_empty (1 rows now): already in the warehouse, loaded by a notebook named ks_empty before loads "
            "recorded which file: if it was this one, pass --force once") in proc.stderr
    assert warehouse_snapshot(copy) == before
    proc = _run(notebook, copy, "--force", cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _run(notebook, copy, cwd=demo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert warehouse_snapshot(copy)["mart.ks_empty"] == [("ks",), ("ks",)]


def test_a_notebook_named_like_a_declared_one_is_told_which_file_owns_the_table(demo: Path) -> None:
    """notebooks/sub/clean_orders.ipynb is not the declared notebooks/clean_orders.ipynb: the refusal
    names the declared file, and suggests a table that is neither the declared one's nor taken."""
    copy = demo.parent / "copy.duckdb"
    impostor = write_notebook(demo / "notebooks" / "sub" / "clean_orders.ipynb", code(RUNTIME), code(PAGES),
                              code("output('mart.orders_clean', pages)"))
    proc = _run(impostor, copy, cwd=demo)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1
    assert ("- mart.orders_clean: written by the declared notebook notebooks/clean_orders.ipynb (definitions.py); "
            "one table, one writer") in proc.stderr
    assert 'write a new table instead (e.g. output("mart.sub_clean_orders", df))' in proc.stderr
    with duckdb.connect(str(copy)) as con:  # the suggestion taken by hand: the next one is suggested
        con.execute("CREATE SCHEMA IF NOT EXISTS mart; CREATE TABLE mart.sub_clean_orders AS SELECT 1 AS x")
    proc = _run(impostor, copy, cwd=demo)
    assert 'write a new table instead (e.g. output("mart.sub_clean_orders_2", df))' in proc.stderr, proc.stderr


def test_force_is_neither_offered_nor_announced_for_a_run_refused_anyway(demo: Path) -> None:
    """Reading and writing raw.customers breaks the reads-own-output rule: refused as such, before
    (and whatever) --force says; so are a bad parameter and a misspelled table."""
    copy = demo.parent / "copy.duckdb"
    digest = _digest(copy)
    circular = write_notebook(demo / "notebooks" / "circular.ipynb", code(RUNTIME),
                              code("%%sql customers\nSELECT * FROM raw.customers"), code("output('raw.customers', customers)"))
    typo = write_notebook(demo / "notebooks" / "typo.ipynb", code(RUNTIME),
                          code("%%sql events\nSELECT * FROM raw.web_event"), code("output('raw.customers', events)"))
    cases = [
        (circular, (), "[reads-own-output]"),
        (circular, ("--force",), "[reads-own-output]"),
        (_clobber(demo), ("--force", "--param", "nope=1"), "unknown parameter 'nope'"),
        (typo, ("--force",), 'no such table raw.web_event (did you mean raw.web_events?)'),
    ]
    for notebook, extra, refusal in cases:
        proc = _run(notebook, copy, *extra, cwd=demo)
        print(proc.stdout, proc.stderr)
        assert proc.returncode != 0 and refusal in proc.stderr, (extra, proc.stderr)
        assert "--force" not in proc.stderr and "not its own" not in proc.stderr, (extra, proc.stderr)
    assert _digest(copy) == digest and not (demo / "records").exists()
