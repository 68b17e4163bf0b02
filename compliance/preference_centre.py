"""What the preference centre reads and writes: a contact's purposes and topics.

A purpose's state is its newest consent record; without one, what the org's regime allows before
anyone asks (opt-in: off; opt-out: on; by default messages need a grant, and tracking, profiling
and sharing run until an opt-out). A
topic's state is its newest ``TopicChoice``; without one, the contact follows it (a topic only
narrows what a granted purpose lets through). Every change the person makes is appended, as a
consent record or a topic choice with source ``preference_centre`` and the proof (address, user
agent, the message whose link was followed); nothing is appended for what did not change.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from compliance.models import ConsentRecord, Purpose, SubscriptionType, TopicChoice
from compliance.selectors import consent_allowed, consent_regimes
from compliance.services import consent_record
from marketing.identity import merge_handler
from marketing.models import Contact, Organization

SOURCE = "preference_centre"
# The purposes that send messages: "Unsubscribe from all" withdraws these and leaves every topic.
MESSAGE_PURPOSES = (Purpose.EMAIL_MARKETING, Purpose.SMS, Purpose.PUSH)


@dataclass(frozen=True)
class PurposeState:
    """One purpose as the centre shows it: whether it is on, and whether the person (or a form,
    an import…) ever said so (False: the org's default)."""

    purpose: str
    label: str
    granted: bool
    recorded: bool


@dataclass(frozen=True)
class TopicState:
    """One active topic as the centre shows it: whether the contact follows it."""

    topic: SubscriptionType
    subscribed: bool


@dataclass(frozen=True)
class PreferenceChange:
    """One thing a save changed: a purpose or a topic (its name), and the new state."""

    kind: str  # "purpose" or "topic"
    name: str
    on: bool


# --- reads ------------------------------------------------------------------------------------------


def purpose_states(*, org: Organization, contact: Contact | None) -> list[PurposeState]:
    """Every purpose of ``compliance.models.Purpose`` for the contact, in that order: whether the
    org's regime lets it act on the contact's newest record (none: the regime's default; every
    default for ``None``, a preview's sample contact). Two queries."""
    newest: dict[str, bool] = {}
    records = (
        ConsentRecord.objects.filter(org=org, contact=contact)
        .order_by("purpose", "-recorded_at", "-id")
        .values_list("purpose", "granted")
        if contact is not None
        else []
    )
    for purpose, granted in records:
        newest.setdefault(purpose, granted)
    regimes = consent_regimes(org=org)
    return [
        PurposeState(
            purpose=purpose.value,
            label=purpose.label,
            granted=consent_allowed(state=newest.get(purpose.value), regime=regimes[purpose.value]),
            recorded=purpose.value in newest,
        )
        for purpose in Purpose
    ]


def topics_left(*, org: Organization, contact_ids: Iterable[int], topic_ids: Iterable[int]) -> set[tuple[int, int]]:
    """(contact id, topic id) pairs whose newest choice left the topic: what the send guard
    blocks. One query for a whole send batch."""
    left: set[tuple[int, int]] = set()
    seen: set[tuple[int, int]] = set()
    rows = (
        TopicChoice.objects.filter(org=org, contact_id__in=list(contact_ids), topic_id__in=list(topic_ids))
        .order_by("contact_id", "topic_id", "-recorded_at", "-id")
        .values_list("contact_id", "topic_id", "subscribed")
    )
    for contact_id, topic_id, subscribed in rows:
        if (contact_id, topic_id) in seen:
            continue  # the first row of a pair is its newest
        seen.add((contact_id, topic_id))
        if not subscribed:
            left.add((contact_id, topic_id))
    return left


def topic_states(*, org: Organization, contact: Contact | None) -> list[TopicState]:
    """The org's active topics, by name, each with whether the contact follows it (every topic
    for ``None``, a preview's sample contact). Two queries."""
    topics = list(SubscriptionType.objects.filter(org=org, active=True).order_by("name"))
    left = (
        {topic_id for _, topic_id in topics_left(org=org, contact_ids=[contact.pk], topic_ids=[t.pk for t in topics])}
        if contact
        else set()
    )
    return [TopicState(topic=t, subscribed=t.pk not in left) for t in topics]


# --- writes -----------------------------------------------------------------------------------------


def topic_choice_record(
    *,
    org: Organization,
    contact: Contact,
    topic: SubscriptionType,
    subscribed: bool,
    source: str,
    proof: dict | None = None,
    at: datetime | None = None,
) -> TopicChoice:
    """Appends the contact joining (``subscribed``) or leaving a topic; the newest choice of a
    topic is its state, and the send guard blocks a message of a topic the contact left."""
    return TopicChoice.objects.create(
        org=org,
        contact=contact,
        topic=topic,
        subscribed=subscribed,
        source=source,
        proof=proof or {},
        recorded_at=at or timezone.now(),
    )


def preferences_save(
    *,
    org: Organization,
    contact: Contact,
    purposes: dict[str, bool],
    topics: dict[int, bool],
    proof: dict,
    source: str = SOURCE,
) -> list[PreferenceChange]:
    """Records what the person chose in the centre: ``purposes`` (purpose: on) and ``topics``
    (topic id: followed; ids of other orgs or inactive topics are ignored). Only changes are
    appended, as consent records and topic choices with ``source`` and ``proof``; the changes
    are returned (none: nothing was written). One transaction."""
    unknown = set(purposes) - set(Purpose.values)
    if unknown:
        raise ValueError(f"purposes: unknown purpose {sorted(unknown)[0]!r}.")
    now = timezone.now()
    changes: list[PreferenceChange] = []
    with transaction.atomic():
        # The contact row is the lock: two saves of one centre at once append each change once.
        Contact.objects.select_for_update().filter(org=org, pk=contact.pk).first()
        for state in purpose_states(org=org, contact=contact):
            wanted = purposes.get(state.purpose)
            if wanted is None or wanted == state.granted:
                continue
            consent_record(
                org=org, contact=contact, purpose=state.purpose, granted=wanted, source=source, proof=proof, at=now
            )
            changes.append(PreferenceChange("purpose", state.label, wanted))
        for state in topic_states(org=org, contact=contact):
            wanted = topics.get(state.topic.pk)
            if wanted is None or wanted == state.subscribed:
                continue
            topic_choice_record(
                org=org, contact=contact, topic=state.topic, subscribed=wanted, source=source, proof=proof, at=now
            )
            changes.append(PreferenceChange("topic", state.topic.name, wanted))
    return changes


def preferences_unsubscribe_all(
    *, org: Organization, contact: Contact, proof: dict, source: str = SOURCE
) -> list[PreferenceChange]:
    """Unsubscribe from all: withdraws every purpose that sends messages (email marketing, SMS,
    push) and leaves every active topic, appending only what was still on. Tracking, profiling
    and sharing keep their state (the centre has their own switches)."""
    return preferences_save(
        org=org,
        contact=contact,
        purposes={purpose.value: False for purpose in MESSAGE_PURPOSES},
        topics={state.topic.pk: False for state in topic_states(org=org, contact=contact)},
        proof=proof,
        source=source,
    )


@merge_handler
def topic_choices_follow_merge(org: Organization, kept: Contact, gone: Contact) -> int:
    """A merged contact's topic choices move to the kept one: both histories together, the
    newest choice of each topic wins, as with consent."""
    return TopicChoice.objects.filter(org=org, contact=gone).update(contact=kept)
