"""The Postgres warehouse: prefetch and load (COPY through ADBC), catalog, the landing log and file
loads, and the driver's helpers.
"""
