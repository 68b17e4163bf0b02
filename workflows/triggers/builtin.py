"""The shipped triggers: an event (with a filter), entering or leaving a segment, manual, a
schedule (cron, interval or once, enrolling a segment's members), a date relative to a contact
field, and an inbound webhook."""

from collections import defaultdict
from datetime import datetime, timedelta

from celery.schedules import crontab

from marketing.conditions import contact_facts, evaluate, reads_names, rule_errors, to_q, truthy
from marketing.conditions.fields import DATETIME, field_info
from marketing.models import Contact, Segment, SegmentMembership
from workflows.durations import duration_problem
from workflows.triggers import TYPE, Trigger, trigger

ENROL_BATCH = 5000
EVENT_TYPE = {"type": "string", "minLength": 1, "maxLength": 100, "title": "Event"}
SEGMENT = {"type": "string", "minLength": 1, "maxLength": 100, "title": "Segment"}


def filter_matches(rule, *, event, contact) -> bool:
    """Whether an event (and its contact) passes a trigger's or a wait's filter rule."""
    if rule in (None, {}, True):
        return True
    facts = contact_facts(contact, event=event, names=reads_names(rule))
    return truthy(evaluate(rule, facts, contact=contact))


@trigger
class EventTrigger(Trigger):
    """Starts a run for each stored event of a type that passes the filter."""

    name = "event"
    label = "An event happens"
    description = "Starts when a contact does something: submits a form, opens an email, visits a page…"
    config_schema = {
        "type": "object",
        "required": ["type", "event"],
        "properties": {
            "type": TYPE,
            "event": EVENT_TYPE,
            "filter": {
                "type": ["object", "boolean", "null"],
                "title": "Only if",
                "description": "Only events that match this start a run (every event of the type if left empty).",
            },
        },
        "additionalProperties": False,
    }
    ui = {"event": "event_type", "filter": "rule:event"}

    def check(self, config, *, org):
        rule = config.get("filter")
        return [f"filter: {e}" for e in rule_errors(rule, "contact", org=org)] if rule not in (None, {}) else []

    def event_type(self, config):
        return config["event"]

    def matches(self, event, config, contact):
        return filter_matches(config.get("filter"), event=event, contact=contact)


class _SegmentTrigger(Trigger):
    config_schema = {
        "type": "object",
        "required": ["type", "segment"],
        "properties": {"type": TYPE, "segment": SEGMENT},
        "additionalProperties": False,
    }
    ui = {"segment": "ref:segment"}

    def check(self, config, *, org):
        if org is not None and not Segment.objects.filter(org=org, slug=config.get("segment")).exists():
            return [f"segment: no segment with slug “{config.get('segment')}”."]
        return []

    def event_type(self, config):
        return self.name

    def matches(self, event, config, contact):
        return event.properties.get("segment") == config["segment"]


@trigger
class SegmentEntered(_SegmentTrigger):
    """Starts a run when a contact enters a segment."""

    name = "segment_entered"
    label = "A contact enters a segment"
    description = "Starts when a contact starts matching a segment."


@trigger
class SegmentExited(_SegmentTrigger):
    """Starts a run when a contact leaves a segment."""

    name = "segment_exited"
    label = "A contact leaves a segment"
    description = "Starts when a contact stops matching a segment."


@trigger
class Manual(Trigger):
    """Runs start from the console (a contact selection or a segment) or the API."""

    name = "manual"
    label = "Started by hand"
    description = "You enrol contacts yourself, from a selection or a segment (or another system does, by the API)."
    config_schema = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": TYPE},
        "additionalProperties": False,
    }


def segment_member_batches(segment: Segment, key: str):
    ids = SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list("contact_id", flat=True)
    batch: list[int] = []
    for contact_id in ids.order_by("contact_id").iterator(chunk_size=ENROL_BATCH):
        batch.append(contact_id)
        if len(batch) == ENROL_BATCH:
            yield batch, key
            batch = []
    if batch:
        yield batch, key


def cron_problem(expression: str) -> str | None:
    fields = expression.split()
    if len(fields) != 5:
        return "A cron expression has five fields: minute hour day-of-month month day-of-week."
    try:
        crontab(*fields)
    except ValueError as exc:
        return f"Invalid cron expression: {exc}"
    return None


@trigger
class Schedule(Trigger):
    """Enrols a segment's members on a schedule: ``cron`` ("0 9 * * 1"), ``every`` (an ISO-8601
    duration) or once ``at`` a datetime. A run per member per firing."""

    name = "schedule"
    label = "On a schedule"
    description = "Enrols everyone in a segment on a schedule: every week on Monday at 9, every day, or once."
    config_schema = {
        "type": "object",
        "required": ["type", "segment"],
        "properties": {
            "type": TYPE,
            "segment": SEGMENT,
            "cron": {
                "type": "string",
                "title": "Repeat",
                "description": "minute hour day month weekday, e.g. 0 9 * * 1 for Mondays at 9:00.",
            },
            "every": {"type": "string", "title": "Every", "description": "How often, e.g. every day."},
            "at": {"type": "string", "format": "date-time", "title": "Once, at"},
            "time_zone": {
                "type": "string",
                "title": "Time zone",
                "description": "e.g. Europe/Paris (the organisation's time zone if left empty).",
            },
        },
        "oneOf": [
            {"title": "Repeat on a calendar", "required": ["cron"]},
            {"title": "Every so often", "required": ["every"]},
            {"title": "Once", "required": ["at"]},
        ],
        "additionalProperties": False,
    }
    ui = {"segment": "ref:segment", "every": "duration"}

    def check(self, config, *, org):
        errors = _SegmentTrigger.check(self, config, org=org)
        if "cron" in config and (problem := cron_problem(config["cron"])):
            errors.append(f"cron: {problem}")
        if "every" in config and (problem := duration_problem(config["every"], minimum=timedelta(minutes=1))):
            errors.append(f"every: {problem}")
        return errors

    def due(self, workflow, config, now):
        segment = Segment.objects.filter(org=workflow.org, slug=config["segment"]).first()
        if segment is None:
            return
        yield from segment_member_batches(segment, f"schedule:{now:%Y-%m-%dT%H:%M}")


@trigger
class DateRelative(Trigger):
    """Starts a run N days before (negative) or after a contact's date field, e.g.
    {"field": "properties.trial_ends_at", "offset_days": -3}; beat checks it every hour, and a
    contact is enrolled once per value of the field."""

    name = "date_relative"
    label = "Relative to a contact date"
    description = "Starts some days before or after a date of the contact, e.g. 3 days before their trial ends."
    config_schema = {
        "type": "object",
        "required": ["type", "field", "offset_days"],
        "properties": {
            "type": TYPE,
            "field": {"type": "string", "minLength": 1, "title": "Date", "description": "A date field of the contact."},
            "offset_days": {
                "type": "integer",
                "minimum": -3650,
                "maximum": 3650,
                "title": "Days after",
                "description": "Days after the date (a negative number: days before it; 0: on the day).",
            },
        },
        "additionalProperties": False,
    }
    ui = {"field": "contact_field"}

    def check(self, config, *, org):
        info = field_info("contact", config.get("field", ""), org=org)
        if info is None or info.type != DATETIME:
            return [f"field: “{config.get('field')}” is not a date field of contacts."]
        return []

    def due(self, workflow, config, now: datetime):
        from marketing.conditions.facts import iso

        # The moment fires when field + offset has passed, within the last day (beat may be late).
        upper = now - timedelta(days=config["offset_days"])
        rule = {
            "and": [
                {">": [{"var": config["field"]}, iso(upper - timedelta(days=1))]},
                {"<=": [{"var": config["field"]}, iso(upper)]},
            ]
        }
        matching = Contact.objects.filter(to_q(rule, "contact", org=workflow.org, now=now))
        by_day: dict[str, list[int]] = defaultdict(list)
        for contact in matching.select_related("company").iterator(chunk_size=ENROL_BATCH):
            value = evaluate({"var": config["field"]}, contact_facts(contact, names=False))
            by_day[f"date:{config['field']}:{str(value)[:10]}"].append(contact.pk)
        for key, ids in by_day.items():
            for first in range(0, len(ids), ENROL_BATCH):
                yield ids[first : first + ENROL_BATCH], key


@trigger
class InboundWebhook(Trigger):
    """Starts a run when a signed POST reaches the workflow's webhook URL (see docs/workflows.md)."""

    name = "webhook"
    label = "An inbound webhook"
    description = "Starts when another system posts to this workflow's webhook address (shown once it is saved)."
    config_schema = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": TYPE},
        "additionalProperties": False,
    }
