"""Declared sources beyond the warehouse (files, object stores, HTTP APIs, other databases):
the host fetches their bytes before a run, from a location it knows statically.

The seam for the fetchers: each implements `SourceFetcher` (base.py). This package sits
beside `warehouse` and `sandbox` in the layers and imports neither.
"""
