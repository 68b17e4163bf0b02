"""A projection's send guards in SQL (``workflows.projection`` asks a send action's
``projection_guards``): the rules of ``channels_app.outbox.send_guards`` as one grouped query over
a route's members, in which each send of the route is a column holding that contact's verdict.
"""

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import QuerySet

from channels_app.models import Channel, Message, Purpose, Suppression
from channels_app.outbox import (
    BLOCKS_TRANSACTIONAL,
    CONSENT_PURPOSE,
    DEFAULT_QUIET_HOURS,
    SHARING_CHANNELS,
    SHARING_PURPOSE,
)
from channels_app.push_subscriptions import PushSubscription
from compliance.models import ConsentRecord, Regime
from compliance.selectors import consent_regimes
from marketing.conditions import NotCompilable
from marketing.models import Contact, Organization


def _valid_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return "UTC"
    return name


def time_zones(org: Organization) -> tuple[str, list[str]]:
    """(the org's zone, the contacts' zones that both Python and PostgreSQL know): a contact's
    zone outside the list is read as UTC, as the outbox reads it."""
    zones = Contact.objects.filter(org=org).exclude(time_zone="").order_by().values_list("time_zone", flat=True)
    names = set(zones.distinct())
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_timezone_names WHERE name = ANY(%s)", [sorted(names)])
        known = {row[0] for row in cursor.fetchall()}
    return _valid_zone(org.default_time_zone or "UTC"), sorted(n for n in known if _valid_zone(n) == n)


def guard_counts(*, org: Organization, members: QuerySet, sends: tuple, counted: tuple, zones) -> dict[int, Counter]:
    """For each of ``counted`` (the last of a route's ``sends``), how many of ``members`` it would
    send, block or hold, by guard kind: the rules of ``channels_app.outbox.messages_guards`` as
    one query, in which each send of the route is a column holding that contact's verdict, so a
    frequency cap counts the run's own earlier sends that went out."""
    members_sql, members_params = members.order_by().values("pk").query.sql_with_params()
    org_zone, known_zones = zones
    tables = {
        "message": Message._meta.db_table,
        "suppression": Suppression._meta.db_table,
        "consent": ConsentRecord._meta.db_table,
    }
    # Each contact's marketing sends on a capped channel since the earliest window could start
    # (a week and a time zone before the first send), as an array joined once: the caps then
    # count in the row instead of a subquery per contact.
    capped = sorted({send.channel for send in sends if (org.frequency_caps or {}).get(send.channel)})
    since = min(send.at for send in sends) - timedelta(days=9)
    columns, joins, join_params = [], [], []
    for channel in capped:
        if not channel.isidentifier():
            raise NotCompilable(f"the {channel} channel's name")
        columns.append(f", coalesce(sent_{channel}.times, '{{}}') AS sent_{channel}")
        joins.append(
            f" LEFT JOIN (SELECT contact_id, array_agg(sent_at) AS times FROM {tables['message']} "  # noqa: S608
            "WHERE org_id = %s AND channel = %s AND purpose = %s AND sent_at >= %s GROUP BY contact_id) "
            f"sent_{channel} ON sent_{channel}.contact_id = c.id"
        )
        join_params += [org.pk, channel, "marketing", since]
    # Each contact's newest consent record per purpose the route's marketing sends need, joined once.
    purposes = sorted({purpose for purpose in map(_consent_purpose, sends) if purpose})
    for purpose in purposes:
        columns.append(f", consent_{purpose}.granted AS consent_{purpose}")
        joins.append(
            f" LEFT JOIN (SELECT DISTINCT ON (r.contact_id) r.contact_id, r.granted FROM {tables['consent']} r "  # noqa: S608
            "WHERE r.org_id = %s AND r.purpose = %s ORDER BY r.contact_id, r.recorded_at DESC, r.id DESC) "
            f"consent_{purpose} ON consent_{purpose}.contact_id = c.id"
        )
        join_params += [org.pk, purpose]
    sql = [
        f"WITH g0 AS MATERIALIZED (SELECT c.id, c.email, c.phone, c.phone_bidx, "  # noqa: S608  table names from the models
        f"CASE WHEN coalesce(c.time_zone, '') = '' THEN %s WHEN c.time_zone = ANY(%s) THEN c.time_zone "
        f"ELSE 'UTC' END AS tz{''.join(columns)} FROM {Contact._meta.db_table} c{''.join(joins)} "
        f"WHERE c.id IN ({members_sql}))"
    ]
    params: list = [org_zone, known_zones, *join_params, *members_params]
    for position, send in enumerate(sends, start=1):
        expression, expression_params = _verdict_sql(org, send, sends[: position - 1], tables, f"g{position - 1}")
        before = f"g{position - 1}"
        sql.append(f", g{position} AS MATERIALIZED (SELECT {before}.*, {expression} AS v{send.index} FROM {before})")  # noqa: S608
        params += expression_params
    verdicts = ", ".join(f"v{send.index}" for send in counted)
    sql.append(f" SELECT {verdicts}, count(*) FROM g{len(sends)} GROUP BY {verdicts}")  # noqa: S608
    counts: dict[int, Counter] = {send.index: Counter() for send in counted}
    with connection.cursor() as cursor:
        cursor.execute("".join(sql), params)
        for *row, count in cursor.fetchall():
            for send, verdict in zip(counted, row, strict=True):
                counts[send.index][verdict] += count
    return counts


def _consent_purpose(send) -> str | None:
    """The purpose whose consent the send needs (``outbox._consent_blocks``), or None."""
    if send.purpose == Purpose.MARKETING and send.channel in CONSENT_PURPOSE:
        return CONSENT_PURPOSE[send.channel]
    if send.channel in SHARING_CHANNELS:
        return SHARING_PURPOSE
    return None


def _address_sql(send, g: str) -> tuple[str, list]:
    """The message's address for each contact (``outbox._address``), as SQL over row ``g``."""
    if send.destination is not None:
        return "%s", [send.destination]
    if send.channel == Channel.EMAIL:
        return f"coalesce({g}.email, '')", []
    if send.channel == Channel.SMS:
        return f"coalesce({g}.phone, '')", []  # encrypted: only "is it empty" is asked of it here
    if send.channel == Channel.PUSH:
        table = PushSubscription._meta.db_table
        count = f"(SELECT count(*) FROM {table} p WHERE p.contact_id = {g}.id)"  # noqa: S608  a model's table
        return (
            f"(CASE WHEN {count} = 0 THEN '' WHEN {count} = 1 THEN 'push:1 subscription' "
            f"ELSE 'push:' || {count} || ' subscriptions' END)"
        ), []
    raise NotCompilable(f"the {send.channel} channel's address")


def _verdict_sql(org: Organization, send, earlier: list, tables: dict, g: str) -> tuple[str, list]:
    """A CASE over row ``g`` naming the first guard that stops ``send`` ("no_address", "consent",
    "suppression", "frequency_cap", "quiet_hours"), else "send"; the guards in the outbox's
    order, so consent wins over suppression as it does there."""
    address, address_params = _address_sql(send, g)
    marketing = send.purpose == Purpose.MARKETING
    cases: list[str] = [f"WHEN {address} = '' THEN 'no_address'"]
    params: list = [*address_params]
    purpose = _consent_purpose(send)
    if purpose is not None:
        # Opt-in needs a grant (no record is no consent); opt-out stops only a withdrawal.
        test = "IS NOT TRUE" if consent_regimes(org=org)[purpose] == Regime.OPT_IN else "IS FALSE"
        cases.append(f"WHEN {g}.consent_{purpose} {test} THEN 'consent'")
    normal = f"lower(btrim({address}))"
    # An uncorrelated subquery: PostgreSQL hashes it once instead of probing per contact.
    suppressed = (
        f"(SELECT s.address FROM {tables['suppression']} s WHERE s.org_id = %s AND s.channel = %s"  # noqa: S608
        f"{'' if marketing else ' AND s.reason = ANY(%s)'})"
    )
    suppressed_params = [org.pk, send.channel] + ([] if marketing else [sorted(map(str, BLOCKS_TRANSACTIONAL))])
    keyed = ""
    if send.channel == Channel.SMS and send.destination is None:
        # A phone's suppression holds its keyed hash (Suppression.address_of), the contact's index.
        keyed = f" OR {g}.phone_bidx IN {suppressed}"
    cases.append(
        f"WHEN {normal} IN {suppressed} OR encode(sha256(convert_to({normal}, 'UTF8')), 'hex') IN {suppressed}"
        f"{keyed} THEN 'suppression'"
    )
    params += [*address_params, *suppressed_params, *address_params, *suppressed_params]
    params += suppressed_params if keyed else []
    caps = (org.frequency_caps or {}).get(send.channel)
    if marketing and isinstance(caps, dict):
        over = []
        for period in ("day", "week"):
            cap = caps.get(period)
            if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
                continue
            start = f"(date_trunc('{period}', %s::timestamptz AT TIME ZONE {g}.tz) AT TIME ZONE {g}.tz)"
            terms = [f"(SELECT count(*) FROM unnest({g}.sent_{send.channel}) t WHERE t >= {start})"]  # noqa: S608
            params.append(send.at)
            for prior in earlier:
                if prior.channel == send.channel and prior.purpose == Purpose.MARKETING:
                    terms.append(
                        f"(CASE WHEN {g}.v{prior.index} = 'send' AND %s::timestamptz >= {start} THEN 1 ELSE 0 END)"
                    )
                    params += [prior.at, send.at]
            over.append(f"({' + '.join(terms)}) >= %s")
            params.append(cap)
        if over:
            cases.append(f"WHEN {' OR '.join(over)} THEN 'frequency_cap'")
    if org.quiet_hours_start is not None and org.quiet_hours_end is not None:
        quiet = (org.quiet_hours_start, org.quiet_hours_end)
    else:
        quiet = DEFAULT_QUIET_HOURS.get(send.channel)
    if marketing and quiet and quiet[0] != quiet[1]:
        start, end = quiet
        local = f"(%s::timestamptz AT TIME ZONE {g}.tz)::time"
        cases.append(f"WHEN ({local} >= %s {'AND' if start < end else 'OR'} {local} < %s) THEN 'quiet_hours'")
        params += [send.at, start, send.at, end]
    return f"(CASE {' '.join(cases)} ELSE 'send' END)", params
