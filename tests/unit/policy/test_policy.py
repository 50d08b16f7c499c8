"""Policy zones: loading (errors with file:line), propagation, the gate, tags."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from nb_assets.errors import PolicyError
from nb_assets.policy.zones import (
    NotebookFlow,
    Policy,
    check_notebook,
    propagate,
    zone_tags,
)
from nb_assets.policy.loader import load_policy

POLICY = """\
zones:
  public:  {mode: enforce, description: Safe to share}
  pii:     {mode: enforce, description: Personal data}
  finance: {mode: log}
purposes:
  analytics: [public, finance]
  marketing: [public, pii]
  reporting: [public, pii, finance]
tables:
  raw.customers: [pii]
  raw.orders: [finance]
  raw.web_events: [public]
default_labels: [public]
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def policy(tmp_path: Path, text: str = POLICY) -> Policy:
    return load_policy(write(tmp_path, text))


def flow(name, purpose, inputs, outputs=(), reclassify=None) -> NotebookFlow:
    return NotebookFlow(name, purpose, tuple(inputs), tuple(outputs), reclassify or {})


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(PolicyError) as info:
        policy(tmp_path, text)
    return str(info.value)


# --- loading ------------------------------------------------------------------


def test_load_reads_zones_purposes_and_tables(tmp_path):
    p = policy(tmp_path)
    assert p.zones["finance"].mode == "log"
    assert p.zones["pii"].description == "Personal data"
    assert p.purposes["marketing"] == {"public", "pii"}
    assert p.tables["raw.customers"] == {"pii"}
    assert p.source_labels("raw.unlisted") == {"public"}
    assert p.where("raw.orders").endswith("policy.yaml:11")


def test_malformed_yaml_names_file_and_line(tmp_path):
    msg = error(tmp_path, "zones:\n  pii: {mode: enforce\npurposes: {}\n")
    assert re.search(r"policy\.yaml:3: malformed YAML", msg), msg


@pytest.mark.parametrize(
    ("old", "new", "where", "what"),
    [
        ("marketing: [public, pii]", "marketing: [public, pi]", "policy.yaml:7:", "unknown zone 'pi'"),
        ("raw.orders: [finance]", "raw.orders: [finanse]", "policy.yaml:11:", "finanse"),
        ("finance: {mode: log}", "finance: {mode: warn}", "policy.yaml:4:", "'warn'"),
        ("raw.web_events: [public]", "raw.web_events: []", "policy.yaml:12:", "empty"),
        ("default_labels: [public]\n", "default_labels: [public]\npurpose: [x]\n", "policy.yaml:14:", "unknown key 'purpose'"),
    ],
    ids=["unknown-zone-in-purposes", "unknown-zone-in-tables", "bad-mode", "empty-labels", "unknown-key"],
)
def test_bad_policy_names_file_and_line(tmp_path, old, new, where, what):
    assert old in POLICY
    msg = error(tmp_path, POLICY.replace(old, new))
    assert where in msg and what in msg, msg


def test_unlisted_source_without_default_labels_is_an_error(tmp_path):
    p = policy(tmp_path, POLICY.replace("default_labels: [public]\n", ""))
    with pytest.raises(PolicyError, match="raw.new has no labels"):
        propagate(p, [flow("nb", "analytics", ["raw.new"])])


# --- propagation --------------------------------------------------------------


def test_three_levels_propagate_the_union_of_labels(tmp_path):
    p = policy(tmp_path)
    flows = [  # deliberately out of order: propagation sorts them
        flow("report", "reporting", ["mart.customer_value"]),
        flow("mart", "reporting", ["stg.orders", "stg.customers"], ["mart.customer_value"]),
        flow("stg_orders", "analytics", ["raw.orders", "raw.web_events"], ["stg.orders"]),
        flow("stg_customers", "marketing", ["raw.customers"], ["stg.customers"]),
    ]
    report = propagate(p, flows)
    assert report.labels["stg.orders"] == {"finance", "public"}
    assert report.labels["stg.customers"] == {"pii"}
    assert report.labels["mart.customer_value"] == {"finance", "public", "pii"}
    assert report.violations == ()


def test_reclassification_replaces_labels_and_keeps_the_reason(tmp_path):
    p = policy(tmp_path)
    reason = "counts per country; no row identifies a person"
    flows = [
        flow("agg", "marketing", ["raw.customers"], ["mart.by_country"],
             {"mart.by_country": (("public",), reason)}),
        flow("dash", "analytics", ["mart.by_country"]),
    ]
    report = propagate(p, flows)
    assert report.labels["mart.by_country"] == {"public"}
    assert report.violations == ()
    (rc,) = report.reclassified
    assert (rc.notebook, rc.table, rc.inherited, rc.labels, rc.reason) == (
        "agg", "mart.by_country", {"pii"}, {"public"}, reason)


@pytest.mark.parametrize("reason", ["", "   "])
def test_reclassification_without_reason_is_an_error(tmp_path, reason):
    f = flow("agg", "marketing", ["raw.customers"], ["mart.x"], {"mart.x": (("public",), reason)})
    with pytest.raises(PolicyError, match="agg.*reason"):
        propagate(policy(tmp_path), [f])


def test_reclassifying_a_non_output_is_an_error(tmp_path):
    f = flow("agg", "marketing", ["raw.customers"], ["mart.x"], {"raw.customers": (("public",), "why")})
    with pytest.raises(PolicyError, match="not an output"):
        propagate(policy(tmp_path), [f])


def test_enforce_zone_blocks(tmp_path):
    report = propagate(policy(tmp_path), [flow("campaign", "analytics", ["raw.customers"])])
    (v,) = report.blocking()
    assert (v.notebook, v.purpose, v.table, v.zone, v.mode) == (
        "campaign", "analytics", "raw.customers", "pii", "enforce")
    for word in ("campaign", "analytics", "raw.customers", "pii", "refused", "purposes.analytics"):
        assert word in v.message()


def test_violation_on_a_source_table_offers_only_fixes_that_exist(tmp_path):
    report = propagate(policy(tmp_path), [flow("campaign", "analytics", ["raw.customers"])])
    (v,) = report.blocking()
    message = v.message()
    assert "source table raw.customers" in message
    assert "reclassify raw.customers" not in message and '"raw.customers": Reclassify' not in message
    assert "a purpose that allows 'pii': marketing, reporting" in message
    assert "add 'pii' to purposes.analytics" in message
    # what reclassify can do: a notebook's own outputs, shown with its import
    assert "from nb_assets import Reclassify" in message
    assert "reclassify={\"<schema.table>\": Reclassify((\"<zone>\",), \"<why it no longer holds pii data>\")}" in message


def test_violation_on_a_notebook_output_names_its_writer_and_the_reclassify_to_write(tmp_path):
    flows = [
        flow("customer_revenue", "reporting", ["raw.customers", "raw.orders"], ["mart.customer_revenue"]),
        flow("report", "analytics", ["mart.customer_revenue"]),
    ]
    report = propagate(policy(tmp_path), flows)
    (v,) = report.blocking()
    message = v.message()
    assert "input mart.customer_revenue, written by notebook customer_revenue" in message
    assert "in the declaration of notebook customer_revenue" in message
    assert "from nb_assets import Reclassify" in message
    assert 'reclassify={"mart.customer_revenue": Reclassify(("finance",), "<why it no longer holds pii data>")}' in message
    # the gate that runs right before a run gives the same advice
    assert check_notebook(policy(tmp_path), flows[1], report.labels, report.writers) == (v,)


def test_a_zone_no_purpose_allows_says_so(tmp_path):
    text = POLICY.replace("  finance: {mode: log}", "  finance: {mode: log}\n  secret: {mode: enforce}").replace(
        "  raw.web_events: [public]", "  raw.web_events: [public]\n  raw.keys: [secret]")
    (v,) = propagate(policy(tmp_path, text), [flow("peek", "reporting", ["raw.keys"])]).blocking()
    assert "no purpose in the policy allows 'secret'" in v.message()


def test_log_zone_allows_but_reports(tmp_path):
    report = propagate(policy(tmp_path), [flow("promo", "marketing", ["raw.orders"], ["mart.promo"])])
    (v,) = report.violations
    assert (v.zone, v.mode) == ("finance", "log")
    assert report.blocking() == ()
    assert report.labels["mart.promo"] == {"finance"}  # propagation continues past a log breach


def test_violation_downstream_of_an_unlabelled_chain(tmp_path):
    flows = [
        flow("a", "marketing", ["raw.customers"], ["stg.a"]),
        flow("b", "marketing", ["stg.a"], ["stg.b"]),
        flow("c", "analytics", ["stg.b"]),
    ]
    report = propagate(policy(tmp_path), flows)
    assert [(v.notebook, v.table, v.zone) for v in report.blocking()] == [("c", "stg.b", "pii")]


def test_check_notebook_refuses_after_the_policy_changes(tmp_path):
    path = write(tmp_path, POLICY)
    f = flow("campaign", "marketing", ["raw.customers"], ["mart.campaign"])
    labels = propagate(load_policy(path), [f]).labels
    assert check_notebook(load_policy(path), f, labels) == ()
    write(tmp_path, POLICY.replace("marketing: [public, pii]", "marketing: [public]"))
    (v,) = check_notebook(load_policy(path), f, labels)
    assert (v.zone, v.mode) == ("pii", "enforce")


def test_check_notebook_fails_closed_on_a_zone_removed_from_the_policy(tmp_path):
    f = flow("nb", "analytics", ["raw.x"])
    (v,) = check_notebook(policy(tmp_path), f, {"raw.x": frozenset({"hr"})})
    assert (v.zone, v.mode) == ("hr", "enforce")


def test_cycle_is_an_error(tmp_path):
    flows = [
        flow("a", "analytics", ["raw.orders", "stg.c"], ["stg.a"]),
        flow("b", "analytics", ["stg.a"], ["stg.b"]),
        flow("c", "analytics", ["stg.b"], ["stg.c"]),
    ]
    with pytest.raises(PolicyError, match="cycle.*a.*b.*c|cycle.*a.*c.*b"):
        propagate(policy(tmp_path), flows)


def test_unknown_purpose_is_an_error(tmp_path):
    with pytest.raises(PolicyError, match="nb: unknown purpose 'sales'"):
        propagate(policy(tmp_path), [flow("nb", "sales", ["raw.orders"])])


def test_no_purpose_uses_default_purpose_or_is_an_error(tmp_path):
    f = flow("nb", None, ["raw.orders"])
    with pytest.raises(PolicyError, match="nb .*declares no purpose"):
        propagate(policy(tmp_path), [f])
    p = policy(tmp_path, POLICY + "default_purpose: analytics\n")
    assert propagate(p, [f]).violations == ()
    (v,) = propagate(p, [flow("nb", None, ["raw.customers"])]).violations
    assert (v.purpose, v.zone) == ("analytics", "pii")


def test_no_purpose_error_names_the_purposes_that_may_read_the_inputs(tmp_path):
    """The author picks one: raw.orders is finance, which analytics and reporting may read (not marketing)."""
    with pytest.raises(PolicyError) as info:
        propagate(policy(tmp_path), [flow("nb", None, ["raw.orders"])])
    assert "purposes that may read its inputs: analytics, reporting" in str(info.value), info.value
    with pytest.raises(PolicyError) as info:  # pii and finance together: only reporting
        propagate(policy(tmp_path), [flow("nb", None, ["raw.orders", "raw.customers"])])
    assert str(info.value).endswith("purposes that may read its inputs: reporting"), info.value
    narrow = POLICY.replace("  reporting: [public, pii, finance]\n", "")
    with pytest.raises(PolicyError, match=r"no purpose in .*policy.yaml may read its inputs \(zones finance, pii\)"):
        propagate(policy(tmp_path, narrow), [flow("nb", None, ["raw.orders", "raw.customers"])])


def test_label_on_a_notebook_output_names_file_and_line(tmp_path):
    text = POLICY.replace("raw.web_events: [public]", "raw.web_events: [public]\n  stg.a: [public]")
    with pytest.raises(PolicyError) as info:
        propagate(policy(tmp_path, text), [flow("a", "marketing", ["raw.customers"], ["stg.a"])])
    msg = str(info.value)
    assert "policy.yaml:13" in msg and "notebook a writes stg.a, which" in msg and "write a new table instead" in msg, msg


def test_a_notebook_writing_a_source_others_read_is_told_to_write_a_new_table(tmp_path):
    """The issue's `clobber`: the fix is a new table, not a reclassify in clobber's declaration."""
    flows = [flow("customer_revenue", "marketing", ["raw.customers"], ["mart.revenue"]),
             flow("clobber", "analytics", [], ["raw.customers"])]
    with pytest.raises(PolicyError) as info:
        propagate(policy(tmp_path), flows)
    msg = str(info.value)
    assert "notebook clobber writes raw.customers, a source table read by customer_revenue" in msg, msg
    assert "policy.yaml:10" in msg and 'write a new table instead, e.g. output("mart.clobber", df)' in msg, msg
    assert "reclassify" not in msg


def test_a_source_the_warehouse_lacks_is_no_such_table_before_any_label(tmp_path):
    p = policy(tmp_path, POLICY.replace("default_labels: [public]\n", ""))
    relations = {"raw.orders", "raw.customers", "raw.web_events"}
    with pytest.raises(PolicyError) as info:
        propagate(p, [flow("traffic", "analytics", ["raw.web_event"])], relations=relations)
    assert str(info.value) == "notebook traffic: no such table raw.web_event (did you mean raw.web_events?)"
    # A table another notebook writes need not exist yet; one that exists is labelled as before.
    flows = [flow("a", "analytics", ["raw.orders"], ["mart.new"]), flow("b", "analytics", ["mart.new"])]
    assert propagate(p, flows, relations=relations).labels["mart.new"] == {"finance"}


def test_label_on_an_unknown_table_names_file_and_line(tmp_path):
    p = policy(tmp_path)
    f = flow("a", "analytics", ["raw.orders"])
    with pytest.raises(PolicyError, match=r"policy\.yaml:10: labelled table raw\.customers does not exist"):
        propagate(p, [f], known_tables={"raw.orders", "raw.web_events"})
    propagate(p, [f])  # without known_tables, existence is not checked


# --- tags ---------------------------------------------------------------------

# dagster/_utils/tags.py: VALID_TAG_KEY_REGEX and VALID_STRICT_TAG_VALUE_REGEX
DAGSTER_KEY = re.compile(r"^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$")
DAGSTER_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,63}$")


def test_zone_tags_are_valid_dagster_tags():
    tags = zone_tags(["pii", "finance", "pii"], "marketing")
    assert tags == {"zone/finance": "", "zone/pii": "", "purpose": "marketing"}
    assert all(DAGSTER_KEY.match(k) and DAGSTER_VALUE.match(v) for k, v in tags.items())
    assert zone_tags([], None) == {}
    with pytest.raises(PolicyError):
        zone_tags(["p i i"], None)


# --- views and macros -----------------------------------------------------------


def test_a_view_carries_the_union_of_what_it_reads_plus_its_own_labels(tmp_path):
    p = policy(tmp_path, POLICY.replace("  raw.web_events: [public]\n", "  raw.web_events: [public]\n  shared.both: [public]\n"))
    through = {"shared.both": ("shared.people", "raw.orders"), "shared.people": ("raw.customers",)}
    report = propagate(p, [NotebookFlow("nb", "reporting", ("shared.both",), ("mart.x",), {}, through)])
    assert report.labels["shared.people"] == {"pii"}
    assert report.labels["shared.both"] == {"pii", "finance", "public"}  # its own label only adds
    assert report.labels["mart.x"] == {"pii", "finance", "public"}


def test_a_violation_through_a_view_names_the_table_the_zone_comes_from(tmp_path):
    through = {"shared.both": ("shared.people", "raw.orders"), "shared.people": ("raw.customers",)}
    report = propagate(policy(tmp_path), [NotebookFlow("nb", "analytics", ("shared.both",), (), {}, through)])
    (violation,) = report.violations
    assert (violation.table, violation.zone, violation.via) == ("shared.both", "pii", ("shared.people", "raw.customers"))
    assert (
        "(view shared.both, which reads raw.customers carrying 'pii': shared.both → shared.people → raw.customers)"
        in violation.message()
    )


def test_a_notebook_reading_a_view_over_an_output_runs_after_its_writer(tmp_path):
    through = {"shared.latest": ("mart.x",)}
    flows = [
        NotebookFlow("reader", "reporting", ("shared.latest",), ("mart.y",), {}, through),
        flow("writer", "reporting", ["raw.customers"], ["mart.x"]),
    ]
    report = propagate(policy(tmp_path), flows)
    assert report.labels["mart.y"] == {"pii"}  # mart.x was labelled first, through the view
