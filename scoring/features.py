"""Features for predictive scoring: one row per contact, computed in one SQL statement.

The columns are named, and a trained ``PredictiveModel`` stores the names (``feature_names``), so
prediction rebuilds exactly the columns the model was trained on from the names alone:

- ``events_{7,30,90}d:<type>``: events of the type in the window before the "as of" point, for a
  fixed vocabulary (the org's most common types when the model was trained);
- ``page_views_{7,30,90}d:<path>``: page views of the org's most viewed paths (``/pricing``);
- ``days_since_last_event`` (capped at ``LOOKBACK_DAYS``), ``days_since_first_seen``
  (the contact's ``created_at``);
- ``email_opens_90d``, ``email_clicks_90d``, ``email_click_rate`` (clicks per open): the
  person's own ``email_opened`` / ``email_clicked``. Machine opens and clicks (Apple Mail Privacy
  Protection, scanners: ``email_opened_machine`` / ``email_clicked_machine``) are left out of
  every feature, the vocabulary and ``days_since_last_event`` included: they say nothing about
  the person;
- fit: ``company_size_log`` (log1p of employees), ``has_company``, ``industry:<x>`` and
  ``country:<x>`` one-hot for the org's commonest values, ``seniority:<level>`` from keywords in
  the job title.

Training labels and the "as of" point: a contact converted if it is in the ``customer`` (or the
later ``evangelist``) stage or has a ``purchase``/``order_completed`` event (the names the
product's events use). A converted contact's features are taken as they were just before its
conversion — the first purchase event, or the sales handoff marked converted, whichever came
first — because the activity around and after a purchase would otherwise teach the model that
"buying" predicts buying. A contact in the customer stage with neither has no known conversion
time and is featured as of now (its history may include post-conversion activity: record a
``purchase`` event, even an imported one, to date it). Everyone else is featured as of now.
"""

import math
import re
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db import connection
from django.db.models import Count

from marketing.machine_events import MACHINE_EVENT_TYPES
from marketing.models import Company, Contact, Event

WINDOWS = (7, 30, 90)
LOOKBACK_DAYS = 365
TOP_EVENT_TYPES = 12
TOP_PAGE_PATHS = 6
TOP_INDUSTRIES = 8
TOP_COUNTRIES = 10
CONVERSION_EVENT_TYPES = ("purchase", "order_completed")
CONVERTED_STAGES = ("customer", "evangelist")
# Types that are the label itself, are derived from the score, or are no person's doing (machine
# opens and clicks): not evidence of intent.
EXCLUDED_EVENT_TYPES = (*CONVERSION_EVENT_TYPES, "score_threshold_crossed", *sorted(MACHINE_EVENT_TYPES))
# Keyword → level, checked in this order (a "VP Sales" is a vp, a "Sales Manager" a manager).
SENIORITY = (
    ("executive", re.compile(r"\b(ceo|cto|cfo|coo|cmo|cio|chief|founder|co-founder|president|owner)\b", re.I)),
    ("vp", re.compile(r"\b(vp|svp|evp|vice president|head of|director)\b", re.I)),
    ("manager", re.compile(r"\b(manager|lead|principal)\b", re.I)),
)
FIXED_FEATURES = (
    "days_since_last_event",
    "days_since_first_seen",
    "email_opens_90d",
    "email_clicks_90d",
    "email_click_rate",
    "company_size_log",
    "has_company",
    *(f"seniority:{level}" for level, _ in SENIORITY),
)


@dataclass(frozen=True)
class FeatureSpec:
    """The variable part of the columns: which event types, paths, industries and countries."""

    event_types: tuple[str, ...]
    page_paths: tuple[str, ...]
    industries: tuple[str, ...]
    countries: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        names = []
        for days in WINDOWS:
            names += [f"events_{days}d:{t}" for t in self.event_types]
            names += [f"page_views_{days}d:{p}" for p in self.page_paths]
        names += FIXED_FEATURES
        names += [f"industry:{i}" for i in self.industries]
        names += [f"country:{c}" for c in self.countries]
        return names

    @classmethod
    def from_names(cls, names: list[str]) -> "FeatureSpec":
        """The spec a model's stored ``feature_names`` were made from (their order is kept)."""
        spec = cls(
            event_types=_suffixes(names, f"events_{WINDOWS[0]}d:"),
            page_paths=_suffixes(names, f"page_views_{WINDOWS[0]}d:"),
            industries=_suffixes(names, "industry:"),
            countries=_suffixes(names, "country:"),
        )
        if spec.names != list(names):
            raise ValueError("The model's feature names are not ones this version of the features makes.")
        return spec


@dataclass
class FeatureRows:
    """A matrix of features (rows in ``contact_ids`` order) and, for training, the labels."""

    contact_ids: list[int]
    names: list[str]
    X: np.ndarray
    y: np.ndarray | None = None


def _suffixes(names: list[str], prefix: str) -> tuple[str, ...]:
    return tuple(n[len(prefix) :] for n in names if n.startswith(prefix))


def feature_spec_for(*, org) -> FeatureSpec:
    """The org's vocabulary now: its commonest event types, page paths, industries, countries."""
    event_types = (
        Event.objects.filter(org=org)
        .exclude(type__in=EXCLUDED_EVENT_TYPES)
        .values_list("type")
        .annotate(n=Count("id"))
        .order_by("-n", "type")
    )
    paths = (
        Event.objects.filter(org=org, type="page_view", properties__path__isnull=False)
        .values_list("properties__path")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    industries = (
        Company.objects.filter(org=org, contacts__isnull=False)
        .exclude(industry="")
        .values_list("industry")
        .annotate(n=Count("id"))
        .order_by("-n", "industry")
    )
    countries = (
        Contact.objects.filter(org=org).exclude(country="").values_list("country").annotate(n=Count("id"))
    ).order_by("-n", "country")
    return FeatureSpec(
        event_types=tuple(t for t, _ in event_types[:TOP_EVENT_TYPES]),
        page_paths=tuple(_distinct_paths(paths)),
        industries=tuple(i for i, _ in industries[:TOP_INDUSTRIES]),
        countries=tuple(c for c, _ in countries[:TOP_COUNTRIES]),
    )


def _distinct_paths(paths) -> list[str]:
    """The top paths, strings only (a JSON path value may be anything), in count order."""
    seen: list[str] = []
    for path, _ in paths[: TOP_PAGE_PATHS * 3]:
        if isinstance(path, str) and path and path not in seen:
            seen.append(path)
        if len(seen) == TOP_PAGE_PATHS:
            break
    return seen


def contact_features(*, org, contact_ids, spec: FeatureSpec, now) -> FeatureRows:
    """Features of these contacts as of ``now`` (prediction): one SQL statement."""
    ids = sorted({int(i) for i in contact_ids})
    if not ids:
        return FeatureRows(contact_ids=[], names=spec.names, X=np.zeros((0, len(spec.names))))
    rows = _query(org=org, spec=spec, now=now, contact_ids=ids, training=False)
    return _matrix(rows, spec, training=False)


def training_features(*, org, spec: FeatureSpec, now) -> FeatureRows:
    """Features and labels of every contact of the org, each as of its conversion or ``now``."""
    rows = _query(org=org, spec=spec, now=now, contact_ids=None, training=True)
    return _matrix(rows, spec, training=True)


# --- SQL --------------------------------------------------------------------------------------


def _vendor_sql() -> dict[str, str]:
    if connection.vendor == "postgresql":
        return {
            "days": "(EXTRACT(EPOCH FROM ({a} - {b})) / 86400.0)",
            "path": "(e.properties ->> 'path')",
            "param_ts": "CAST(%s AS timestamptz)",
        }
    return {  # SQLite: datetimes are text, JSON is text
        "days": "(julianday({a}) - julianday({b}))",
        "path": "json_extract(e.properties, '$.path')",
        "param_ts": "%s",
    }


def _query(*, org, spec: FeatureSpec, now, contact_ids, training: bool) -> list[tuple]:
    from scoring.models import Handoff

    sql = _vendor_sql()
    now_param = connection.ops.adapt_datetimefield_value(now)
    since_param = connection.ops.adapt_datetimefield_value(now - timedelta(days=LOOKBACK_DAYS))
    contact_t, company_t, event_t = Contact._meta.db_table, Company._meta.db_table, Event._meta.db_table
    params: list = []

    ctes = []
    if training:
        conversion_types = ", ".join(["%s"] * len(CONVERSION_EVENT_TYPES))
        ctes.append(
            f"""conv AS (
                SELECT contact_id, MIN(at) AS at FROM (
                    SELECT contact_id, occurred_at AS at FROM {event_t}
                     WHERE org_id = %s AND type IN ({conversion_types})
                    UNION ALL
                    SELECT contact_id, closed_at AS at FROM {Handoff._meta.db_table}
                     WHERE org_id = %s AND status = 'converted' AND closed_at IS NOT NULL
                ) AS conversions GROUP BY contact_id)"""  # noqa: S608  fixed names; values are parameters
        )
        params += [org.pk, *CONVERSION_EVENT_TYPES, org.pk]
        stages = ", ".join(["%s"] * len(CONVERTED_STAGES))
        label = f"(c.lifecycle_stage IN ({stages}) OR conv.at IS NOT NULL)"
        label_params = list(CONVERTED_STAGES)
        as_of = f"CASE WHEN conv.at IS NOT NULL AND conv.at < {sql['param_ts']} THEN conv.at ELSE {sql['param_ts']} END"
        base_params = [*label_params, now_param, now_param]
        conv_join = "LEFT JOIN conv ON conv.contact_id = c.id"
        where_ids = ""
        ids_params: list = []
    else:
        label = "1 = 0"
        as_of = sql["param_ts"]
        base_params = [now_param]
        conv_join = ""
        where_ids = f"AND c.id IN ({', '.join(['%s'] * len(contact_ids))})"
        ids_params = list(contact_ids)
    ctes.append(
        f"""base AS (
            SELECT c.id, c.created_at, c.job_title, c.country, co.size, co.industry, c.company_id,
                   CASE WHEN {label} THEN 1 ELSE 0 END AS label, {as_of} AS as_of
              FROM {contact_t} c
              LEFT JOIN {company_t} co ON co.id = c.company_id
              {conv_join}
             WHERE c.org_id = %s {where_ids})"""  # noqa: S608  fixed names; values are parameters
    )
    params += [*base_params, org.pk, *ids_params]
    # Events in the lookback before each contact's as-of point, with their age in days. For
    # prediction the window is a constant, so the (org, contact, type, occurred_at) index serves it.
    age = sql["days"].format(a="b.as_of", b="e.occurred_at")
    since = f"AND e.occurred_at >= {sql['param_ts']}" if not training else ""
    machine = ", ".join(["%s"] * len(MACHINE_EVENT_TYPES))
    ctes.append(
        f"""ev AS (
            SELECT e.contact_id, e.type, {sql["path"]} AS path, {age} AS age
              FROM {event_t} e JOIN base b ON b.id = e.contact_id
             WHERE e.org_id = %s AND e.occurred_at < b.as_of {since}
               AND e.type NOT IN ({machine}))"""  # noqa: S608  fixed SQL; values are parameters
    )
    params += [org.pk, *([since_param] if since else []), *sorted(MACHINE_EVENT_TYPES)]

    aggregates, agg_params = [], []
    for days in WINDOWS:
        for event_type in spec.event_types:
            aggregates.append(f"COUNT(*) FILTER (WHERE type = %s AND age < {days})")
            agg_params.append(event_type)
        for path in spec.page_paths:
            aggregates.append(f"COUNT(*) FILTER (WHERE type = 'page_view' AND path = %s AND age < {days})")
            agg_params.append(path)
    aggregates += [
        f"MIN(age) FILTER (WHERE age < {LOOKBACK_DAYS})",
        "COUNT(*) FILTER (WHERE type = 'email_opened' AND age < 90)",
        "COUNT(*) FILTER (WHERE type = 'email_clicked' AND age < 90)",
    ]
    columns = ", ".join(f"{a} AS f{i}" for i, a in enumerate(aggregates))
    ctes.append(f"agg AS (SELECT contact_id, {columns} FROM ev GROUP BY contact_id)")  # noqa: S608  placeholders only
    params += agg_params
    first_seen = sql["days"].format(a="b.as_of", b="b.created_at")
    outer = ", ".join(f"agg.f{i}" for i in range(len(aggregates)))
    statement = (
        f"WITH {', '.join(ctes)} "  # noqa: S608  fixed SQL; values are parameters
        f"SELECT b.id, b.label, {first_seen}, b.job_title, b.country, b.size, b.industry, b.company_id, {outer} "
        "FROM base b LEFT JOIN agg ON agg.contact_id = b.id ORDER BY b.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def _seniority(job_title: str | None) -> str | None:
    for level, pattern in SENIORITY:
        if job_title and pattern.search(job_title):
            return level
    return None


def _matrix(rows: list[tuple], spec: FeatureSpec, *, training: bool) -> FeatureRows:
    names = spec.names
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(rows), len(names)), dtype=np.float64)
    y = np.zeros(len(rows), dtype=np.int64) if training else None
    n_counts = len(WINDOWS) * (len(spec.event_types) + len(spec.page_paths))
    ids = []
    for r, (contact_id, label, first_seen, job_title, country, size, industry, company_id, *aggs) in enumerate(rows):
        ids.append(contact_id)
        if training:
            y[r] = label
        # Counts come in the same order as the names' windowed block.
        matrix[r, :n_counts] = [a or 0 for a in aggs[:n_counts]]
        recency, opens, clicks = aggs[n_counts:]
        matrix[r, index["days_since_last_event"]] = LOOKBACK_DAYS if recency is None else max(0.0, float(recency))
        matrix[r, index["days_since_first_seen"]] = max(0.0, float(first_seen or 0))
        matrix[r, index["email_opens_90d"]] = opens or 0
        matrix[r, index["email_clicks_90d"]] = clicks or 0
        matrix[r, index["email_click_rate"]] = (clicks or 0) / opens if opens else 0.0
        matrix[r, index["company_size_log"]] = math.log1p(size) if size else 0.0
        matrix[r, index["has_company"]] = 1.0 if company_id else 0.0
        level = _seniority(job_title)
        if level:
            matrix[r, index[f"seniority:{level}"]] = 1.0
        if industry and f"industry:{industry}" in index:
            matrix[r, index[f"industry:{industry}"]] = 1.0
        if country and f"country:{country}" in index:
            matrix[r, index[f"country:{country}"]] = 1.0
    return FeatureRows(contact_ids=ids, names=names, X=matrix, y=y)
