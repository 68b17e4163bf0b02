"""Writes and business rules for the ground floor: contacts, companies, tags, lists, API keys.

Every function takes keyword arguments, validates (raising ``ValidationError`` with per-field
messages), owns its transaction and returns what it made.
"""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from marketing.api_keys import new_key_parts, secret_hash
from marketing.field_encryption import SealedProperties, properties_seal, sensitive_keys, sensitive_keys_forget
from marketing.models import (
    ApiKey,
    Company,
    Contact,
    ContactList,
    ListMembership,
    Membership,
    Organization,
    PropertyDefinition,
    Tag,
    User,
)
from marketing.properties import properties_check

CONTACT_FIELDS = {
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "job_title",
    "country",
    "time_zone",
    "locale",
    "lifecycle_stage",
    "lead_status",
    "owner",
    "properties",
    "last_activity_at",
}
COMPANY_FIELDS = {"name", "domain", "industry", "size", "revenue", "properties"}


def _save_validated(instance, *, unique_error: dict[str, str]) -> None:
    """full_clean() then save; a race lost on a unique constraint becomes the same field error."""
    instance.full_clean()
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise ValidationError(unique_error) from exc


def _assign(instance, fields: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({name: "Unknown field." for name in sorted(unknown)})
    if "properties" in fields:
        _check_properties(instance, fields["properties"])
    for name, value in fields.items():
        setattr(instance, name, value)


def _check_properties(instance, properties: Any) -> None:
    """Custom property values must fit their definitions; new keys get ``auto`` definitions."""
    if not isinstance(properties, dict):
        raise ValidationError({"properties": "A JSON object of property values."})
    subject = (
        PropertyDefinition.Subject.COMPANY if isinstance(instance, Company) else PropertyDefinition.Subject.CONTACT
    )
    problems = properties_check(org=instance.org, subject=subject, items=[properties])[0]
    if problems:
        raise ValidationError({"properties": [f"{key.split('.', 1)[1]}: {reason}" for key, reason in problems.items()]})


def _check_owner(org: Organization, owner: User | None) -> None:
    if owner is None or owner.is_superuser:
        return
    if not Membership.objects.with_scopes_disabled().filter(org=org, user=owner).exists():
        raise ValidationError({"owner": "The owner must be a member of this organisation."})


def contact_create(*, org: Organization, tags: Iterable[str] = (), **fields: Any) -> Contact:
    """Creates a contact; email and phone are normalised, tags are created as needed."""
    contact = Contact(org=org)
    _assign(contact, fields, CONTACT_FIELDS)
    _check_owner(org, contact.owner)
    _check_not_erased(contact, fields)
    with transaction.atomic():
        _save_validated(contact, unique_error={"email": "A contact with this email already exists."})
        if tags:
            contact.tags.set(tags_get_or_create(org=org, names=tags))
        _segments_recheck(contact)
    return contact


def _check_not_erased(contact: Contact, fields: dict[str, Any]) -> None:
    """Refuses an email or phone erased at the person's request (``marketing.erased_identities``)."""
    from marketing.erased_identities import erased_field, refusal

    field = erased_field(
        org=contact.org, email=contact.email if "email" in fields else None, phone=fields.get("phone") or None
    )
    if field:
        raise ValidationError({field: refusal(public=False)})


def _segments_recheck(contact: Contact) -> None:
    from marketing.celery import enqueue_on_commit
    from marketing.tasks import segments_check

    enqueue_on_commit(segments_check, org_id=contact.org_id, contact_ids=[contact.pk])


def contact_update(*, contact: Contact, tags: Iterable[str] | None = None, **fields: Any) -> Contact:
    """Updates the given fields of a contact (and replaces its tags when ``tags`` is given)."""
    _assign(contact, fields, CONTACT_FIELDS)
    _check_owner(contact.org, contact.owner)
    _check_not_erased(contact, fields)
    with transaction.atomic():
        _save_validated(contact, unique_error={"email": "A contact with this email already exists."})
        if tags is not None:
            contact.tags.set(tags_get_or_create(org=contact.org, names=tags))
        _segments_recheck(contact)
    return contact


def contact_delete(*, contact: Contact) -> None:
    """Deletes a contact and everything that hangs off it."""
    contact.delete()


def contact_properties_reseal(*, org: Organization, key: str, batch: int = 1000) -> int:
    """Stores every value of the contact property ``key`` as its definition now says: encrypted
    when it is marked sensitive, in clear when it no longer is. Run when the flag changes; returns
    how many contacts were rewritten."""
    sensitive_keys_forget(org.pk)
    keys = sensitive_keys(org.pk)
    ids = list(Contact.objects.filter(org=org, properties__has_key=key).order_by("pk").values_list("pk", flat=True))
    for first in range(0, len(ids), batch):
        with transaction.atomic():
            contacts = list(Contact.objects.filter(org=org, pk__in=ids[first : first + batch]))
            for contact in contacts:  # read decrypted; sealed again (or not) for the current flags
                contact.properties = SealedProperties(properties_seal(contact.properties, keys))
            Contact.objects.bulk_update(contacts, ["properties"])
    return len(ids)


def company_create(*, org: Organization, **fields: Any) -> Company:
    """Creates a company; the domain is normalised (no scheme, no www.) and unique per org."""
    company = Company(org=org)
    _assign(company, fields, COMPANY_FIELDS)
    _save_validated(company, unique_error={"domain": "A company with this domain already exists."})
    return company


def company_update(*, company: Company, **fields: Any) -> Company:
    """Updates the given fields of a company."""
    _assign(company, fields, COMPANY_FIELDS)
    _save_validated(company, unique_error={"domain": "A company with this domain already exists."})
    return company


def company_delete(*, company: Company) -> None:
    """Deletes a company; its contacts stay, without a company."""
    company.delete()


def tags_get_or_create(*, org: Organization, names: Iterable[str]) -> list[Tag]:
    """The org's tags with these names, creating the missing ones."""
    wanted = sorted({name.strip() for name in names if name and name.strip()})
    for name in wanted:
        if len(name) > Tag._meta.get_field("name").max_length:
            raise ValidationError({"tags": f"Tag “{name[:20]}…” is longer than 100 characters."})
    Tag.objects.bulk_create([Tag(org=org, name=name) for name in wanted], ignore_conflicts=True)
    return list(Tag.objects.filter(org=org, name__in=wanted))


def contacts_tag(*, org: Organization, contacts: QuerySet[Contact], names: Iterable[str]) -> int:
    """Adds tags to many contacts in one statement per tag; returns how many contacts."""
    contact_ids = list(contacts.filter(org=org).values_list("pk", flat=True))
    through = Contact.tags.through
    rows = [
        through(contact_id=cid, tag_id=tag.pk)
        for tag in tags_get_or_create(org=org, names=names)
        for cid in contact_ids
    ]
    through.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
    return len(contact_ids)


def contacts_untag(*, org: Organization, contacts: QuerySet[Contact], tags: Iterable[Tag]) -> int:
    """Removes tags from many contacts; returns how many contacts were selected."""
    contact_ids = list(contacts.filter(org=org).values_list("pk", flat=True))
    Contact.tags.through.objects.filter(contact_id__in=contact_ids, tag__in=[t.pk for t in tags]).delete()
    return len(contact_ids)


def contacts_add_to_list(*, org: Organization, contacts: QuerySet[Contact], contact_list: ContactList) -> int:
    """Puts many contacts on a static list (those already on it stay as they were)."""
    if contact_list.org_id != org.pk:
        raise ValidationError({"contact_list": "Select a list of this organisation."})
    contact_ids = list(contacts.filter(org=org).values_list("pk", flat=True))
    now = timezone.now()
    ListMembership.objects.bulk_create(
        [ListMembership(contact_id=cid, contact_list=contact_list, added_at=now) for cid in contact_ids],
        ignore_conflicts=True,
        batch_size=5000,
    )
    return len(contact_ids)


def contacts_remove_from_list(*, org: Organization, contacts: QuerySet[Contact], contact_list: ContactList) -> int:
    """Takes many contacts off a static list; returns how many were on it."""
    deleted, _ = ListMembership.objects.filter(
        contact_list=contact_list, contact_list__org=org, contact__in=contacts.filter(org=org)
    ).delete()
    return deleted


def contacts_set_stage(*, org: Organization, contacts: QuerySet[Contact], stage: str) -> int:
    """Moves many contacts to a lifecycle stage in one statement."""
    return contacts.filter(org=org).update(lifecycle_stage=stage, updated_at=timezone.now())


def api_key_create(
    *, org: Organization, name: str, scope: str = ApiKey.Scope.SERVER, by: User | None = None
) -> tuple[ApiKey, str]:
    """Creates an API key; returns it with the raw key, which is shown once and never stored."""
    if not name.strip():
        raise ValidationError({"name": "Give the key a name, e.g. the system that will use it."})
    if scope not in ApiKey.Scope.values:
        raise ValidationError({"scope": f"Choose one of: {', '.join(ApiKey.Scope.values)}."})
    prefix, secret = new_key_parts()
    key = ApiKey.objects.create(
        org=org, name=name.strip(), prefix=prefix, secret_hash=secret_hash(secret), scope=scope, created_by=by
    )
    return key, f"mk_{prefix}_{secret}"


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revokes a key at once; requests with it are refused from now on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key
