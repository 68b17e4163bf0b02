"""Predictive scoring (placeholder until the predictive model lands; see its module docstring then).

``contacts_predict(org=, contact_ids=)`` writes a conversion probability and its top factors on
the contacts' default-model ``ContactScore`` with the org's newest active ``PredictiveModel``;
with none (or when prediction fails) it leaves them as they are and scoring goes on with rules.
"""


def contacts_predict(*, org, contact_ids, now=None) -> int:
    """Predicts for these contacts; returns how many got a probability (0: rules only)."""
    return 0
