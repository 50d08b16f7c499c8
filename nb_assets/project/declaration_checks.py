"""What Dagster and the project refuse in one declaration, checked without Dagster.

Loading the definitions (declared_notebooks.declare_notebooks) and
`nb-assets schedule` call these same functions, so a declaration the CLI
accepts is one the load accepts. Where the rule is Dagster's, it is Dagster's
own, read from dagster/_core/definitions/utils.py (owners, names, groups),
dagster/_utils/tags.py (tags) and project/cron_syntax.py (cron);
tests/unit/project/test_declaration_checks.py gives Dagster and these functions the same
inputs and expects the same verdict.
"""

from __future__ import annotations

import keyword
import re
import zoneinfo
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from nb_assets.project.cron_syntax import is_cron
from nb_assets.project.declaration import NotebookAsset
from nb_assets.project.freshness import freshness_problems
from nb_assets.errors import PolicyError
from nb_assets.notify.channels import TEAM_PREFIX
from nb_assets.project.partitions import partition_problems
from nb_assets.policy.zones import zone_tags
from nb_assets.spec import NotebookSpec

# Dagster's is_valid_email, matched with fullmatch as Dagster does.
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_GROUP = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
_TAG_KEY = re.compile(r"^([A-Za-z0-9_.-]{1,63}/|dagster/kind/)?[A-Za-z0-9_.-]{1,63}$")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,63}$")
# Dagster's DISALLOWED_NAMES: a notebook called output.ipynb cannot be an asset named `output`.
RESERVED_NAMES = frozenset({
    "context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict", "output_arg_dict",
    "int", "str", "float", "bool", "input", "output", "type", *keyword.kwlist,
})


def is_owner(owner: object) -> bool:
    """Dagster's owner rule: an e-mail address, or `team:` and a name."""
    if not isinstance(owner, str):
        return False
    return bool(_EMAIL.fullmatch(owner)) or (owner.startswith(TEAM_PREFIX) and len(owner) > len(TEAM_PREFIX))


def is_name(name: str) -> bool:
    """A Dagster name (an asset's, a multi-asset's): letters, digits, _, and not a reserved word."""
    return bool(_NAME.match(name)) and name not in RESERVED_NAMES


def is_group(group: object) -> bool:
    """A Dagster asset group: one or more names separated by `/`."""
    return isinstance(group, str) and bool(_GROUP.match(group))


def tag_problem(key: object, value: object) -> str | None:
    """Why Dagster refuses the asset tag key=value, or None."""
    if not isinstance(key, str) or not _TAG_KEY.match(key):
        return f"tag key {key!r} is not a Dagster tag key (1-63 of A-Z a-z 0-9 _ . -, optionally 'namespace/' first)"
    if not isinstance(value, str) or not _TAG_VALUE.match(value):
        return f"tag {key}={value!r}: a value is a string of at most 63 of A-Z a-z 0-9 _ . -"
    return None


def owner_problems(decl: NotebookAsset, where: str) -> list[str]:
    """Owners Dagster refuses: anything but an e-mail address or `team:<name>`."""
    if isinstance(decl.owners, str):
        return [f"{where}: owners={decl.owners!r} must be a list, e.g. [{decl.owners!r}]"]
    return [
        f"{where}: owner {owner!r} is neither an e-mail address nor team:<name> (Dagster accepts no other owner)"
        for owner in decl.owners if not is_owner(owner)
    ]


def unreachable_owners(where: str, owners: Sequence[str], notifications: Any) -> list[str]:
    """Owners no channel of `notifications` (a notify.Notifications) reaches: their failures would go unheard."""
    configured = ", ".join(sorted(notifications.webhooks)) or "none"
    problems = []
    for owner in owners:
        if not is_owner(owner) or notifications.channel_for(owner) is not None:
            continue  # a malformed owner is owner_problems' to report
        if owner.startswith(TEAM_PREFIX):
            how = f"team:<name> needs webhooks={{'<name>': WebhookChannel(...)}} in Notifications; configured webhooks: {configured}"
        else:
            how = "e-mail addresses need Notifications(email=SmtpChannel(...)), and there is none"
        problems.append(f"{where}: {owner}: no notification channel reaches this owner ({how})")
    return problems


def silent_owners(owners: Sequence[str], notifications: Any) -> list[str]:
    """Warnings for owners whose channel is configured but off in this process, as the
    failure sensor judges it (the channel's own off_reason). Not problems: the load
    accepts them, and the variable may well be set where Dagster runs."""
    if notifications is None:
        return []
    warnings = []
    for owner in owners:
        channel = notifications.channel_for(owner) if is_owner(owner) else None
        off = channel.off_reason() if channel is not None else None
        if off:
            warnings.append(f"owner {owner}: its channel is off here ({off}): failure notices will not reach it until that is set")
    return warnings


def asset_problems(decl: NotebookAsset, name: str, where: str) -> list[str]:
    """The asset attributes Dagster validates: the notebook's name, group, key prefix and tags."""
    problems = []
    if not is_name(name):
        problems.append(f"{where}: {name!r} cannot name a Dagster asset (a reserved word, or not letters, digits and _); rename the file")
    if decl.group is not None and not is_group(decl.group):
        problems.append(f"{where}: group={decl.group!r} is not a Dagster group name (letters, digits and _, '/' between parts)")
    if isinstance(decl.key_prefix, str) or not all(isinstance(p, str) for p in decl.key_prefix):
        problems.append(f"{where}: key_prefix={decl.key_prefix!r} must be a list of strings")
    tags: Mapping[Any, Any] = decl.tags if isinstance(decl.tags, Mapping) else {}
    if not isinstance(decl.tags, Mapping):
        problems.append(f"{where}: tags={decl.tags!r} must be a mapping of key to value")
    problems += [f"{where}: {p}" for k, v in tags.items() if (p := tag_problem(k, v))]
    try:
        zone_tags((), decl.purpose)  # the purpose becomes a tag value
    except PolicyError as exc:
        problems.append(f"{where}: {exc}")
    return problems


def trigger_problems(decl: NotebookAsset, where: str, inputs: Collection[str]) -> list[str]:
    """What is wrong with a declaration's trigger (cron, timezone, on_inputs_landed)."""
    problems: list[str] = []
    if decl.timezone is not None:
        if not decl.cron:
            problems.append(f"{where}: timezone={decl.timezone!r} needs cron=; it says how to read the cron schedule")
        try:
            zoneinfo.ZoneInfo(decl.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            problems.append(f"{where}: timezone={decl.timezone!r} is not an IANA time zone (e.g. 'Europe/Amsterdam')")
    if decl.cron and not is_cron(decl.cron):
        problems.append(f"{where}: cron={decl.cron!r} is not a cron schedule (five fields, e.g. '0 6 * * *': daily at 06:00)")
    if decl.on_inputs_landed and not inputs:
        problems.append(f"{where}: on_inputs_landed=True, but the notebook has no SQL inputs to wait for")
    return problems


def declaration_problems(decl: NotebookAsset, spec: NotebookSpec, where: str, notifications: Any = None) -> list[str]:
    """Everything in one parsed declaration that loading the project would refuse; with
    `notifications` (the project's), also the owners no channel reaches."""
    problems = [
        *owner_problems(decl, where),
        *asset_problems(decl, spec.name, where),
        *trigger_problems(decl, where, spec.input_tables),
        *partition_problems(decl, spec, where),
        *freshness_problems(decl.freshness, where),
    ]
    if notifications is not None and not isinstance(decl.owners, str):
        problems += unreachable_owners(where, list(decl.owners), notifications)
    return problems
