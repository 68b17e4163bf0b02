"""Social posts: the rendered ``text`` posted as the destination's account on a social network.

A ``SocialNetwork`` is a small registered class with a ``name`` and ``post(destination, text,
idempotency_key) -> post id``. ``settings.SOCIAL_PROVIDER`` picks one for every social message:
``console`` (the default of a fresh install: the post is logged, nothing leaves the system) or
``mastodon`` (``POST {url}/api/v1/statuses`` with the destination's access token). A network is
one class here; it raises the outbox's TransientError / PermanentError.
"""

import logging
from typing import ClassVar

from django.conf import settings

from channels_app.destinations import destination_for_message, destination_logged, destination_post
from channels_app.providers import PermanentError, Provider, provider

logger = logging.getLogger(__name__)


class SocialNetwork:
    """Base class. Subclasses set ``name`` and implement ``post``."""

    name: ClassVar[str] = ""

    def post(self, destination, text: str, idempotency_key: str) -> str:
        """Publishes ``text`` as ``destination``'s account; returns the network's id of the post.
        ``idempotency_key`` is the same on every attempt of one message."""
        raise NotImplementedError


_networks: dict[str, SocialNetwork] = {}


def network(cls: type[SocialNetwork]) -> type[SocialNetwork]:
    """Registers a social network (one instance serves every post)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    _networks[cls.name] = cls()
    return cls


def networks() -> dict[str, SocialNetwork]:
    """Every registered social network by name."""
    return dict(_networks)


@network
class ConsoleNetwork(SocialNetwork):
    """Logs the post instead of publishing it: what a fresh install (and development) uses."""

    name = "console"

    def post(self, destination, text: str, idempotency_key: str) -> str:
        logger.info(
            "social post network=console destination=%s key=%s text=%r", destination.slug, idempotency_key, text
        )
        return f"console:{idempotency_key}"


@network
class Mastodon(SocialNetwork):
    """Posts a status on the destination's Mastodon server (``url``, e.g. https://mastodon.social)
    with its access token (``secret``, scope ``write:statuses``). Mastodon keeps the
    ``Idempotency-Key`` for an hour and answers a repeat with the first status, so a resend after
    a dead sender does not post twice."""

    name = "mastodon"

    def post(self, destination, text: str, idempotency_key: str) -> str:
        if not destination.secret:
            raise PermanentError(f"destination: “{destination.slug}” has no access token.")
        response = destination_post(
            f"{destination.url.rstrip('/')}/api/v1/statuses",
            body={"status": text},
            headers={"Authorization": f"Bearer {destination.secret}"},
            idempotency_key=idempotency_key,
        )
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"the server's reply has no status id: {response.text[:300]}") from exc


@provider
class SocialPost(Provider):
    """Posts a social message's ``text`` through the network ``settings.SOCIAL_PROVIDER`` names."""

    name = "social"
    channel = "social"

    def send(self, message, session=None) -> str:
        chosen = getattr(settings, "SOCIAL_PROVIDER", "console")
        social = _networks.get(chosen)
        if social is None:
            raise PermanentError(
                f"SOCIAL_PROVIDER: “{chosen}” is not a social network ({', '.join(sorted(_networks))})."
            )
        destination = destination_for_message(message)
        text = (message.content or {}).get("text", "")
        if not text:
            raise PermanentError("content: a social post needs a text.")
        if logged := destination_logged(destination, message):
            return logged
        return social.post(destination, text, message.idempotency_key)
