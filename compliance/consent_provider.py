"""The consent provider ``compliance`` registers for the apps below it
(``marketing.consent_providers``): the org's regime per purpose applied to ``ConsentState``."""

from collections.abc import Iterable

from django.db.models import Q

from compliance import selectors, services
from compliance.models import Regime
from marketing.consent_providers import ConsentProvider


class RegimeConsentProvider(ConsentProvider):
    """Opt-in: allowed for contacts whose newest record grants the purpose; opt-out: allowed
    unless the newest record withdraws it."""

    def allowed_ids(self, *, org, contact_ids: Iterable[int], purpose: str) -> set[int]:
        return selectors.consent_allowed_ids(org=org, contact_ids=contact_ids, purpose=purpose)

    def allowed_q(self, *, org, purpose: str, field: str = "pk") -> Q:
        return selectors.consent_allowed_q(org=org, purpose=purpose, field=field)

    def allowed_sql(self, *, org, purpose: str, column: str) -> tuple[str, dict]:
        return selectors.consent_allowed_sql(org=org, purpose=purpose, column=column)

    def allows_unknown(self, *, org, purpose: str) -> bool:
        return selectors.consent_regime(org=org, purpose=purpose) == Regime.OPT_OUT

    def choices_record(self, *, org, contact, choices: dict[str, bool], source: str, proof: dict) -> int:
        return services.consent_choices_record(org=org, contact=contact, choices=choices, source=source, proof=proof)
