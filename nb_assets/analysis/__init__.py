"""The notebook contract read statically: cells parsed into a NotebookSpec (parser), the
static checks and their rules, parameters, and many notebooks at once. Pure: no driver, Dagster or Docker.
"""
