""""no such table raw.web_event (did you mean raw.web_events?)": one wording for a misspelled table.

The run's prefetch, the policy gate and `nb-assets check` all say it the same
way once the warehouse's tables are known, before any policy talk. Pure: the
caller passes the names the warehouse has (a Catalog's `relations`).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from nb_assets.sql.source_calls import SOURCE_SCHEMA


def no_such_table(table: str, known: Collection[str]) -> str:
    """`no such table <table>`, with the closest existing name when one is close."""
    close = difflib.get_close_matches(table.lower(), sorted(known), n=1, cutoff=0.6)
    if not close:  # a wrong schema: the same table name in another schema
        bare = table.lower().rpartition(".")[2]
        close = sorted(k for k in known if k.rpartition(".")[2] == bare)[:1]
    return f"no such table {table}" + (f" (did you mean {close[0]}?)" if close else "")


def missing(tables: Iterable[str], known: Collection[str]) -> list[str]:
    """The tables among `tables` that `known` lacks, each once, in order."""
    lowered = {k.lower() for k in known}
    # A declared source ("source.<name>") is fetched by the host, not looked up in the warehouse.
    return [t for t in dict.fromkeys(tables) if "." in t and t.lower() not in lowered and not t.startswith(f"{SOURCE_SCHEMA}.")]
