"""The demo project: four notebooks over an embedded DuckDB warehouse.

`make dev` seeds warehouse.duckdb and opens this in `dagster dev`, sensors running:
clean_orders and customer_revenue wait for their inputs to land, daily_traffic
runs on cron, revenue_report waits each Monday for its inputs to be updated.
Wiring only: everything else lives in the notebooks and policy.yaml. The
environment overrides what a deployment (or a test) would: the warehouse,
the sandbox, and how often the sensors look.
"""

import os
from pathlib import Path

from nb_assets import FileDrop, NotebookAsset, notebook_definitions

BASE_DIR = Path(__file__).parent
POLICY = BASE_DIR / "policy.yaml"
WAREHOUSE = os.environ.get("NB_ASSETS_WAREHOUSE", str(BASE_DIR / "warehouse.duckdb"))
SANDBOX = os.environ.get("NB_ASSETS_SANDBOX", "auto")
SENSOR_INTERVAL_S = int(os.environ.get("NB_ASSETS_SENSOR_INTERVAL_S", "15"))

NOTEBOOKS = [
    NotebookAsset(
        "notebooks/clean_orders.ipynb",
        owners=["data-eng@example.com"],
        group="orders",
        purpose="finance_reporting",
        on_inputs_landed=True,
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
]

# Drop a Parquet file of new orders here: it is loaded once, and raw.orders lands.
FILE_DROPS = [FileDrop("raw.orders", folder="landing/orders", pattern="*.parquet")]

defs = notebook_definitions(
    NOTEBOOKS, warehouse=WAREHOUSE, base_dir=BASE_DIR, policy=POLICY, sandbox=SANDBOX,
    file_drops=FILE_DROPS, sensor_interval_s=SENSOR_INTERVAL_S,
)
