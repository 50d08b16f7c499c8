"""The Dagster side of nb_assets: the only package that imports Dagster.

Everything else (the parser, the warehouse, the sandbox, the CLI, the Jupyter
magics) works without it; a module here loads Dagster only once a project is
actually built or loaded.
"""
