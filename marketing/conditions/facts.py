"""The JSON document a condition sees (docs/conditions.md), built from a contact and its context."""

import json
from datetime import UTC, datetime
from typing import Any


def iso(value: datetime | None) -> str | None:
    """UTC, to the second, with a Z: the one datetime form rules compare (as text) against."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def reads_names(rule) -> bool:
    """Whether a rule may read the contact's ``tags`` or ``lists`` facts (two more queries to
    build; ``contact_facts(names=False)`` leaves them out otherwise)."""
    text = json.dumps(rule)
    return '"tags' in text or '"lists' in text


def reads_contact(rule) -> bool:
    """Whether a rule may read anything but the ``event`` facts: a path outside ``event.``, the
    whole document, or a registered operator (which works on the contact). Scoring loads a
    contact only for the rules that do. Conservative: what it cannot tell counts as reading."""
    from marketing.conditions.operators import operators
    from marketing.conditions.validation import ITERATORS

    def reads(node, *, in_iterator: bool) -> bool:
        if isinstance(node, list):
            return any(reads(item, in_iterator=in_iterator) for item in node)
        if not isinstance(node, dict):
            return False
        if len(node) != 1:
            return True
        ((op, args),) = node.items()
        if op in operators():
            return True
        items = args if isinstance(args, list) else [args]
        if op in ("var", "missing", "missing_some"):
            if in_iterator:
                return False  # a path into the list item, not the facts
            if op == "var":
                items = items[:1]
            elif op == "missing_some" and len(items) == 2 and isinstance(items[1], list):
                items = items[1]
            return not items or any(not isinstance(p, str) or p.split(".", 1)[0] != "event" for p in items)
        return any(
            reads(item, in_iterator=in_iterator or (op in ITERATORS and index > 0)) for index, item in enumerate(items)
        )

    return reads(rule, in_iterator=False)


def contact_facts(contact, *, event=None, workflow: dict | None = None, names: bool = True) -> dict[str, Any]:
    """The facts of one contact (with its company, tags and lists), and of the event and the
    workflow run when the rule is evaluated for them. ``names=False`` leaves out ``tags`` and
    ``lists`` (two queries) for rules known not to read them."""
    company = contact.company if contact.company_id else None
    facts = {
        "id": contact.pk,
        "email": contact.email,
        "external_id": contact.external_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "phone": contact.phone,
        "job_title": contact.job_title,
        "country": contact.country,
        "time_zone": contact.time_zone,
        "locale": contact.locale,
        "lifecycle_stage": contact.lifecycle_stage,
        "lead_status": contact.lead_status,
        "owner": contact.owner_id,
        "created_at": iso(contact.created_at),
        "last_activity_at": iso(contact.last_activity_at),
        "score": contact.score,
        "properties": contact.properties,
        "company": company_facts(company) if company else None,
    }
    if names:
        facts["tags"] = sorted(t.name for t in contact.tags.all())
        facts["lists"] = sorted(cl.slug for cl in contact.lists.all())
    if event is not None:
        facts["event"] = event_facts(event)
    if workflow is not None:
        facts["workflow"] = workflow
    return facts


def company_facts(company) -> dict[str, Any]:
    return {
        "name": company.name,
        "domain": company.domain,
        "industry": company.industry,
        "size": company.size,
        "revenue": float(company.revenue) if company.revenue is not None else None,
        "properties": company.properties,
    }


def event_facts(event) -> dict[str, Any]:
    return {"type": event.type, "occurred_at": iso(event.occurred_at), "properties": event.properties}
