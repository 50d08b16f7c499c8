"""`nb-assets adopt`: the edits that make a plain notebook (one written for jupysql, or reading files) schedulable.

Pure: no Dagster, no drivers, no Docker; it reads and writes the notebook file only.
"""
