"""Channels' personal data about a contact: the messages sent to it (rendered bodies, addresses),
its push subscriptions, and suppressions of its addresses."""

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from marketing import erased_identities
from marketing.models import Contact
from marketing.personal_data import ContactRowsSource, PersonalDataSource, personal_data_source, plain_rows

UNSENT = ("queued", "held", "sending")


@personal_data_source
class Messages(PersonalDataSource):
    """Messages to the contact, and mail to its address without a contact (notices).

    Erasure deletes those not sent yet (they must not go out) and keeps the others for the
    campaigns' figures with nothing of the person left: no contact, address, body or reasons."""

    name = "messages"
    description = "Messages sent (or queued) to the contact: channel, address, rendered content, status history."
    models = ("channels_app.Message",)
    order = -5  # before the runs and events they may point at

    def queryset(self, contact: Contact) -> QuerySet:
        from channels_app.models import Message

        # ``to`` may be encrypted (an SMS's phone) and allows no text lookup; an email stays plain.
        to_address = Q(channel="email", to_text__iexact=contact.email) if contact.email else Q(pk__in=[])
        return (
            Message._base_manager.filter(org_id=contact.org_id)
            .annotate(to_text=Cast("to", TextField()))
            .filter(Q(contact=contact) | to_address)
        )

    def mentions(self, contact: Contact) -> QuerySet:
        """Messages to someone else that name the contact: alerts to reps ("Overdue lead: Jane Doe
        <jane@…>"), Slack posts. Only those without a contact: a namesake's own mail is theirs."""
        from channels_app.models import Message

        names = [value for value in (contact.email, f"{contact.first_name} {contact.last_name}".strip()) if value]
        if not names:
            return Message._base_manager.none()
        mention = Q()
        for value in names:
            mention |= Q(content_text__icontains=value)
        return (
            Message._base_manager.filter(org_id=contact.org_id, contact__isnull=True)
            .annotate(content_text=Cast("content", TextField()))
            .filter(mention)
        )

    def export(self, contact: Contact) -> list[dict]:
        # Alerts about the contact sent to others are the organisation's, not the person's: not exported.
        return plain_rows(self.queryset(contact).order_by("pk"))

    def erase(self, contact: Contact) -> None:
        self.mentions(contact).exclude(status__in=UNSENT).update(content={}, error="")
        self.mentions(contact).filter(status__in=UNSENT).delete()
        messages = self.queryset(contact)
        messages.filter(status__in=UNSENT).delete()
        for message in messages.only("pk", "status_history"):
            history = [{"status": step.get("status"), "at": step.get("at")} for step in message.status_history or []]
            type(message)._base_manager.filter(pk=message.pk).update(
                contact=None, to="", content={}, error="", status_history=history
            )


@personal_data_source
class PushSubscriptions(ContactRowsSource):
    """The contact's browsers subscribed to web push (endpoint, keys, user agent)."""

    name = "push_subscriptions"
    description = "The contact's browsers subscribed to web push: endpoint, keys, user agent."
    model = "channels_app.PushSubscription"


@personal_data_source
class Suppressions(PersonalDataSource):
    """Suppressions of the contact's email and phone. Erasure replaces them with one row per
    channel whose address is the keyed hash (reason ``erased``): the send guard still blocks
    the address, and nothing readable of it stays."""

    name = "suppressions"
    description = "The contact's addresses nothing is sent to (bounces, complaints, STOP), and why."
    models = ("channels_app.Suppression",)

    def addresses(self, contact: Contact) -> dict[str, tuple[str, str]]:
        """Per channel, the (kind, address) of the contact's that suppressions name."""
        found = {}
        if contact.email:
            found["email"] = (erased_identities.EMAIL, contact.email.strip().lower())
        if contact.phone:
            found["sms"] = (erased_identities.PHONE, contact.phone)
        return found

    def queryset(self, contact: Contact) -> QuerySet:
        from channels_app.models import Suppression

        match = Q(pk__in=[])
        for channel, (_, address) in self.addresses(contact).items():
            # A phone is suppressed as its blind index (``Suppression.address_of``); older rows in clear.
            match |= Q(channel=channel, address__in={address, Suppression.address_of(address)})
        return Suppression._base_manager.filter(match, org_id=contact.org_id)

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"), "channel", "address", "reason", "detail", "created_at")

    def erase(self, contact: Contact) -> None:
        from channels_app.models import Suppression

        self.queryset(contact).delete()
        for channel, (kind, address) in self.addresses(contact).items():
            hashed = erased_identities.digest(kind, address, default_country=contact.org.default_country)
            Suppression._base_manager.get_or_create(
                org_id=contact.org_id,
                channel=channel,
                address=hashed,
                defaults={"reason": Suppression.Reason.ERASED},
            )
