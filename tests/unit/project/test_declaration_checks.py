"""The Dagster-free declaration rules give Dagster's own verdict on the same inputs.

`nb-assets schedule` checks a declaration without importing Dagster; if one of
these rules were laxer than Dagster's, a declaration it accepted would take the
project's load down. Each test feeds the same inputs to Dagster's public API
and to our rule.
"""

from __future__ import annotations

import random
import subprocess
import sys
import warnings

import dagster as dg
import pytest

from nb_assets.project.cron_syntax import is_cron
from nb_assets.project.declaration_checks import is_group, is_name, is_owner, tag_problem

OWNERS = [
    "a@example.com", "A.B+c%d-e_f@sub.example.co.uk", "a@example", "a@example.c", "a@example.abcdefgh", "a@b.cd",
    "bob", "", "@example.com", "a@", "a@@example.com", "a b@example.com", "a@example.com ", " a@example.com",
    "team:", "team:x", "team:data-eng", "team: spaced", "Team:x", "team", "#data-eng", "a@example.com,b@example.com",
    "ä@example.com", "a@exämple.com", "a@example.c|m", "a@-example.com", "x.@example.com", "a@example..com",
]
GROUPS = ["orders", "Orders_2", "a/b", "a/b/c", "a//b", "/a", "a/", "my group", "a-b", "a.b", "ä", "_", "default"]
NAMES = ["clean_orders", "nb_2024", "output", "config", "context", "input", "type", "class", "lambda", "str", "dict",
         "meta", "arg_dict", "a-b", "a b", "Ä", "_x", "True", "none", "None"]
TAGS = [("team", "data"), ("team", ""), ("a/b", "x"), ("a/b/c", "x"), ("dagster/kind/duckdb", ""), ("k" * 63, "v"),
        ("k" * 64, "v"), ("key", "v" * 63), ("key", "v" * 64), ("key", "with space"), ("with space", "v"), ("", "v"),
        ("key", "a:b"), ("ns.x-y_z/key", "v.1-2_3")]
CRONS = [
    "0 6 * * *", "*/15 * * * *", "0 6 * * mon-fri", "0 6 1,15 * *", "0 0 l * *", "0 0 * * 2#3", "0 0 * * l5",
    "0 0 ? * mon", "@daily", "@DAILY", "@hourly", "@weekly", "@monthly", "@yearly", "@annually", "@midnight", "@reboot",
    "0 6 * *", "0 6 * * * *", "0 6 * * * * *", "61 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 0 *", "0 0 * 13 *",
    "0 0 * * 7", "0 0 * * 8", "0 0 30 2 *", "0 0 31 feb *", "0 0 30,31 2 *", "0 0 29 2 *", "0 0 * * fri-mon",
    "0 0 * nov-feb *", "0 0 * * 2#3,1", "0 0 * * 2#6", "*/0 * * * *", "0 ? * * *", "0 0 ?,1 * *", "h * * * *",
    "0 0 * * mon#2,tue#2", "1-5/2 * * * *", "5-1 * * * *", "-1 * * * *", "x * * * *", "", " ", " @daily", "0 6 * * *\n",
]


def _dagster_accepts(build: object) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build()  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - Dagster's refusals come in several types; any refusal is a "no"
        return False
    return True


@pytest.mark.parametrize("owner", OWNERS)
def test_owner_forms_are_dagsters(owner: str) -> None:
    assert is_owner(owner) == _dagster_accepts(lambda: dg.AssetSpec("x", owners=[owner])), owner


@pytest.mark.parametrize("group", GROUPS)
def test_group_names_are_dagsters(group: str) -> None:
    assert is_group(group) == _dagster_accepts(lambda: dg.AssetSpec("x", group_name=group)), group


@pytest.mark.parametrize("name", NAMES)
def test_asset_names_are_dagsters(name: str) -> None:
    def build() -> None:
        @dg.multi_asset(name=name, specs=[dg.AssetSpec("x")])
        def _asset() -> None: ...

    assert is_name(name) == _dagster_accepts(build), name


@pytest.mark.parametrize(("key", "value"), TAGS)
def test_tags_are_dagsters(key: str, value: str) -> None:
    assert (tag_problem(key, value) is None) == _dagster_accepts(lambda: dg.AssetSpec("x", tags={key: value})), (key, value)


@pytest.mark.parametrize("cron", CRONS)
def test_cron_schedules_are_dagsters(cron: str) -> None:
    assert is_cron(cron) == _dagster_accepts(lambda: dg.AutomationCondition.cron_tick_passed(cron)), repr(cron)


def test_cron_schedules_drawn_at_random_are_judged_as_dagster_judges_them() -> None:
    """Thousands of expressions from cron's parts, valid and not; `R` (random) fields are left
    out: Dagster draws them anew at each load, and cron_syntax refuses them on purpose."""
    parts = ["*", "?", "0", "1", "5", "7", "12", "23", "30", "31", "59", "60", "l", "L", "2#3", "l5", "mon", "fri", "sun",
             "jan", "feb", "dec", "*/5", "*/0", "10/5", "1-5", "5-1", "mon-fri", "fri-mon", "nov-feb", "1-5/2", "0-7",
             "jan-jan", "mon-mon/2", "-1", "1,2", "h", "x", "3#6", "mon#2", "1-3#2", "feb#1", "l-5", "5-l", "1/0", "30-5/7"]
    draw = random.Random(19)
    crons = [" ".join(draw.choice(parts) if draw.random() < 0.35 else draw.choice(["*", "0", "1"])
                      for _ in range(draw.choice([4, 5, 5, 5, 5, 6]))) for _ in range(10000)]
    disagree = [(c, is_cron(c)) for c in crons if is_cron(c) != _dagster_accepts(lambda c=c: dg.AutomationCondition.cron_tick_passed(c))]
    assert sum(map(is_cron, crons)) > 1000  # the draw reaches valid schedules, not only refusals
    assert disagree == [], disagree[:10]


def test_random_cron_fields_are_refused_although_dagster_takes_them() -> None:
    assert _dagster_accepts(lambda: dg.AutomationCondition.cron_tick_passed("r * * * *"))
    assert not is_cron("r * * * *")


def test_scheduling_code_imports_no_dagster() -> None:
    """The CLI must check a declaration without Dagster (it loads only in load_check's child)."""
    modules = ("nb_assets.cli.main", "nb_assets.cli.schedule", "nb_assets.cli.schedule_workflow", "nb_assets.project.declare",
               "nb_assets.project.declaration_checks", "nb_assets.project.cron_syntax", "nb_assets.project.load_check", "nb_assets.project.partitions",
               "nb_assets.project.declarations_yaml", "nb_assets.project.instances")
    probe = f"import sys, {', '.join(modules)}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
