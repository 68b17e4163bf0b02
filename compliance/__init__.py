"""Consent, the preference centre, data-subject requests, retention and the audit log."""
