"""Data-purpose policy zones: the zones and how they propagate (zones), the policy file (loader). Pure.
"""
