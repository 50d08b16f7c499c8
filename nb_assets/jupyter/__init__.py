"""What a person in Jupyter uses on the host: the interactive `%%sql` and the `%nb_context`
pane. Loaded by nb_assets.notebook's magics only outside the sandbox; never loads Dagster.
"""
