"""The embedded DuckDB warehouse: prefetch and load, catalog, partitions, the landing log and file loads.
"""
