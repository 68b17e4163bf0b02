"""Registered condition operators: each has a Python side and an SQL side that agree.

An operator is a class with ``name``, ``check`` (errors in its arguments), ``value`` (what it
computes for one contact at ``now``) and ``q`` (the contacts for which it is truthy, as a Q).
Number-valued operators also compile comparisons (``q_compare``), so
``{">=": [{"event_count": ["page_view", null, 30]}, 3]}`` becomes one grouped subquery over
events rather than a count per contact. Apps above marketing register more with
``@condition_operator``.
"""

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.utils.dateparse import parse_datetime

from marketing.models import Event

_operators: dict[str, "ConditionOperator"] = {}
# Explicit always/never: Django drops an empty Q(), and ~Q() would not mean "nothing".
ALL = Q(pk__isnull=False)
NONE = Q(pk__in=[])


def condition_operator(cls: type["ConditionOperator"]) -> type["ConditionOperator"]:
    """Registers an operator class (one instance serves every rule)."""
    _operators[cls.name] = cls()
    return cls


def operators() -> dict[str, "ConditionOperator"]:
    return _operators


class ConditionOperator:
    """One custom operator. ``returns`` is "boolean" or "number"."""

    name = ""
    returns = "boolean"

    def check(self, args: list, subject: str) -> list[str]:
        """Errors in ``args`` for a rule over ``subject``, each naming the operator."""
        return []

    def value(self, args: list, *, contact, now: datetime) -> Any:
        raise NotImplementedError

    def q(self, args: list, *, org, now: datetime, within: list[int] | None = None) -> Q:
        """The contacts for which the operator's value is truthy (``within``: only these matter)."""
        if self.returns == "number":
            return ~self.q_compare("==", 0, args, org=org, now=now, within=within)
        raise NotImplementedError

    def q_compare(
        self, op: str, literal: float, args: list, *, org, now: datetime, within: list[int] | None = None
    ) -> Q:
        """The contacts for which ``value <op> literal`` holds (number-valued operators)."""
        raise NotImplementedError(self.name)


def _name_arg(name: str, args: list, what: str) -> list[str]:
    if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
        return [f"{name} takes one argument: the {what}."]
    return []


def integer_threshold(op: str, literal: float) -> tuple[str, int]:
    """Rewrites ``n <op> literal`` for an integer n as ("ge", k): n >= k, ("lt", k): n < k,
    ("eq", k), ("ne", k), or ("all", 0) / ("none", 0) when every or no integer satisfies it."""
    if op == ">":
        return "ge", math.floor(literal) + 1
    if op == ">=":
        return "ge", math.ceil(literal)
    if op == "<":
        return "lt", math.ceil(literal)
    if op == "<=":
        return "lt", math.floor(literal) + 1
    if literal != int(literal):  # == or != a fraction
        return ("none", 0) if op == "==" else ("all", 0)
    return ("eq" if op == "==" else "ne"), int(literal)


def threshold_q(kind: str, k: int, at_least) -> Q:
    """The Q for ("ge"|"lt"|"eq"|"ne"|"all"|"none", k), given ``at_least(m)``: the Q of n >= m."""
    if kind == "all":
        return ALL
    if kind == "none":
        return NONE
    if kind == "ge":
        return at_least(k)
    if kind == "lt":
        return ~at_least(k)
    exactly = at_least(k) & ~at_least(k + 1)
    return exactly if kind == "eq" else ~exactly


def compare_numbers(op: str, left: float, right: float) -> bool:
    return {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


@condition_operator
class EventCount(ConditionOperator):
    """``{"event_count": [type, filter_rule_or_null, days]}``: the contact's events of the type in
    the last ``days`` days (all time when null) for which the filter (over the event's
    ``type``, ``occurred_at`` and ``properties``) is truthy."""

    name = "event_count"
    returns = "number"

    def check(self, args, subject):
        from marketing.conditions.validation import rule_errors

        if len(args) != 3:
            return ["event_count takes [type, filter or null, days or null]."]
        event_type, event_filter, days = args
        errors = []
        if not isinstance(event_type, str) or not event_type:
            errors.append('event_count: the first argument is an event type, e.g. "page_view".')
        if days is not None and (isinstance(days, bool) or not isinstance(days, int | float) or days <= 0):
            errors.append("event_count: the third argument is a number of days above 0, or null.")
        if event_filter is not None:
            errors += [f"event_count filter: {e}" for e in rule_errors(event_filter, "event")]
        return errors

    def _events(self, args, *, org_id, now):
        event_type, _event_filter, days = args
        events = Event.objects.filter(org_id=org_id, type=event_type, occurred_at__lte=now)
        if days is not None:
            events = events.filter(occurred_at__gte=now - timedelta(days=days))
        return events

    def value(self, args, *, contact, now):
        from marketing.conditions.engine import evaluate, truthy
        from marketing.conditions.facts import event_facts

        event_type, event_filter, days = args
        since = now - timedelta(days=days) if days is not None else None
        rows = _contact_events(contact, event_type, since=since, until=now)
        if event_filter is None:
            return len(rows)
        return sum(
            1
            for row in rows
            if truthy(evaluate(event_filter, event_facts(Event(type=row[0], occurred_at=row[1], properties=row[2]))))
        )

    def q_compare(self, op, literal, args, *, org, now, within=None):
        from marketing.conditions.sql import to_q

        events = self._events(args, org_id=org.pk, now=now)
        if within is not None:
            events = events.filter(contact_id__any_of=within)
        if args[1] is not None:
            events = events.filter(to_q(args[1], "event", org=org, now=now))
        counted = events.order_by().values("contact_id").annotate(n=Count("pk"))

        def at_least(m: int) -> Q:  # count >= m; every contact has count >= 0
            return ALL if m <= 0 else Q(pk__in=counted.filter(n__gte=m).values("contact_id"))

        return threshold_q(*integer_threshold(op, literal), at_least)


def _contact_events(contact, event_type: str, *, since, until) -> list[tuple]:
    """(type, occurred_at, properties) of one contact's events of a type in a window: plain SQL,
    as the Python side of event_count runs for every incremental segment check."""
    sql = (
        f"SELECT type, occurred_at, properties FROM {Event._meta.db_table} WHERE org_id = %s "  # noqa: S608
        "AND contact_id = %s AND type = %s AND occurred_at <= %s"
    )
    adapt = connection.ops.adapt_datetimefield_value  # the column's stored form (text on SQLite)
    params = [contact.org_id, contact.pk, event_type, adapt(until)]
    if since is not None:
        sql += " AND occurred_at >= %s"
        params.append(adapt(since))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # Read as the ORM would: Django has psycopg hand JSON over as text, and SQLite keeps
    # datetimes as naive UTC.
    return [
        (t, _aware(parse_datetime(o) if isinstance(o, str) else o), json.loads(p) if isinstance(p, str) else p)
        for t, o, p in rows
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@condition_operator
class DaysSince(ConditionOperator):
    """``{"days_since": "last_activity_at"}``: whole days from a datetime field to now (null when
    the field is empty; negative for a future date)."""

    name = "days_since"
    returns = "number"
    FIELDS = ("created_at", "last_activity_at")

    def check(self, args, subject):
        if subject != "contact" or len(args) != 1 or args[0] not in self.FIELDS:
            return [f"days_since takes one of {', '.join(self.FIELDS)}."]
        return []

    def value(self, args, *, contact, now):
        moment = getattr(contact, args[0])
        return None if moment is None else math.floor((now - moment).total_seconds() / 86400)

    def q_compare(self, op, literal, args, *, org, now, within=None):
        # days = floor((now - t) / 1 day); an empty field counts as 0, as null does in a comparison.
        field = args[0]

        def at_least(m: int) -> Q:  # days >= m  <=>  t <= now - m days
            q = Q(**{f"{field}__lte": now - timedelta(days=m)})
            return q | Q(**{f"{field}__isnull": True}) if m <= 0 else q

        return threshold_q(*integer_threshold(op, literal), at_least)


@condition_operator
class InSegment(ConditionOperator):
    """``{"in_segment": "slug"}``: the contact is a member of the segment now."""

    name = "in_segment"

    def check(self, args, subject):
        return _name_arg(self.name, args, "segment's slug")

    def value(self, args, *, contact, now):
        from marketing.models import SegmentMembership

        return SegmentMembership.objects.filter(
            org_id=contact.org_id, contact=contact, segment__slug=args[0], exited_at__isnull=True
        ).exists()

    def q(self, args, *, org, now, within=None):
        from marketing.models import SegmentMembership

        members = SegmentMembership.objects.filter(org=org, segment__slug=args[0], exited_at__isnull=True)
        return Q(pk__in=members.values("contact_id"))


@condition_operator
class HasTag(ConditionOperator):
    """``{"has_tag": "vip"}``: the contact has the tag."""

    name = "has_tag"

    def check(self, args, subject):
        return _name_arg(self.name, args, "tag's name")

    def value(self, args, *, contact, now):
        return contact.tags.filter(name=args[0]).exists()

    def q(self, args, *, org, now, within=None):
        from marketing.models import Contact

        through = Contact.tags.through.objects.filter(tag__org=org, tag__name=args[0])
        return Q(pk__in=through.values("contact_id"))


@condition_operator
class InList(ConditionOperator):
    """``{"in_list": "newsletter"}``: the contact is on the static list."""

    name = "in_list"

    def check(self, args, subject):
        return _name_arg(self.name, args, "list's slug")

    def value(self, args, *, contact, now):
        return contact.lists.filter(slug=args[0]).exists()

    def q(self, args, *, org, now, within=None):
        from marketing.models import ListMembership

        on_list = ListMembership.objects.filter(contact_list__org=org, contact_list__slug=args[0])
        return Q(pk__in=on_list.values("contact_id"))
