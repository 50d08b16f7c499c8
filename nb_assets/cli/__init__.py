"""The `nb-assets` command: one module per command family, the argument parser in main.py.

Re-exports `main` and `entry`: console-script wrappers made before the layout
(`from nb_assets.cli import entry`) and callers of `nb_assets.cli.main(...)` keep working.
No command here imports Dagster (the load check runs it in a child process).
"""

from nb_assets.cli.main import entry, main

__all__ = ["entry", "main"]
