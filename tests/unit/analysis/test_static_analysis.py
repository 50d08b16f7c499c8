"""Static rules: for every rule, cases that must trigger (rule, cell, line) and near misses that must not.

Cells are built inline; each case is a tiny notebook, so the whole file runs in milliseconds.
"""

from __future__ import annotations

import nbformat
import pytest

from nb_assets.spec import Cell, Finding
from nb_assets.analysis.checks import RULES, Rule, analyze, apply_allowances

RUNTIME = "%load_ext nb_assets.notebook\nfrom nb_assets.notebook import output"


def code(*sources: str) -> list[Cell]:
    return [Cell(number, "code", source) for number, source in enumerate(sources, start=1)]


def hits(cells: list[Cell], rule: str) -> list[tuple[str, int | None, int | None]]:
    return [(f.rule, f.cell, f.line) for f in analyze(cells) if f.rule == rule]


# (rule, cell source, line of the single finding) — the case must produce exactly that finding for the rule.
TRIGGERS = [
    # network-access: any import path, alias, submodule or literal dynamic import
    ("network-access", "import requests\nrequests.get(url)\nrequests.post(url)", 1),
    ("network-access", "import requests as r\nr.get(url)", 1),
    ("network-access", "from urllib.request import urlopen\nurlopen(url)", 1),
    ("network-access", "x = 1\nimport urllib.request", 2),
    ("network-access", "import urllib\nx = 1\nurllib.request.urlopen(url)", 3),
    ("network-access", "import http.client", 1),
    ("network-access", "from http import client", 1),
    ("network-access", "import google.cloud.storage as gcs\ngcs.Client()", 1),
    ("network-access", "from azure.storage.blob import BlobClient", 1),
    ("network-access", "from socket import *", 1),
    ("network-access", "mod = __import__('requests')\nmod.get(url)", 1),
    ("network-access", "import importlib\nimportlib.import_module('socket').create_connection(a)", 2),
    *[("network-access", f"import {m}", 1) for m in (
        "socket", "ssl", "urllib3", "httpx", "aiohttp", "smtplib", "ftplib", "telnetlib", "paramiko", "boto3",
        "botocore.session", "websocket", "websockets", "grpc", "pycurl", "xmlrpc.client",
    )],
    # shell-process: modules, os functions (also aliased) and every IPython escape
    ("shell-process", "import subprocess\nsubprocess.run(['ls'])", 1),
    ("shell-process", "from subprocess import run", 1),
    ("shell-process", "import os\nos.system('ls')", 2),
    ("shell-process", "import os\nos.popen('ls').read()", 2),
    ("shell-process", "import os\nos.execvp('ls', ['ls'])", 2),
    ("shell-process", "import os\nos.spawnl(os.P_WAIT, '/bin/ls')", 2),
    ("shell-process", "import os\npid = os.fork()", 2),
    ("shell-process", "from os import system as s\ns('ls')", 1),
    ("shell-process", "import os\nrun = os.system\nrun('ls')", 2),
    ("shell-process", "import pty", 1),
    ("shell-process", "!ls -l", 1),
    ("shell-process", "x = 1\n!!ls", 2),
    ("shell-process", "files = !ls", 1),
    ("shell-process", "%%bash\necho hi", 1),
    ("shell-process", "\n\n%%bash\necho hi", 3),
    ("shell-process", "%%sh\necho hi", 1),
    ("shell-process", "%%script bash\necho hi", 1),
    ("shell-process", "%%perl\nprint 1;", 1),
    ("shell-process", "%%ruby\nputs 1", 1),
    ("shell-process", "x = 1\n%system ls", 2),
    ("shell-process", "%sx ls", 1),
    ("shell-process", "%run other_notebook.ipynb", 1),
    ("shell-process", "%pip install requests", 1),
    ("shell-process", "get_ipython().system('ls')", 1),
    ("shell-process", "ip = get_ipython()\nip.system('ls')", 2),
    ("shell-process", "%time import subprocess", 1),
    ("shell-process", "%%time\nx = 1\nimport subprocess", 3),
    # direct-data-access: database clients, read_sql, file readers with a path or URL
    ("direct-data-access", "import duckdb\ncon = duckdb.connect('warehouse.duckdb')\ncon.sql('select 1')", 1),
    *[("direct-data-access", f"import {m}", 1) for m in ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "pymysql", "pyodbc")],
    ("direct-data-access", "from sqlalchemy import create_engine", 1),
    ("direct-data-access", "import pandas as pd\ndf = pd.read_sql('select 1', con)", 2),
    ("direct-data-access", "from pandas import read_sql_query", 1),
    ("direct-data-access", "import pandas as pd\ndf = pd.read_csv('data/orders.csv')", 2),
    ("direct-data-access", "import pandas as pd\ndf = pd.read_parquet(path)", 2),
    ("direct-data-access", "import pandas\ndf = pandas.read_json('https://example.com/x.json')", 2),
    ("direct-data-access", "import pandas as pd\ndf = pd.read_excel(io='orders.xlsx')", 2),
    # file-write: write modes, writers given a path, pathlib, shutil, os, %%writefile
    ("file-write", "with open('out.txt', 'w') as f:\n    f.write('x')", 1),
    ("file-write", "open(path, mode='a')", 1),
    ("file-write", "open(path, 'wb')", 1),
    ("file-write", "open(path, 'x')", 1),
    ("file-write", "open(path, 'r+')", 1),
    ("file-write", "open(path, chosen_mode)", 1),
    ("file-write", "x = 1\ndf.to_csv('out.csv')", 2),
    ("file-write", "df.to_parquet(path='out.parquet')", 1),
    ("file-write", "df.to_excel(writer)", 1),
    ("file-write", "df.to_pickle('x.pkl')", 1),
    ("file-write", "df.to_json('x.json')", 1),
    ("file-write", "df.to_feather(path)", 1),
    ("file-write", "df.to_hdf(path, key='k')", 1),
    ("file-write", "df.to_sql('orders', con)", 1),
    ("file-write", "df.to_markdown('report.md')", 1),
    ("file-write", "from pathlib import Path\nPath('x.txt').write_text('hi')", 2),
    ("file-write", "Path('x.bin').write_bytes(b'')", 1),
    ("file-write", "Path('out.csv').open('w')", 1),
    ("file-write", "import shutil\nshutil.rmtree('data')", 2),
    ("file-write", "import shutil\nshutil.copy(a, b)", 2),
    ("file-write", "from shutil import move\nmove(a, b)", 1),
    *[("file-write", f"import os\nos.{f}('p')", 2) for f in ("remove", "unlink", "rename", "makedirs", "mkdir")],
    ("file-write", "import numpy as np\nnp.save('a.npy', arr)", 2),
    ("file-write", "%%writefile helper.py\nprint(1)", 1),
    ("file-write", "import matplotlib.pyplot as plt\nplt.plot(x)\nplt.savefig('fig.png')", 3),
    ("file-write", "fig.savefig('fig.png')", 1),
    # dynamic-code
    ("dynamic-code", "exec(code)", 1),
    ("dynamic-code", "x = 1\ny = eval('1 + 1')", 2),
    ("dynamic-code", "c = compile(src, 'cell', 'exec')", 1),
    ("dynamic-code", "mod = __import__(name)", 1),
    ("dynamic-code", "import importlib\nm = importlib.import_module(name)", 2),
    ("dynamic-code", "globals()['x'] = 1", 1),
    ("dynamic-code", "globals().update(values)", 1),
    ("dynamic-code", "import builtins\nbuiltins.exec('x = 1')", 2),
    ("dynamic-code", "f = eval\nf('1')", 1),
    ("dynamic-code", "get_ipython().run_cell('x = 1')", 1),
    ("dynamic-code", "%timeit -n 10 eval('1')", 1),
    # sql-in-python: f-string, %, .format, + whose literal parts read as SQL
    ("sql-in-python", "q = f\"SELECT * FROM raw.orders WHERE ds = '{ds}'\"", 1),
    ("sql-in-python", "q = 'SELECT * FROM %s' % table", 1),
    ("sql-in-python", "q = 'DELETE FROM {} WHERE id = {}'.format(t, i)", 1),
    ("sql-in-python", "q = 'INSERT INTO ' + table + ' VALUES (1)'", 1),
    ("sql-in-python", "q = f'update {table} set x = 1'", 1),
    ("sql-in-python", "x = 1\nq = (\n    f'select a '\n    f'from {t}'\n)", 3),
    ("sql-in-python", "q = 'x' + 'SELECT a FROM ' + t", 1),
    # syntax-error: line numbers map back through magic transformation
    ("syntax-error", "def f(:\n    pass", 1),
    ("syntax-error", "x = 1\ny = (", 2),
    ("syntax-error", "!ls \\\n  -l\nx = = 2", 3),
    ("syntax-error", "%%time\nx = = 1", 2),
]


@pytest.mark.parametrize(("rule", "source", "line"), TRIGGERS)
def test_rule_triggers(rule: str, source: str, line: int) -> None:
    assert hits(code(source), rule) == [(rule, 1, line)]


# (rule, cell source) — similar code that must not produce a finding of that rule.
NEAR_MISSES = [
    ("network-access", "x = 'socket'  # import socket, requests"),
    ("network-access", "import pandas as requests\nrequests.get(table)"),
    ("network-access", "requests = [1]\nrequests.append(2)"),
    ("network-access", "from urllib.parse import urlencode"),
    ("network-access", "from http import HTTPStatus"),
    ("network-access", "import json\n__import__('json')"),
    ("shell-process", "subprocess = 'not a module'\nsubprocess.upper()"),
    ("shell-process", "import os\nos.path.join('a', 'b')\nos.environ.get('X')"),
    ("shell-process", "print('run !ls in a shell')  # !ls"),
    ("shell-process", "%matplotlib inline\n%load_ext nb_assets.notebook"),
    ("shell-process", "%%time\nx = sum(range(10))"),
    ("direct-data-access", "import io\nimport pandas as pd\npd.read_csv(io.StringIO(text))"),
    ("direct-data-access", "import pandas as pd\ndf = pd.DataFrame(orders)"),
    ("direct-data-access", "q = 'import duckdb'"),
    ("direct-data-access", "%%sql orders\nSELECT * FROM raw.orders"),
    ("file-write", "s = df.to_csv()"),
    ("file-write", "df.to_csv(None)\ndf.to_csv(index=False)"),
    ("file-write", "df.to_markdown()\ndf.to_dict()\ndf.to_numpy()\ndf.to_string(index=False)"),
    ("file-write", "df.to_json(orient='records')"),
    ("file-write", "import io\nbuf = io.StringIO()\ndf.to_csv(buf)"),
    ("file-write", "open('notes.txt')\nopen('notes.txt', 'rb')"),
    ("file-write", "output('mart.daily', df.to_parquet())"),
    ("file-write", "from nb_assets.notebook import output\noutput('mart.x', df.assign(total=df.a + df.b))"),
    ("file-write", "df = df.rename(columns={'a': 'b'})\nplt.show()"),
    ("file-write", "x = \"df.to_csv('a.csv')\""),
    ("dynamic-code", "df.eval('a + b')\ndf.query('a > 1')\nimport pandas as pd\npd.eval('1 + 1')"),
    ("dynamic-code", "import re\npattern = re.compile('a+')"),
    ("dynamic-code", "import importlib\nimportlib.import_module('json')"),
    ("dynamic-code", "x = globals()['y']"),
    ("dynamic-code", "def eval(x):\n    return x\neval(1)"),
    ("sql-in-python", "q = 'SELECT * FROM raw.orders'"),
    ("sql-in-python", "print(f'Selected {n} rows from {table}')"),
    ("sql-in-python", "msg = f'Total: {total}'\nline = '%d rows' % n\nlabel = 'Update ' + name"),
    ("sql-in-python", "# q = f'SELECT * FROM {t}'\n'''SELECT a FROM b'''"),
    ("syntax-error", "!ls\n%time x = 1\nfoo?\nx = !pwd"),
    ("syntax-error", "%%sql orders\nSELEC broken ("),
    ("syntax-error", "%%html\n<p>not python</p>"),
]


@pytest.mark.parametrize(("rule", "source"), NEAR_MISSES)
def test_near_miss_does_not_trigger(rule: str, source: str) -> None:
    assert hits(code(source), rule) == []


def test_severities_and_messages_say_what_to_do() -> None:
    findings = analyze(code("import multiprocessing", "open('notes.txt')", "plt.savefig('a.png')", "import duckdb"))
    assert [(f.rule, f.severity) for f in findings] == [
        ("shell-process", "warning"),
        ("direct-data-access", "warning"),
        ("file-write", "warning"),
        ("direct-data-access", "error"),
    ]
    assert "%%sql input cell" in findings[-1].message
    sql = analyze(code("q = f'SELECT * FROM {t}'"))[0]
    assert "%%sql input cell" in sql.message and "$param" in sql.message


def test_findings_across_cells_are_all_reported_in_order() -> None:
    cells = [
        Cell(1, "markdown", "# Report\n\n```python\nimport requests\n```"),
        Cell(2, "code", RUNTIME),
        Cell(3, "code", "import requests\nimport os\n\nos.system('ls')"),
        Cell(4, "raw", "exec(x)"),
        Cell(5, "code", "x = 1\n!curl example.com\ndf.to_csv('x.csv')"),
        Cell(6, "code", "q = f'SELECT * FROM {t}'\nexec(q)"),
    ]
    assert [(f.rule, f.cell, f.line) for f in analyze(cells)] == [
        ("network-access", 3, 1),
        ("shell-process", 3, 4),
        ("shell-process", 5, 2),
        ("file-write", 5, 3),
        ("sql-in-python", 6, 1),
        ("dynamic-code", 6, 2),
    ]


def test_aliases_resolve_across_cells() -> None:
    cells = code("import subprocess as sp\nfrom os import system", "sp.run(['ls'])\nsystem('ls')", "import os\nos.popen('x')")
    assert hits(cells, "shell-process") == [("shell-process", 1, 1), ("shell-process", 1, 2), ("shell-process", 3, 2)]


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (("import shutil as s\ns.rmtree(p)", "import json as s"), ("file-write", 1, 2)),
        (("import os\ndef f():\n    import pandas as os\nos.system('ls')",), ("shell-process", 1, 4)),
        (("def f():\n    import os\n    os.system('ls')",), ("shell-process", 1, 3)),
        (("def f(exec):\n    pass\nexec(code)",), ("dynamic-code", 1, 3)),
        (("eval = __builtins__.eval\neval('1')",), ("dynamic-code", 1, 1)),
    ],
)
def test_rebinding_a_name_does_not_hide_a_use(sources: tuple[str, ...], expected: tuple[str, int, int]) -> None:
    assert [(f.rule, f.cell, f.line) for f in analyze(code(*sources))] == [expected]


def test_clean_notebook_has_no_findings() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Daily revenue\nRuns `SELECT ... FROM` for you; never `import requests`."),
        nbformat.v4.new_code_cell("ds = '2026-11-01'\nlimit = 10", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(RUNTIME),
        nbformat.v4.new_code_cell("%%sql orders\nSELECT * FROM raw.orders WHERE order_date = $ds"),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nimport pandas as pd\nimport matplotlib.pyplot as plt\n\n"
            "daily = orders.groupby('customer_id', as_index=False)['amount'].sum()\n"
            "print(f'{len(daily)} customers on {ds}')\nprint(daily.to_markdown())\ndaily.plot.bar()\nplt.show()"
        ),
        nbformat.v4.new_code_cell("output('mart.daily_revenue', daily.assign(ds=pd.Timestamp(ds)))"),
    ]
    cells = [
        Cell(n, c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", ())))
        for n, c in enumerate(nbformat.reads(nbformat.writes(nb), as_version=4).cells, start=1)
    ]
    assert analyze(cells) == ()


def test_allowed_errors_become_warnings_with_the_reason() -> None:
    findings = analyze(code("import requests", "exec(x)", "plt.savefig('a.png')"))
    allowed = apply_allowances(findings, {"network-access": "vendor API, approved in TICKET-1", "file-write": "archive"})
    network, dynamic, savefig = allowed
    assert network.severity == "warning" and network.message.endswith("(allowed: vendor API, approved in TICKET-1)")
    assert dynamic == findings[1]  # other rules are untouched
    assert savefig.severity == "warning" and savefig.message.endswith("(allowed: archive)")
    assert apply_allowances(findings, {}) == findings


@pytest.mark.parametrize("reason", ["", "   "])
def test_allowance_needs_a_written_reason(reason: str) -> None:
    with pytest.raises(ValueError, match="network-access"):
        apply_allowances([Finding("network-access", "error", "m", 1, 1)], {"network-access": reason})


def test_rules_are_named_and_selectable() -> None:
    assert [rule.id for rule in RULES] == [
        "network-access", "shell-process", "direct-data-access", "file-write", "dynamic-code", "sql-in-python",
        "syntax-error",
    ]
    assert all(isinstance(rule, Rule) and rule.description for rule in RULES)
    cells = code("import requests\nexec(x)")
    assert [f.rule for f in analyze(cells, [r for r in RULES if r.id == "dynamic-code"])] == ["dynamic-code"]


def test_cells_with_list_tags_and_odd_sources_do_not_crash() -> None:
    cells = [Cell(1, "code", "import socket", ["parameters"]), Cell(2, "code", ""), Cell(3, "code", "x = 1\0\n")]  # type: ignore[arg-type]
    assert [(f.rule, f.cell) for f in analyze(cells)] == [("network-access", 1), ("syntax-error", 3)]


def test_lines_map_back_after_escapes_joined_from_continuation_lines() -> None:
    cells = code("x = 1\n!ls \\\n  -l\ny = 2\n!pwd\nimport socket")
    assert [(f.rule, f.line) for f in analyze(cells)] == [("shell-process", 2), ("shell-process", 5), ("network-access", 6)]
