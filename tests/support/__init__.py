"""Helpers shared by the test tiers (tests/ is on pytest's `pythonpath`; imported as `support.x`)."""
