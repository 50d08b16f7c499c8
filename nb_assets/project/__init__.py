"""A project as declared, read without Dagster: declarations (Python and YAML), the definitions.py
capture, instances, partitions, lineage, the declaration checks, and the load check's parent side.
"""
