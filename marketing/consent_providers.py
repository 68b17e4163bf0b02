"""Consent, as the apps below ``compliance`` ask about it: "may purpose P be acted on for these
contacts in this organisation?", as a set of ids and as a queryset filter that runs in SQL.

``marketing``, ``workflows`` and ``scoring`` may not import ``compliance``; it registers its
provider here from its ``AppConfig.ready`` (``compliance.consent_provider``). With no provider
registered (an installation without ``compliance``) every purpose is allowed, as before consent
was enforced. The purposes are ``compliance.models.Purpose``'s values: ``email_marketing``,
``sms``, ``push``, ``tracking``, ``profiling``, ``sale_sharing``.
"""

from collections.abc import Iterable

from django.db.models import Q


class ConsentProvider:
    """What a consent provider answers. Each org chooses per purpose an opt-in regime (a grant is
    needed) or an opt-out one (allowed until withdrawn)."""

    def allowed_ids(self, *, org, contact_ids: Iterable[int], purpose: str) -> set[int]:
        """The contacts among ``contact_ids`` for whom ``purpose`` may be acted on: one query."""
        raise NotImplementedError

    def allowed_q(self, *, org, purpose: str, field: str = "pk") -> Q:
        """A filter keeping the rows whose ``field`` (a contact id) may be acted on for
        ``purpose``: a subquery, so a set-based statement applies it in SQL."""
        raise NotImplementedError

    def allowed_sql(self, *, org, purpose: str, column: str) -> tuple[str, dict]:
        """The same filter as raw SQL over ``column`` (a contact id), with its named parameters
        (``%(consent_…)s``), for statements written by hand."""
        raise NotImplementedError

    def allows_unknown(self, *, org, purpose: str) -> bool:
        """Whether ``purpose`` may be acted on for someone with no consent on record at all (an
        anonymous visitor): only under an opt-out regime."""
        raise NotImplementedError

    def choices_record(self, *, org, contact, choices: dict[str, bool], source: str, proof: dict) -> int:
        """Records what a call says about each purpose (``{purpose: granted}``: a browser's
        Global Privacy Control signal, a consent banner's answers) where the contact's state does
        not already say it; returns how many were recorded. A grant never overrides a withdrawal
        the person made elsewhere (see ``compliance.services.consent_choices_record``)."""
        raise NotImplementedError


_providers: list[ConsentProvider] = []


def consent_provider_register(provider: ConsentProvider) -> None:
    """Registers the provider that answers (the last registered one does)."""
    if provider not in _providers:
        _providers.append(provider)


def _provider() -> ConsentProvider | None:
    return _providers[-1] if _providers else None


def consent_allowed_ids(*, org, contact_ids: Iterable[int], purpose: str) -> set[int]:
    """The contacts among ``contact_ids`` for whom ``purpose`` may be acted on."""
    provider = _provider()
    if provider is None:
        return set(contact_ids)
    return provider.allowed_ids(org=org, contact_ids=contact_ids, purpose=purpose)


def consent_allowed_q(*, org, purpose: str, field: str = "pk") -> Q:
    """A queryset filter keeping the rows whose contact (``field``) may be acted on for ``purpose``."""
    provider = _provider()
    if provider is None:
        return Q()
    return provider.allowed_q(org=org, purpose=purpose, field=field)


def consent_allowed_sql(*, org, purpose: str, column: str) -> tuple[str, dict]:
    """A raw SQL condition keeping the rows whose ``column`` (a contact id) may be acted on for
    ``purpose``, and its named parameters; ``TRUE`` when no provider is registered."""
    provider = _provider()
    if provider is None:
        return "TRUE", {}
    return provider.allowed_sql(org=org, purpose=purpose, column=column)


def consent_allows_unknown(*, org, purpose: str) -> bool:
    """Whether ``purpose`` may be acted on for a person with no consent on record (opt-out regime)."""
    provider = _provider()
    return True if provider is None else provider.allows_unknown(org=org, purpose=purpose)


def consent_choices_record(*, org, contact, choices: dict[str, bool], source: str, proof: dict) -> int:
    """Records the contact's choices of purposes (none when no provider is registered)."""
    provider = _provider()
    if provider is None:
        return 0
    return provider.choices_record(org=org, contact=contact, choices=choices, source=source, proof=proof)
