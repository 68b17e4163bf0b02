"""Scoring models and rules, the score ledger, decay, predictive scoring and the handoff queue."""
