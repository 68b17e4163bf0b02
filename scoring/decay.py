# ruff: noqa: S608  the SQL names only the models' own tables; every value is a parameter.
"""Decay: a contact's score drifts back toward its model's base while the contact does nothing.

Once per window without activity (``ScoringModel.decay_window_days``, 30 by default) a contact's
distance from the base is multiplied by ``decay_factor`` (0.95): ``(score − base) × (1 − factor)``
is taken off (docs/scoring.md). It is set-based SQL: on PostgreSQL one statement per model (per
id range of its contacts, decayed at once on ``SCORING_DECAY_WORKERS`` connections) updates the
scores, writes one ``decay`` ledger row per decayed contact and, for the default model, mirrors
the new score on ``Contact.score``; SQLite (development, tests) does the same in a few
statements.

The arithmetic is integer and exact: the factor is read as a fraction p/q (0.95 = 19/20) and the
new distance is ``(score − base) × p / q`` truncated toward zero, so the score is rounded toward
the base. Repeated decay therefore reaches the base in finitely many steps and never crosses it.
A score *below* the base (negative rules, e.g. an unsubscribe) decays upward the same way: the
formula is symmetric, and a contact who did nothing for months should be neither a hot nor a
cold lead any more. A contact at the base has nothing to decay and gets no ledger row.

A decay that takes a score across a threshold records the crossing as the scoring path does
(``rules.crossings_record``: a ``score_threshold_crossed`` event each, actions for upward ones).

Who decays: contacts whose ``last_activity_at`` (or, never active, ``created_at``) is older than
the window, and whose score has not decayed within the window: ``ContactScore.decayed_at``, set
by the statement that decays it, is the "once per window" marker (it is the time of the score's
newest ``decay`` ledger row).
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from fractions import Fraction

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from marketing.consent_providers import consent_allowed_sql
from marketing.models import Contact
from scoring.models import ContactScore, ScoreLedger, ScoringModel
from scoring.rules import PROFILING, crossings_record

log = logging.getLogger(__name__)

_CS = ContactScore._meta.db_table
_LEDGER = ScoreLedger._meta.db_table
_CONTACT = Contact._meta.db_table
DECAY = ScoreLedger.Reason.DECAY.value


def scores_decay(*, model: ScoringModel, now: datetime | None = None, workers: int | None = None) -> int:
    """Decays the scores of ``model``'s contacts inactive past its window; returns how many decayed.

    Safe to run any number of times a day: a contact decays at most once per window. A model that
    is inactive, has a factor of 1 (or more) or a window of 0 days does not decay.

    On PostgreSQL, outside a transaction, the contacts are split into ``workers`` parts
    (``settings.SCORING_DECAY_WORKERS``; by contact id) decayed at once, each on its own
    connection and in its own transaction. A part that fails leaves the others done; the next
    run decays what it left (nobody twice: the once-per-window marker is per contact). Inside a
    caller's transaction, or on SQLite, one transaction does it all.
    """
    now = now or timezone.now()
    if not model.active or model.decay_factor >= 1 or model.decay_window_days <= 0:
        return 0
    parts = max(1, workers or settings.SCORING_DECAY_WORKERS)
    if parts == 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return _decay_part(model, now, ids=None)
    with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="scores-decay") as pool:
        futures = [pool.submit(_decay_part_in_thread, model, now, ids) for ids in _id_ranges(model, parts)]
    return sum(future.result() for future in futures)  # the first part's error, if any, raises


def _id_ranges(model: ScoringModel, parts: int) -> list[tuple[int, int]]:
    """The model's scored contact ids cut into ``parts`` ranges of equal width: each part reads
    only its range of the score rows and contacts (the tables are in id order, as contacts are
    created)."""
    bounds = ContactScore.objects.filter(model=model).aggregate(first=Min("contact_id"), last=Max("contact_id"))
    if bounds["first"] is None:
        return []
    width = (bounds["last"] - bounds["first"]) // parts + 1
    return [(bounds["first"] + k * width, bounds["first"] + (k + 1) * width - 1) for k in range(parts)]


def _decay_part_in_thread(model: ScoringModel, now: datetime, ids: tuple[int, int]) -> int:
    """A part in a worker thread: Django gives the thread its own connection, closed after."""
    from marketing.tenancy import org_context

    try:
        with org_context(model.org):
            return _decay_part(model, now, ids=ids)
    finally:
        connection.close()


def _decay_part(model: ScoringModel, now: datetime, *, ids: tuple[int, int] | None) -> int:
    """Decays the contacts whose id is in ``ids`` (first, last; None: all), in one transaction,
    with their threshold crossings."""
    # The factor as a small exact fraction, so PostgreSQL and SQLite round the same way.
    factor = Fraction(str(max(model.decay_factor, 0.0))).limit_denominator(1_000_000)
    first, last = ids or (-(2**63), 2**63 - 1)
    params = {
        "model": model.pk,
        "org": model.org_id,
        "base": model.base,
        "p": factor.numerator,
        "q": factor.denominator,
        "cutoff": now - timedelta(days=model.decay_window_days),
        "now": now,
        "decay": DECAY,
        "first": first,
        "last": last,
    }
    band_sql, band_params = _band_case("new_score", model.thresholds)
    params.update(band_params)
    # A contact without profiling consent (as the org's regime has it) is not scored, decay included.
    consent_sql, consent_params = consent_allowed_sql(org=model.org, purpose=PROFILING, column="cs.contact_id")
    params.update(consent_params)
    eligible = _ELIGIBLE.replace("__CONSENT__", consent_sql)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            decayed, changes = _decay_postgresql(params, band_sql, eligible, mirror=model.is_default)
        else:
            decayed, changes = _decay_portable(params, band_sql, eligible, mirror=model.is_default)
        # A decay that takes a score below a threshold is a crossing like any other.
        crossings_record(model=model, changes=changes, cause=f"decay:{now.isoformat()}", now=now)
    return decayed


def _band_case(column: str, thresholds: list) -> tuple[str, dict]:
    """SQL naming the highest threshold ``column`` reaches ('' below the lowest), and its params."""
    bands = sorted(
        (t for t in thresholds or [] if isinstance(t, dict) and isinstance(t.get("score"), int | float)),
        key=lambda t: t["score"],
        reverse=True,
    )
    if not bands:
        return "''", {}
    params, whens = {}, []
    for i, band in enumerate(bands):
        params[f"band_score_{i}"] = band["score"]
        params[f"band_name_{i}"] = str(band.get("name", ""))[:50]
        whens.append(f"WHEN {column} >= %(band_score_{i})s THEN %(band_name_{i})s")
    return f"CASE {' '.join(whens)} ELSE '' END", params


# The contacts to decay with their current and new score. The join on contacts is written so
# PostgreSQL can hash it (no per-row index probes for 1M contacts); the integer division
# truncates toward zero on both databases.
_ELIGIBLE = f"""
    SELECT cs.id, cs.contact_id, cs.score AS old_score,
           %(base)s + ((cs.score - %(base)s)::bigint * %(p)s / %(q)s)::integer AS new_score
    FROM {_CS} cs
    JOIN {_CONTACT} c ON c.id = cs.contact_id AND c.org_id = %(org)s AND c.id BETWEEN %(first)s AND %(last)s
    WHERE cs.model_id = %(model)s
      AND cs.score <> %(base)s
      AND cs.contact_id BETWEEN %(first)s AND %(last)s
      AND COALESCE(c.last_activity_at, c.created_at) < %(cutoff)s
      AND (cs.decayed_at IS NULL OR cs.decayed_at <= %(cutoff)s)
      AND __CONSENT__
"""


def _decay_postgresql(
    params: dict, band_sql: str, eligible: str, *, mirror: bool
) -> tuple[int, list[tuple[int, int, int]]]:
    """One statement: update the scores, append the ledger rows (and mirror on the contacts);
    returns how many decayed and, for those whose band changed, (contact, before, after).

    ``cs.score = e.old_score`` makes a row that an event scored concurrently (after this
    statement's snapshot) drop out on PostgreSQL's re-check instead of decaying from a stale
    score, so each ledger row's delta is exactly the change made; that contact was active anyway.
    The statement's result is one row with the count (contact NULL), then the band changes.
    """
    mirror_cte = (
        f""", mirrored AS (
            UPDATE {_CONTACT} mc SET score = d.score FROM d
            WHERE mc.id = d.contact_id AND mc.id BETWEEN %(first)s AND %(last)s
        )"""
        if mirror
        else ""
    )
    sql = f"""
        WITH e AS MATERIALIZED ({eligible}),
        d AS (
            UPDATE {_CS} cs
            SET score = e.new_score, band = {band_sql.replace("new_score", "e.new_score")}, updated_at = %(now)s,
                decayed_at = %(now)s
            FROM e
            WHERE cs.id = e.id AND cs.score = e.old_score AND cs.contact_id BETWEEN %(first)s AND %(last)s
            RETURNING cs.contact_id, cs.score, cs.band, cs.score - e.old_score AS delta, e.old_score
        ){mirror_cte},
        ledger AS (
            INSERT INTO {_LEDGER} (org_id, contact_id, model_id, delta, score_after, reason, note, at)
            SELECT %(org)s, d.contact_id, %(model)s, d.delta, d.score, %(decay)s, '', %(now)s FROM d
            ORDER BY d.contact_id
        )
        SELECT NULL, count(*), NULL FROM d
        UNION ALL
        SELECT d.contact_id, d.old_score, d.score FROM d
        WHERE d.band <> {band_sql.replace("new_score", "d.old_score")}
    """
    with connection.cursor() as cursor:
        # Hash joins with room for a million contacts' hash tables (about 50 MB each), for this
        # statement only: on stale estimates (a run just rewrote a million rows) the planner may
        # pick a nested loop over them, which would be quadratic.
        cursor.execute("SELECT current_setting('work_mem'), current_setting('enable_nestloop')")
        saved = cursor.fetchone()
        # The commit need not wait for a million rows' WAL to reach the disk (~9 s here): the
        # statement is one transaction and decays once per window, so if the server crashes
        # before the WAL is flushed, the whole decay is lost, never half of it, and the next
        # run does it again.
        cursor.execute(
            "SET LOCAL work_mem = '256MB'; SET LOCAL enable_nestloop = off; SET LOCAL synchronous_commit = off"
        )
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        cursor.execute("SELECT set_config('work_mem', %s, true), set_config('enable_nestloop', %s, true)", list(saved))
    decayed = next(count for contact, count, _ in rows if contact is None)
    return decayed, [row for row in rows if row[0] is not None]


def _decay_portable(
    params: dict, band_sql: str, eligible: str, *, mirror: bool
) -> tuple[int, list[tuple[int, int, int]]]:
    """SQLite (and any other database): the ledger rows first, then the scores from them; returns
    how many decayed and every decayed (contact, before, after).

    The new ledger rows are told apart by their ``at`` (this run's ``now``); a second run with
    the same ``now`` inserts nothing (they are newer than the cutoff) and rewrites the same
    scores, so it is harmless.
    """
    eligible = eligible.replace("::bigint", "").replace("::integer", "")
    # Datetimes as the backend stores them (SQLite: naive UTC text), so ``l.at = now`` matches.
    params = {
        k: connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v for k, v in params.items()
    }
    from_run = f"""
        SELECT l.score_after FROM {_LEDGER} l
        WHERE l.contact_id = {{table}}.{{column}} AND l.model_id = %(model)s
          AND l.reason = %(decay)s AND l.at = %(now)s
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_LEDGER} (org_id, contact_id, model_id, delta, score_after, reason, note, at)
            SELECT %(org)s, e.contact_id, %(model)s, e.new_score - e.old_score, e.new_score, %(decay)s, '', %(now)s
            FROM ({eligible}) e
            """,
            params,
        )
        decayed = cursor.rowcount
        if not decayed:
            return 0, []
        cursor.execute(
            f"SELECT contact_id, score_after - delta, score_after FROM {_LEDGER} "
            "WHERE model_id = %(model)s AND reason = %(decay)s AND at = %(now)s",
            params,
        )
        changes = [tuple(row) for row in cursor.fetchall()]
        run = from_run.format(table=_CS, column="contact_id")
        cursor.execute(
            f"""
            UPDATE {_CS} SET score = ({run}), updated_at = %(now)s, decayed_at = %(now)s
            WHERE model_id = %(model)s AND EXISTS ({run})
            """,
            params,
        )
        cursor.execute(
            f"UPDATE {_CS} SET band = {band_sql.replace('new_score', 'score')} "
            f"WHERE model_id = %(model)s AND EXISTS ({run})",
            params,
        )
        if mirror:
            run = from_run.format(table=_CONTACT, column="id")
            cursor.execute(
                f"UPDATE {_CONTACT} SET score = ({run}) WHERE org_id = %(org)s AND EXISTS ({run})",
                params,
            )
    return decayed, changes


def scores_decay_all_models(*, now: datetime | None = None) -> int:
    """Decays every active scoring model of every organisation (the daily job); returns the
    number of contacts decayed. Each model runs as its org, in its own transaction.

    Which models are active is a look across orgs: it reads through the system alias
    (docs/tenancy.md, "Workers"); each model is then read again and decayed as the app role, in
    its org's context."""
    from marketing.database_roles import system_alias
    from marketing.models import Organization
    from marketing.tenancy import org_context

    now = now or timezone.now()
    active = list(
        ScoringModel.objects.with_scopes_disabled()
        .using(system_alias())
        .filter(active=True)
        .order_by("pk")
        .values_list("pk", "org_id")
    )
    orgs = Organization.objects.in_bulk({org_id for _, org_id in active})
    decayed = 0
    for pk, org_id in active:
        with org_context(orgs[org_id]):
            model = ScoringModel.objects.select_related("org").filter(pk=pk, active=True).first()
            if model is None:  # deleted or switched off since
                continue
            count = scores_decay(model=model, now=now)
        log.info("scoring.decay org=%s model=%s decayed=%s", model.org_id, model.pk, count)
        decayed += count
    return decayed
