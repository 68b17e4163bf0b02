"""The channel provider registry: who carries a message out of the system, per channel.

A provider is a small registered class with a ``name``, the ``channel`` it serves and one
method, ``send(message) -> provider_message_id``. It is called by the outbox sender outside any
transaction, with ``message.idempotency_key`` as the dedup token the provider understands
(``Message-ID`` for email). It raises ``TransientError`` (tried again after a backoff) or
``PermanentError`` (the message fails; ``hard_bounce`` also suppresses the address).

Which provider serves a channel: ``settings.CHANNEL_PROVIDERS`` (``{"email": "email"}``), else
the first registered for the channel. Rates: ``settings.<CHANNEL>_RATE_PER_S`` (see
``channels_app.rate_limits``), else the provider's ``default_rate_per_s``.
"""

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

    def send(self, message) -> str:
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
        from channels_app.providers import email  # noqa: F401  registers itself

        _discovered = True
    return dict(_providers)


def provider_for(channel: str) -> Provider | None:
    """The provider that sends ``channel`` messages, or None when none is installed."""
    registered = providers()
    chosen = getattr(settings, "CHANNEL_PROVIDERS", {}).get(channel)
    if chosen:
        return registered.get(chosen)
    return next((p for p in registered.values() if p.channel == channel), None)
