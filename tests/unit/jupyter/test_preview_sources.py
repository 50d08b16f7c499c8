"""The Schedule form's Preview draws the declared sources a notebook reads (`%%source` cells
and `source('name')` in SQL) as upstream nodes with their zones, beside its tables.

The preview comes from the Preview button's own command (schedule_runner.run_step, which
runs `nb-assets schedule --until preview --preview-json`) on a small project with a
policy and two declared sources; the drawing is then made from it as the form makes it.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from nb_assets.jupyter.preview_svg import preview_svg
from nb_assets.jupyter.schedule_runner import FormFields, run_step
from support.notebook_factory import RUNTIME, code, params, write_notebook

POLICY = """\
zones:
  public:  {mode: enforce}
  finance: {mode: enforce}
purposes:
  reporting: [finance, public]
tables:
  raw.orders: [finance]
"""

DEFINITIONS = """\
from pathlib import Path

from nb_assets import Source, load_declarations_yaml, notebook_definitions

BASE_DIR = Path(__file__).parent
SOURCES = [
    Source("partner_rates", path="sources/rates.json", format="json", zones=["public"]),
    Source("sales_regions", path="sources/regions/", format="csv", zones=["public"]),
]
defs = notebook_definitions([*load_declarations_yaml(BASE_DIR / "declarations.yaml")], warehouse=BASE_DIR / "warehouse.duckdb", base_dir=BASE_DIR,
                            policy=BASE_DIR / "policy.yaml", sandbox="local", sources=SOURCES)
"""


def _project(root: Path) -> Path:
    (root / "sources" / "regions").mkdir(parents=True)
    (root / "sources" / "rates.json").write_text('[{"currency": "USD", "per_eur": 1.1}]')
    (root / "sources" / "regions" / "regions.csv").write_text("currency,region\nUSD,AMER\n")
    (root / "policy.yaml").write_text(POLICY)
    (root / "definitions.py").write_text(DEFINITIONS)
    (root / "declarations.yaml").write_text("notebooks: []\n")
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.orders AS SELECT 'USD' AS currency, 2.5 AS amount")
    return write_notebook(
        root / "eur_orders.ipynb", code(RUNTIME), params('ds = "2026-11-25"'),
        code("%%source rates partner_rates"),
        code("%%sql orders\nSELECT o.currency, o.amount, r.region FROM raw.orders o "
             "JOIN source('sales_regions') r USING (currency)"),
        code("output('mart.eur_orders', orders.merge(rates, on='currency'))"),
    )


def _node(svg: str, kind: str, name: str) -> str:
    """The <g> of the node named `name` (its first line of text), or ''."""
    return next((g for g in re.findall(rf'<g class="nb-preview-{kind}">.*?</g>', svg) if f">{name}</text>" in g), "")


def test_the_preview_draws_the_sources_a_notebook_reads_with_their_zones(tmp_path: Path) -> None:
    notebook = _project(tmp_path)
    fields = FormFields(owners=["a@example.com"], cron="0 6 * * *", purpose="reporting")
    result = run_step(notebook, tmp_path, "preview", fields)
    assert result.ok, result.error
    assert result.preview is not None
    svg = preview_svg(result.preview)

    for name in ("partner_rates", "sales_regions"):  # `%%source`, then `source('...')` in SQL
        node = _node(svg, "source", name)
        assert node, svg
        assert "declared source · public" in node
        assert _node(svg, "table", f"source.{name}") == ""  # drawn as a source, not as a table
    table = _node(svg, "table", "raw.orders")  # tables as before, with their zones
    assert table and "finance" in table
    assert _node(svg, "table", "mart.eur_orders")
    assert svg.count('marker-end="url(#nb-arrow)"') == 4  # three upstream nodes feed it, it writes one table
