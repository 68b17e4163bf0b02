"""Mail to people who are not contacts (invitations to teammates), sent by whoever registers here.

``marketing`` is the ground floor and cannot import the outbox; ``channels_app`` registers its
``notice_enqueue`` in its ``AppConfig.ready``, so this mail is transactional, has no contact,
skips consent but not suppression, and goes through the same outbox as every other message.
"""

from collections.abc import Callable

_senders: list[Callable] = []


def notice_sender_register(sender: Callable) -> None:
    """Registers the function that queues a notice: called with keyword arguments ``org``, ``to``,
    ``subject``, ``text``, ``key`` (idempotency) and ``user`` (the recipient, or None)."""
    if sender not in _senders:
        _senders.append(sender)


def notice_send(*, org, to: str, subject: str, text: str, key: str, user=None):
    """Queues one notice through the registered sender and returns what it made (the outbox row)."""
    if not _senders:
        raise RuntimeError("No notice sender is registered: is channels_app in INSTALLED_APPS?")
    return _senders[-1](org=org, to=to, subject=subject, text=text, key=key, user=user)
