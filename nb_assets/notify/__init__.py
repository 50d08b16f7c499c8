"""Telling owners a notebook failed, or went stale and recovered: the channels (SMTP, webhook), the
notices' text, and the ledger that sends each notice once. Imports nothing of nb_assets but errors.
"""
