"""Code that runs inside the sandbox, next to the notebook: the runner (papermill), the Docker
supervisor, and the contract the host and the notebook runtime share.

Nothing here imports anything else of nb_assets: the sandbox gets copies of these
files, not the package (the runner and supervisor under their in-box names).
"""
