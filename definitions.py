"""The demo project: four notebooks over an embedded DuckDB warehouse.

`make dev` seeds warehouse.duckdb and opens this in `dagster dev`.
Wiring only: everything else lives in the notebooks and policy.yaml.

Failed runs are mailed to their owners through an SMTP server on
localhost:8025 (see one with `python -m aiosmtpd -n -l localhost:8025`), and
posted to the data-eng team's webhook when NB_ASSETS_DATA_ENG_WEBHOOK names one.
"""

import os
from pathlib import Path

from nb_assets import NotebookAsset, Notifications, SmtpChannel, WebhookChannel, load_declarations_yaml, notebook_definitions

BASE_DIR = Path(__file__).parent
POLICY = BASE_DIR / "policy.yaml"
WAREHOUSE = os.environ.get("NB_ASSETS_WAREHOUSE", str(BASE_DIR / "warehouse.duckdb"))

NOTEBOOKS = [
    NotebookAsset(
        "notebooks/clean_orders.ipynb",
        owners=["data-eng@example.com", "team:data-eng"],
        group="orders",
        purpose="finance_reporting",
        cron="0 5 * * *",
    ),
    NotebookAsset(
        "notebooks/customer_revenue.ipynb",
        owners=["analytics@example.com"],
        group="customers",
        purpose="customer_analytics",
        params={"min_orders": 1},
    ),
    NotebookAsset(
        "notebooks/daily_traffic.ipynb",
        owners=["product@example.com"],
        group="web",
        purpose="product_analytics",
        params={"ds": "2026-11-20", "days": 7},
        cron="0 6 * * *",
    ),
    NotebookAsset(
        "notebooks/revenue_report.ipynb",
        owners=["finance@example.com"],
        group="reports",
        key_prefix=["reports"],
        purpose="customer_analytics",
        cron="0 7 * * 1",
    ),
    # Notebooks scheduled with `nb-assets schedule ... --write` are declared here:
    *load_declarations_yaml(BASE_DIR / "declarations.yaml"),
]

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

defs = notebook_definitions(NOTEBOOKS, warehouse=WAREHOUSE, base_dir=BASE_DIR, policy=POLICY, notifications=NOTIFICATIONS)
