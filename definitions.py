"""The demo project: seven notebooks over an embedded DuckDB warehouse and two declared sources.

`make dev` seeds warehouse.duckdb and opens this in `dg dev` (dg.toml), sensors running:
clean_orders and customer_revenue wait for their inputs to land, daily_traffic
runs on cron, revenue_report waits each Monday for its inputs to be updated,
regional_revenue runs daily as two instances (emea, apac), and daily_orders is
partitioned by day (its cron runs the latest day; backfills run older ones).
fx_revenue reads two declared sources (the partner's rates API, a folder of CSV
files), which the host fetches before its runs.
Wiring only: everything else lives in the notebooks and policy.yaml. The
environment overrides what a deployment (or a test) would: the warehouse,
the sandbox, and how often the sensors look.

Failed runs are mailed to their owners through an SMTP server on
localhost:8025 (see one with `python -m aiosmtpd -n -l localhost:8025`), and
posted to the data-eng team's webhook when NB_ASSETS_DATA_ENG_WEBHOOK names one.
daily_traffic must be fresh by 07:00 each day: if it is not, its owners are told
once what it is waiting for, and once when it is fresh again (`nb-assets status`).
"""

import os
from pathlib import Path

from nb_assets import (
    DailyPartitions,
    FileDrop,
    NotebookAsset,
    Notifications,
    SmtpChannel,
    Source,
    WebhookChannel,
    load_declarations_yaml,
    load_sources_yaml,
    notebook_definitions,
    not_null,
    row_count,
    unique,
)

BASE_DIR = Path(__file__).parent
POLICY = BASE_DIR / "policy.yaml"
WAREHOUSE = os.environ.get("NB_ASSETS_WAREHOUSE", str(BASE_DIR / "warehouse.duckdb"))
SANDBOX = os.environ.get("NB_ASSETS_SANDBOX", "auto")
SENSOR_INTERVAL_S = int(os.environ.get("NB_ASSETS_SENSOR_INTERVAL_S", "15"))

NOTEBOOKS = [
    NotebookAsset(
        "notebooks/clean_orders.ipynb",
        owners=["data-eng@example.com", "team:data-eng"],
        group="orders",
        purpose="finance_reporting",
        on_inputs_landed=True,
        # Write, audit, publish (docs/checks.md): a duplicated order id would publish nothing.
        checks={"mart.orders_clean": [unique("order_id"), not_null("order_id"), row_count(min=1)]},
    ),
    NotebookAsset(
        "notebooks/customer_revenue.ipynb",
        owners=["analytics@example.com"],
        group="customers",
        purpose="customer_analytics",
        params={"min_orders": 1},
        on_inputs_landed=True,  # mart.orders_clean and raw.customers, never only one
    ),
    NotebookAsset(
        "notebooks/daily_traffic.ipynb",
        owners=["product@example.com"],
        group="web",
        purpose="product_analytics",
        params={"ds": "2026-11-20", "days": 7},
        cron="0 6 * * *",
        timezone="Europe/Amsterdam",
        freshness="by 07:00 Europe/Amsterdam",  # the 06:00 run's output by 07:00, or its owners hear why not
    ),
    NotebookAsset(
        "notebooks/revenue_report.ipynb",
        owners=["finance@example.com"],
        group="reports",
        key_prefix=["reports"],
        purpose="customer_analytics",
        cron="0 5 * * 1",
        timezone="Europe/Amsterdam",
        on_inputs_landed=True,  # each Monday 05:00, then as soon as both marts are updated
    ),
    NotebookAsset(
        "notebooks/regional_revenue.ipynb",
        owners=["finance@example.com"],
        purpose="finance_reporting",
        # One asset group per region, each writing mart.regional_revenue_<instance>.
        instances={
            "emea": {"region": "EMEA", "currencies": ["EUR", "GBP"]},
            "apac": {"region": "APAC", "currencies": ["AUD", "JPY"]},
        },
        cron="0 7 * * *",
        timezone="Europe/Amsterdam",
    ),
    NotebookAsset(
        "notebooks/daily_orders.ipynb",
        owners=["data-eng@example.com"],
        group="orders",
        purpose="finance_reporting",
        # One partition per day; backfill with `nb-assets backfill` or from the asset's page.
        partitions=DailyPartitions(start="2026-10-01", column="ds"),
        cron="30 6 * * *",  # each morning, the latest whole day
        timezone="Europe/Amsterdam",
    ),
    # Notebooks scheduled with `nb-assets schedule ... --write` are declared here:
    *load_declarations_yaml(BASE_DIR / "declarations.yaml"),
]

# Declared sources: fetched by the host before each run that reads them, drawn in the graph
# (group `sources`) with their zones. `make dev` serves the partner's rates API on loopback
# (scripts/serve_demo_sources.py); without it the same JSON is read from a file.
RATES_URL = os.environ.get("NB_ASSETS_DEMO_RATES_URL")
SOURCES = [
    Source("partner_rates", url=f"{RATES_URL}?date=$ds", format="json", zones=["public"], allow_private=True)
    if RATES_URL else Source("partner_rates", path="sources/partner_rates.json", format="json", zones=["public"]),
    Source("sales_regions", path="sources/sales_regions/", format="csv", zones=["public"]),
    # Sources listed under `sources:` in declarations.yaml (docs/sources.md) are declared too:
    *load_sources_yaml(BASE_DIR / "declarations.yaml"),
]

# Notebooks that read declared sources (a project passing them must pass `sources=` too).
NOTEBOOKS_WITH_SOURCES = [
    NotebookAsset(
        "notebooks/fx_revenue.ipynb",
        owners=["finance@example.com"],
        group="reports",
        purpose="finance_reporting",  # its sources are public, mart.orders_clean is finance
    ),
]

# Drop a Parquet file of new orders here: it is loaded once, and raw.orders lands.
FILE_DROPS = [FileDrop("raw.orders", folder="landing/orders", pattern="*.parquet")]

# Addresses, not secrets: credentials and secret URLs are named by environment variable.
NOTIFICATIONS = Notifications(
    email=SmtpChannel(
        os.environ.get("NB_ASSETS_SMTP_HOST", "localhost"),
        int(os.environ.get("NB_ASSETS_SMTP_PORT", "8025")),
        security="plain",
        sender="nb-assets@example.com",
    ),
    webhooks={"data-eng": WebhookChannel(url_env="NB_ASSETS_DATA_ENG_WEBHOOK")},
    ui_base_url=os.environ.get("NB_ASSETS_UI_URL", "http://localhost:3000"),
)

defs = notebook_definitions(
    [*NOTEBOOKS, *NOTEBOOKS_WITH_SOURCES], warehouse=WAREHOUSE, base_dir=BASE_DIR, policy=POLICY, sandbox=SANDBOX,
    file_drops=FILE_DROPS, sensor_interval_s=SENSOR_INTERVAL_S, notifications=NOTIFICATIONS,
    sources=SOURCES,
)
