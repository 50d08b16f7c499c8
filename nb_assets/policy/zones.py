"""Data-purpose policy zones: labels on source tables, a purpose per notebook, the gate.

A policy file (YAML) declares::

    zones:                          # every zone, and what a breach of it does
      public:  {mode: enforce, description: Safe to share}
      pii:     {mode: enforce, description: Personal data}
      finance: {mode: log}          # log: the run goes ahead, the breach is reported
    purposes:                       # purpose -> zones a notebook run for it may read
      analytics: [public, finance]
      marketing: [public, pii]
    default_purpose: analytics      # optional: the purpose of notebooks that declare none
    tables:                         # labels of *source* tables only
      raw.customers: [pii]
      raw.orders: [finance]
    default_labels: [public]        # optional: labels of source tables not listed

Rules:

- Labels propagate: each output carries the union of its notebook's input
  labels, unless the notebook reclassifies it (new zones plus a written reason).
- A notebook may read a table when its purpose allows every label on it. A
  disallowed label in an ``enforce`` zone refuses the notebook; in a ``log``
  zone the run is allowed and the breach recorded as a violation.
- Only source tables (read, never written by a notebook) may carry labels; a
  notebook output's labels come from propagation or ``reclassify``.
- A source table missing from ``tables`` gets ``default_labels``; without that
  key it is an error, so a new raw table cannot slip through unlabelled.
- A notebook without a purpose runs as ``default_purpose``. If the policy sets
  none, such a notebook may not read any table: there is no implicit
  "anything goes" purpose.
- Views and table macros are seen through (catalog_lineage): a view's labels
  are the union of the labels of everything it reads, down to its base
  tables. A label written on a view under ``tables`` can only add zones to
  that union; removing zones is what ``reclassify``, with its reason, is for.

Reading the file is policy/loader.py's job; its errors name ``path:line``. Errors
about a flow name the notebook.

This module is the policy's public face; the parts live beside it: the model
(model.py), what a check finds (report.py), the gate (gate.py), propagation
(propagation.py) and Dagster tags (tags.py).
"""

from nb_assets.policy.gate import check_notebook
from nb_assets.policy.model import MODES, Mode, NotebookFlow, Policy, Zone
from nb_assets.policy.propagation import propagate
from nb_assets.policy.report import PolicyReport, Reclassification, Violation
from nb_assets.policy.tags import PURPOSE_TAG, TAG_PART, ZONE_TAG_PREFIX, zone_tags

__all__ = [
    "MODES", "PURPOSE_TAG", "TAG_PART", "ZONE_TAG_PREFIX", "Mode", "NotebookFlow", "Policy", "PolicyReport",
    "Reclassification", "Violation", "Zone", "check_notebook", "propagate", "zone_tags",
]
