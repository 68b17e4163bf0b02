"""Export and erasure of one contact's personal data, across every app.

Both walk the personal-data registry (``marketing.personal_data``): each app registers the
places it keeps a person's data, so compliance reaches them without importing the apps above
marketing. An erasure deletes or anonymises everything in one transaction, redacts the console's
change log about the contact, and leaves only keyed hashes of its email and phone
(``marketing.erased_identities``): the send guard, identify calls, imports and forms recognise
the person by them and store nothing again.
"""

import logging
from dataclasses import dataclass, field

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from marketing import erased_identities
from marketing.audit import audit_record
from marketing.models import Contact, ErasedIdentity, Organization, User
from marketing.personal_data import personal_data_sources
from marketing.tenancy import org_context

logger = logging.getLogger(__name__)


@dataclass
class ContactErasure:
    """What an erasure did: the contact's former id, the sources it went through, the hashes it left."""

    contact_id: int
    sources: list[str] = field(default_factory=list)
    identities: list[ErasedIdentity] = field(default_factory=list)


def contact_by_email(*, org: Organization, email: str) -> Contact | None:
    """The org's contact with this email (compared as stored: normalised), or None."""
    value = erased_identities.normalised(erased_identities.EMAIL, email)
    return Contact.objects.with_scopes_disabled().filter(org=org, email=value).first() if value else None


def contact_export(*, contact: Contact) -> dict:
    """Everything the product holds about a contact, per registered source::

        {"org": slug, "contact_id": id, "exported_at": ISO time,
         "sources": {name: {"description": text, "rows": [plain dicts]}}}

    Every source appears, with an empty list when it holds nothing of the contact's.
    """
    with org_context(contact.org):
        sources = {
            source.name: {"description": source.description, "rows": source.export(contact)}
            for source in personal_data_sources()
        }
        audit_record(
            org=contact.org,
            verb="exported",
            target=contact,
            fields=[name for name, source in sources.items() if source["rows"]],
            count=sum(len(source["rows"]) for source in sources.values()),
        )
    return {
        "org": contact.org.slug,
        "contact_id": contact.pk,
        "exported_at": timezone.now().isoformat(),
        "sources": sources,
    }


def contact_erase(*, contact: Contact, by: User | None = None, reason: str = "") -> ContactErasure:
    """Erases a contact everywhere, in one transaction: every source deletes or anonymises its
    rows (consent records and data-subject requests stay, anonymised, as the record of what was
    given and done), the contact row goes last, the console's change log about it is redacted,
    and its email, phone and user id are kept only as keyed hashes (``ErasedIdentity`` rows; the
    suppressions source adds hashed suppressions). After the commit its import files are
    rewritten and its cache keys deleted. ``reason`` goes to the log, never a personal value.
    """
    org = contact.org
    erasure = ContactErasure(contact_id=contact.pk)
    with org_context(org), transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        cache_keys = []
        for kind, value in (
            (erased_identities.EMAIL, contact.email),
            (erased_identities.PHONE, contact.phone),
            (erased_identities.USER_ID, contact.external_id),
        ):
            if value:
                erasure.identities.append(erased_identities.record(org=org, kind=kind, value=value))
        _log_entries_redact(contact)
        for source in personal_data_sources():
            cache_keys += source.cache_keys(contact)
            source.erase(contact)
            erasure.sources.append(source.name)
        # The audit row names the sources, never a value: it outlives the person's data.
        audit_record(
            org=org,
            verb="erased",
            target_type="marketing.contact",
            target_id=erasure.contact_id,
            fields=erasure.sources,
            actor=by,
        )
        if cache_keys:
            transaction.on_commit(lambda: cache.delete_many(cache_keys))
    logger.info(
        "contact erased org=%s contact=%s by=%s reason=%r sources=%d",
        org.slug,
        erasure.contact_id,
        getattr(by, "pk", None),
        reason,
        len(erasure.sources),
    )
    return erasure


def _log_entries_redact(contact: Contact) -> int:
    """Blanks the console's change-log entries about the contact (its name and email are in
    ``object_repr``, changed values in ``change_message``), and any other entry that quotes its
    email or full name (a handoff is named after its contact). The entries stay: who did what, when."""
    about = Q(content_type=ContentType.objects.get_for_model(Contact), object_id=str(contact.pk))
    full_name = f"{contact.first_name} {contact.last_name}".strip()
    for value in (contact.email, full_name):
        if value:
            about |= Q(object_repr__icontains=value) | Q(change_message__icontains=value)
    redacted = 0
    for entry in LogEntry.objects.filter(about).select_related("content_type"):
        model = entry.content_type.model if entry.content_type else "object"
        redacted += LogEntry.objects.filter(pk=entry.pk).update(
            object_repr=f"{model} #{entry.object_id} (erased)", change_message=""
        )
    return redacted
