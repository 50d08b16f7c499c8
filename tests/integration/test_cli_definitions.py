"""`nb-assets run --definitions` runs a notebook exactly as declared; `lineage` reads refusing projects."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from support.cli import nb_assets
from support.notebook_factory import RUNTIME, code, params, write_notebook
from support.warehouses import warehouse_snapshot

POLICY = """\
zones:
  finance: {mode: enforce}
  pii: {mode: enforce}
purposes:
  reporting: [finance]
  support: [finance, pii]
tables:
  raw.orders: [finance]
  raw.customers: [pii]
"""


def _project(tmp_path: Path, warehouse: Path, declarations: str) -> Path:
    """A project folder whose definitions.py declares `declarations` against `warehouse`."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "policy.yaml").write_text(POLICY)
    (project / "definitions.py").write_text(textwrap.dedent(f"""\
        from pathlib import Path
        from nb_assets import NotebookAsset, Reclassify, SandboxLimits, notebook_definitions

        BASE = Path(__file__).parent
        defs = notebook_definitions([{declarations}], warehouse={str(warehouse)!r}, base_dir=BASE,
                                    policy=BASE / "policy.yaml", sandbox="local")
        """))
    return project


def _shelling_notebook(project: Path) -> Path:
    return write_notebook(
        project / "notebooks" / "vetted.ipynb",
        code(RUNTIME),
        params("min_amount = 0.0\nlabel = 'x'"),
        code("%%sql orders\nSELECT * FROM raw.orders WHERE amount >= $min_amount"),
        code("import subprocess\nversion = subprocess.run(['true']).returncode"),
        code("orders['label'] = label\noutput('mart.vetted', orders)"),
    )


def _run(project: Path, notebook: Path, *extra: str) -> tuple[int, dict]:
    proc = nb_assets("run", str(notebook), "--definitions", str(project / "definitions.py"),
                     "--records", str(project / "records"), "--json", *extra, cwd=project)
    return proc.returncode, json.loads(proc.stdout)


def test_allowances_params_and_sandbox_come_from_the_declaration(tmp_path: Path, warehouse: Path) -> None:
    project = _project(tmp_path, warehouse, """NotebookAsset("notebooks/vetted.ipynb", purpose="reporting",
        allow={"shell-process": "runs a vetted local binary"}, params={"min_amount": 20.0, "label": "declared"})""")
    notebook = _shelling_notebook(project)
    # Without the declaration the finding refuses the notebook, as before.
    plain = nb_assets("run", str(notebook), "--warehouse", str(warehouse), "--sandbox", "local", "--json", cwd=project)
    assert plain.returncode == 1 and "[shell-process]" in json.loads(plain.stdout)["error"]["message"]

    status, report = _run(project, notebook)  # no --warehouse: the project's
    assert status == 0, report
    assert report["parameters"] == {"min_amount": 20.0, "label": "declared"}
    assert report["sandbox"]["kind"] == "local"
    assert report["outputs"] == [{"table": "mart.vetted", "rows": 6}]  # amount = 1.5 * id >= 20: ids 14..19

    status, report = _run(project, notebook, "--param", "label=flag")  # a flag overrides one parameter
    assert status == 0 and report["parameters"] == {"min_amount": 20.0, "label": "flag"}
    before = warehouse_snapshot(warehouse)
    status, report = _run(project, notebook, "--param", "min_amount=lots")  # and is checked the same way
    assert status == 1 and report["error"]["kind"] == "declaration"
    assert "parameter 'min_amount' expects float" in report["error"]["message"]
    assert warehouse_snapshot(warehouse) == before


def test_declared_limits_apply_and_a_flag_overrides_the_timeout(tmp_path: Path, warehouse: Path) -> None:
    project = _project(tmp_path, warehouse, """NotebookAsset("notebooks/slow.ipynb", purpose="reporting",
        limits=SandboxLimits(timeout_s=3))""")
    notebook = write_notebook(project / "notebooks" / "slow.ipynb", code(RUNTIME),
                              code("%%sql o\nSELECT * FROM raw.orders"), code("import time\ntime.sleep(8)"),
                              code("output('mart.slow', o)"))
    status, report = _run(project, notebook)
    assert status == 1 and report["error"]["kind"] == "timeout", report
    assert report["sandbox"]["limits"]["timeout_s"] == 3
    status, report = _run(project, notebook, "--timeout", "60")
    assert status == 0, report
    assert report["sandbox"]["limits"]["timeout_s"] == 60


def test_the_declared_purpose_is_what_the_gate_checks(tmp_path: Path, warehouse: Path) -> None:
    with __import__("duckdb").connect(str(warehouse)) as con:
        con.execute("CREATE TABLE raw.customers AS SELECT 1 AS customer_id, 'Ada' AS name")
    project = _project(tmp_path, warehouse, """NotebookAsset("notebooks/people.ipynb", purpose="support")""")
    notebook = write_notebook(project / "notebooks" / "people.ipynb", code(RUNTIME),
                              code("%%sql people\nSELECT * FROM raw.customers"), code("output('mart.people', people)"))
    status, report = _run(project, notebook)
    assert status == 0, report
    kept = json.loads((Path(report["record"]) / "run.json").read_text())  # the gate's facts, as a Dagster run's record has them
    assert kept["policy/purpose"] == "support" and kept["policy/labels"]["raw.customers"] == ["pii"]
    definitions = project / "definitions.py"
    definitions.write_text(definitions.read_text().replace('purpose="support"', 'purpose="reporting"'))
    status, report = _run(project, notebook)
    assert status == 1 and report["error"]["kind"] == "policy-refused"
    assert "purpose 'reporting' may not read zone 'pii'" in report["error"]["message"]


def test_lineage_explains_a_project_whose_definitions_refuse_to_load(tmp_path: Path, warehouse: Path) -> None:
    project = _project(tmp_path, warehouse, """NotebookAsset("notebooks/people.ipynb", purpose="reporting")""")
    write_notebook(project / "notebooks" / "people.ipynb", code(RUNTIME),
                   code("%%sql people\nSELECT * FROM raw.customers"), code("output('mart.people', people)"))
    loading = nb_assets("run", str(project / "notebooks" / "people.ipynb"), "--definitions",
                        str(project / "definitions.py"), cwd=project)
    assert loading.returncode == 1 and "may not read zone 'pii'" in loading.stderr
    proc = nb_assets("lineage", "raw.customers", "--definitions", str(project / "definitions.py"), "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [h["notebook"] for h in report["notebooks"]] == ["people"]
    assert report["notebooks"][0]["writes"] == [{"table": "mart.people", "labels": ["pii"]}]
    assert len(report["violations"]) == 1 and "purpose 'reporting' may not read zone 'pii'" in report["violations"][0]


@pytest.mark.slow
def test_dagster_still_refuses_to_load_that_project(tmp_path: Path, warehouse: Path) -> None:
    """Capturing the call is for the CLI only: Dagster loading the same file still fails."""
    import subprocess
    import sys

    project = _project(tmp_path, warehouse, """NotebookAsset("notebooks/people.ipynb", purpose="reporting")""")
    write_notebook(project / "notebooks" / "people.ipynb", code(RUNTIME),
                   code("%%sql people\nSELECT * FROM raw.customers"), code("output('mart.people', people)"))
    proc = subprocess.run([sys.executable, "-c", "import runpy; runpy.run_path('definitions.py')"],
                          cwd=project, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "may not read zone 'pii'" in proc.stderr
