"""The channel provider registry: who carries a message out of the system, per channel.

A provider is a small registered class with a ``name``, the ``channel`` it serves and
``send(message, session) -> provider_message_id``. The outbox sender calls it outside any
transaction, with ``message.idempotency_key`` as the dedup token the provider understands
(``Message-ID`` for email, ``Idempotency-Key`` for HTTP). It raises ``TransientError`` (tried
again after a backoff) or ``PermanentError`` (the message fails; ``hard_bounce`` also suppresses
the address). ``address(contact)`` says where a contact's message goes (``Message.to``; empty:
the contact cannot be reached on this channel). ``open_session()`` / ``close_session(session)``
bracket one batch of sends (one SMTP connection for a batch of email); the default is None.

Every module of this package is imported once, so a new provider is one file here (or any
module that applies ``@provider`` and is imported at startup).

Which provider serves a channel: ``settings.CHANNEL_PROVIDERS`` (``{"email": "email"}``), else
the first registered for the channel. Rates: ``settings.<CHANNEL>_RATE_PER_S`` (see
``channels_app.rate_limits``), else the provider's ``default_rate_per_s``.
"""

import importlib
import pkgutil
from typing import ClassVar

from django.conf import settings


class TransientError(Exception):
    """A failure that may pass (a 4xx reply, a dropped connection): try again later."""


class PermanentError(Exception):
    """A failure retrying cannot fix. ``hard_bounce``: the address does not exist (suppress it)."""

    def __init__(self, message: str, *, hard_bounce: bool = False):
        super().__init__(message)
        self.hard_bounce = hard_bounce


class Provider:
    """Base class. Subclasses set ``name`` and ``channel`` and implement ``send``."""

    name: ClassVar[str] = ""
    channel: ClassVar[str] = ""
    default_rate_per_s: ClassVar[float] = 0  # 0: no limit

    def address(self, contact) -> str:
        """Where ``contact``'s message goes on this channel ("" when it cannot be reached)."""
        return ""

    def addresses(self, contacts: list) -> list[str]:
        """``address`` of each contact, for a batch; override when an address costs a query."""
        return [self.address(contact) for contact in contacts]

    def open_session(self):
        """Whatever a batch of sends shares (a connection); passed to ``send``."""
        return None

    def close_session(self, session) -> None:
        """Releases what ``open_session`` opened; never raises."""

    def send(self, message, session=None) -> str:
        raise NotImplementedError

    def rate_per_s(self) -> float:
        """Messages per second this provider accepts from us (all workers together)."""
        return float(getattr(settings, f"{self.channel.upper()}_RATE_PER_S", self.default_rate_per_s))


_providers: dict[str, Provider] = {}
_discovered = False


def provider(cls: type[Provider]) -> type[Provider]:
    """Registers a provider class (one instance serves every send)."""
    if not cls.name or not cls.channel:
        raise ValueError(f"{cls.__name__} needs a name and a channel")
    _providers[cls.name] = cls()
    return cls


def providers() -> dict[str, Provider]:
    """Every registered provider by name, after importing the shipped ones."""
    global _discovered
    if not _discovered:
        import channels_app.providers as package

        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")  # each registers itself
        _discovered = True
    return dict(_providers)


def provider_for(channel: str) -> Provider | None:
    """The provider that sends ``channel`` messages, or None when none is installed."""
    registered = providers()
    chosen = getattr(settings, "CHANNEL_PROVIDERS", {}).get(channel)
    if chosen:
        return registered.get(chosen)
    return next((p for p in registered.values() if p.channel == channel), None)
