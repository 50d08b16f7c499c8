"""Code that runs inside the sandbox, next to the notebook.

Every module here imports the standard library only and nothing else of
nb_assets: the sandbox gets copies of these files, not the package.
"""
