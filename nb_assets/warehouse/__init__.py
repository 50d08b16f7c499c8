"""The warehouse: the protocol and shared helpers (base, files, landing, writer), two independent
backends (duckdb/, postgres/) and the one chooser that turns a location into a backend (backends).
Only this package imports a database driver.
"""
