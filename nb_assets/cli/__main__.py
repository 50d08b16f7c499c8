"""`python -m nb_assets.cli ...` is `nb-assets ...`."""

from nb_assets.cli.main import entry

entry()
