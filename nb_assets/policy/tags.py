"""Zones and purposes as Dagster asset tags, and the names that can be one."""

from __future__ import annotations

import re
from collections.abc import Iterable

from nb_assets.errors import PolicyError

ZONE_TAG_PREFIX = "zone/"
PURPOSE_TAG = "purpose"

# Zone names become Dagster tag keys ("zone/<name>") and purposes tag values;
# dagster/_utils/tags.py allows [A-Za-z0-9_.-]{1,63} per key section and
# [A-Za-z0-9_.-]{0,63} for strict values, so names are held to that at load.
TAG_PART = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


def zone_tags(labels: Iterable[str], purpose: str | None) -> dict[str, str]:
    """Dagster asset tags for a table's zones and its notebook's purpose: {"zone/pii": "", "purpose": "marketing"}."""
    tags: dict[str, str] = {}
    for zone in sorted(set(labels)):
        if not TAG_PART.match(zone):
            raise PolicyError(f"zone '{zone}' cannot be a Dagster tag key; use 1-63 of [A-Za-z0-9_.-]")
        tags[ZONE_TAG_PREFIX + zone] = ""
    if purpose is not None:
        if not TAG_PART.match(purpose):
            raise PolicyError(f"purpose '{purpose}' cannot be a Dagster tag value; use 1-63 of [A-Za-z0-9_.-]")
        tags[PURPOSE_TAG] = purpose
    return tags
