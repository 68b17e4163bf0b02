"""Read queries of the compliance app: the current consent state, derived from the records, and
what each organisation's regimes make of it."""

from collections.abc import Iterable

from django.db.models import Q

from compliance.models import DEFAULT_REGIMES, ConsentRecord, ConsentRegime, ConsentState, Purpose, Regime
from marketing.models import Organization


def consent_states(*, org: Organization, contact_ids: Iterable[int], purpose: str) -> dict[int, bool]:
    """Per contact, whether its newest record for ``purpose`` grants it (contacts without any
    record are left out: they never said). One query for a whole send batch."""
    states: dict[int, bool] = {}
    records = (
        ConsentRecord.objects.filter(org=org, purpose=purpose, contact_id__in=list(contact_ids))
        .order_by("contact_id", "-recorded_at", "-id")
        .values_list("contact_id", "granted")
    )
    for contact_id, granted in records:
        states.setdefault(contact_id, granted)  # the first row of a contact is its newest
    return states


def consent_given(*, org: Organization, contact_id: int, purpose: str) -> bool:
    """Whether the contact's newest record for ``purpose`` grants it."""
    return consent_states(org=org, contact_ids=[contact_id], purpose=purpose).get(contact_id, False)


def consent_regimes(*, org: Organization) -> dict[str, str]:
    """The org's regime per purpose (``opt_in`` or ``opt_out``); the defaults when it set none."""
    row = ConsentRegime.objects.filter(org=org).first()
    return {purpose: (row.regime(purpose) if row else DEFAULT_REGIMES[purpose]) for purpose in Purpose.values}


def consent_regime(*, org: Organization, purpose: str) -> str:
    """The org's regime for one purpose."""
    return consent_regimes(org=org)[purpose]


def double_opt_in(*, org: Organization) -> bool:
    """Whether consent ticked on the org's public forms waits for the person's confirmation."""
    row = ConsentRegime.objects.filter(org=org).only("double_opt_in").first()
    return True if row is None else row.double_opt_in


def consent_allowed(*, state: bool | None, regime: str) -> bool:
    """The rule itself: opt-in needs a grant; opt-out allows unless withdrawn."""
    return state is True if regime == Regime.OPT_IN else state is not False


def consent_allowed_q(*, org: Organization, purpose: str, field: str = "pk") -> Q:
    """A filter on a contact id ``field``: under opt-in, contacts whose state grants ``purpose``;
    under opt-out, contacts whose state does not withdraw it. A subquery on ``ConsentState``."""
    if consent_regime(org=org, purpose=purpose) == Regime.OPT_IN:
        granted = ConsentState.objects.filter(org=org, purpose=purpose, granted=True).values("contact_id")
        return Q(**{f"{field}__in": granted})
    withdrawn = ConsentState.objects.filter(org=org, purpose=purpose, granted=False).values("contact_id")
    return ~Q(**{f"{field}__in": withdrawn})


def consent_allowed_sql(*, org: Organization, purpose: str, column: str) -> tuple[str, dict]:
    """``consent_allowed_q`` as raw SQL over ``column``, with named parameters."""
    opt_in = consent_regime(org=org, purpose=purpose) == Regime.OPT_IN
    states = (
        f"SELECT s.contact_id FROM {ConsentState._meta.db_table} s WHERE s.org_id = %(consent_org)s "  # noqa: S608
        f"AND s.purpose = %(consent_purpose)s AND {'' if opt_in else 'NOT '}s.granted"
    )
    return f"{column} {'IN' if opt_in else 'NOT IN'} ({states})", {"consent_org": org.pk, "consent_purpose": purpose}


def consent_allowed_ids(*, org: Organization, contact_ids: Iterable[int], purpose: str) -> set[int]:
    """The contacts among ``contact_ids`` for whom ``purpose`` may be acted on: one query."""
    ids = set(contact_ids)
    if not ids:
        return set()
    regime = consent_regime(org=org, purpose=purpose)
    states = dict(
        ConsentState.objects.filter(org=org, purpose=purpose, contact_id__in=ids).values_list("contact_id", "granted")
    )
    return {pk for pk in ids if consent_allowed(state=states.get(pk), regime=regime)}
