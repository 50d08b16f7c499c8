"""SQL analysis: lineage of an input query, its columns and parameters, escape hatches, syntax hints,
seeing through views and macros, table-name suggestions. Pure (sqlglot only).
"""
