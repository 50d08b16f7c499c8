"""Telling owners a notebook failed: the channels (SMTP, webhook), the notice's text, and the ledger
that sends each notice once. Imports nothing of nb_assets but errors.
"""
