"""Where opaque notebook code runs: the run folder and limits (base), the local sandbox, the Docker
container and its warm spares, the chooser, and the offline image recipe (sandbox_image/).
Nothing here knows of Dagster or the warehouse.
"""
