"""Personal data: where a contact's data lives, to export it and to erase it (the DSAR data sources).

Every app that stores something about a person registers a source for it in its own
``personal_data`` module (imported from its ``AppConfig.ready``)::

    from marketing.personal_data import ContactRowsSource, personal_data_source

    @personal_data_source
    class Visits(ContactRowsSource):
        \"\"\"Pages the contact visited.\"\"\"

        name = "visits"
        model = "myapp.Visit"

A source names the models it covers (a test fails when a model that points at a contact is
covered by none), returns the contact's rows as plain, JSON-serialisable dicts, and erases them
(deletes them, or anonymises what must stay as a record). ``compliance`` builds the export and
the erasure of one contact from every registered source; sources run inside the contact's org
(``marketing.tenancy.org_context``) and inside the erasure's transaction.
"""

import csv
import hashlib
import io
import json
from functools import partial
from typing import ClassVar

from django.apps import apps
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet

from marketing.models import Contact


class PersonalDataSource:
    """One place that holds personal data about a contact.

    ``name`` names the source's files in an export archive (letters, digits, underscores);
    ``models`` lists the ``app_label.ModelName`` labels it covers; sources are erased in
    ``order`` (lower first: rows that point at others go before what they point at).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    models: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[int] = 0

    def export(self, contact: Contact) -> list[dict]:
        """The contact's rows, as plain dicts that ``json.dumps`` takes as they are."""
        raise NotImplementedError

    def erase(self, contact: Contact) -> None:
        """Deletes the contact's rows, or anonymises those that must stay as a record."""
        raise NotImplementedError

    def cache_keys(self, contact: Contact) -> list[str]:
        """Keys of the cache (Redis) that hold something of the contact's; deleted after the erasure commits."""
        return []


class ContactRowsSource(PersonalDataSource):
    """A source for one model whose rows belong to the contact through one lookup: exported as
    they are (every concrete field, or ``fields``), erased by deleting them."""

    model: ClassVar[str] = ""
    lookup: ClassVar[str] = "contact"
    fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.model and not cls.__dict__.get("models"):
            cls.models = (cls.model,)

    def queryset(self, contact: Contact) -> QuerySet:
        """The contact's rows of ``model``."""
        return apps.get_model(self.model)._base_manager.filter(**{self.lookup: contact})

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"), *self.fields)

    def erase(self, contact: Contact) -> None:
        self.queryset(contact).delete()


_sources: dict[str, PersonalDataSource] = {}


def personal_data_source(cls: type[PersonalDataSource]) -> type[PersonalDataSource]:
    """Registers a source class (one instance serves every export and erasure)."""
    if not cls.name or not cls.name.replace("_", "").isalnum():
        raise ValueError(f"{cls.__name__}: a personal-data source needs a name of letters, digits and underscores")
    if cls.name in _sources and type(_sources[cls.name]) is not cls:
        raise ValueError(f"Two personal-data sources are named {cls.name!r}")
    _sources[cls.name] = cls()
    return cls


def personal_data_sources() -> list[PersonalDataSource]:
    """Every registered source, in erasure order (then by name)."""
    return sorted(_sources.values(), key=lambda source: (source.order, source.name))


def covered_models() -> set[str]:
    """The ``app_label.ModelName`` labels some source covers."""
    return {label for source in _sources.values() for label in source.models}


def plain_rows(queryset: QuerySet, *fields: str) -> list[dict]:
    """A queryset's rows as JSON-ready dicts (dates as ISO text, decimals and UUIDs as text);
    every concrete field unless ``fields`` are named (foreign keys as ``<name>_id``)."""
    if not fields:
        fields = tuple(field.attname for field in queryset.model._meta.concrete_fields)
    return json.loads(json.dumps(list(queryset.values(*fields)), cls=DjangoJSONEncoder))


# --- the ground floor's own sources ------------------------------------------------------------


@personal_data_source
class ContactRow(PersonalDataSource):
    """The contact itself: its fields and custom properties. Erased last (everything else points at it)."""

    name = "contact"
    description = "The contact's fields and custom properties."
    models = ("marketing.Contact",)
    order = 1000

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(Contact._base_manager.filter(pk=contact.pk))

    def erase(self, contact: Contact) -> None:
        Contact._base_manager.filter(pk=contact.pk).delete()


@personal_data_source
class Tags(PersonalDataSource):
    """The tags on the contact."""

    name = "tags"
    description = "The tags on the contact."
    models = ("marketing.Contact_tags",)

    def export(self, contact: Contact) -> list[dict]:
        through = Contact.tags.through.objects.filter(contact=contact).order_by("tag__name")
        return plain_rows(through, "tag_id", "tag__name")

    def erase(self, contact: Contact) -> None:
        Contact.tags.through.objects.filter(contact=contact).delete()


@personal_data_source
class ListMemberships(ContactRowsSource):
    """The static lists the contact is on, and since when."""

    name = "list_memberships"
    description = "The static lists the contact is on, and since when."
    model = "marketing.ListMembership"
    fields = ("id", "contact_list_id", "contact_list__slug", "contact_list__name", "added_at")


@personal_data_source
class AnonymousIds(ContactRowsSource):
    """Browser and device ids resolved to the contact."""

    name = "anonymous_ids"
    description = "Browser and device ids resolved to the contact."
    model = "marketing.AnonymousId"


@personal_data_source
class Events(ContactRowsSource):
    """Everything the contact did or that happened to them (page views, form submissions, opens…)."""

    name = "events"
    description = "Everything the contact did or that happened to them (page views, forms, opens, clicks…)."
    model = "marketing.Event"
    order = 10  # after the rows that point at events (consent records, handoffs, the score ledger)


@personal_data_source
class SegmentMemberships(ContactRowsSource):
    """The contact's stays in segments."""

    name = "segment_memberships"
    description = "The segments the contact is or was in, entered and exited."
    model = "marketing.SegmentMembership"
    fields = ("id", "segment_id", "segment__slug", "segment__name", "entered_at", "exited_at")


@personal_data_source
class Merges(PersonalDataSource):
    """Contacts folded into this one, with what each had (its fields as they were)."""

    name = "merges"
    description = "Other records of the person folded into this contact, with the fields each had."
    models = ("marketing.ContactMerge",)

    def queryset(self, contact: Contact) -> QuerySet:
        from marketing.models import ContactMerge

        merges = ContactMerge._base_manager.filter(org_id=contact.org_id)
        if contact.email:
            # The person's own record merged into someone else keeps its fields in the snapshot.
            return merges.filter(Q(kept=contact) | Q(merged_snapshot__email=contact.email))
        return merges.filter(kept=contact)

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"))

    def erase(self, contact: Contact) -> None:
        self.queryset(contact).delete()


@personal_data_source
class IdentityConflicts(PersonalDataSource):
    """Public calls that named this contact and another one (their identifiers' values)."""

    name = "identity_conflicts"
    description = "Public calls whose identifiers named this contact and another one, kept for review."
    models = ("marketing.IdentityConflict",)
    order = -10  # before the merges they may point at

    def queryset(self, contact: Contact) -> QuerySet:
        from marketing.models import IdentityConflict

        return IdentityConflict._base_manager.filter(
            Q(contact=contact) | Q(other_contact=contact), org_id=contact.org_id
        )

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"))

    def erase(self, contact: Contact) -> None:
        self.queryset(contact).delete()


@personal_data_source
class Imports(PersonalDataSource):
    """The rows of uploaded CSV files that name the contact, and their import errors.

    A row is the contact's when one of its cells is the contact's email, external id, phone or
    one of its anonymous ids. Erasure blanks those rows in the stored file (after the erasure
    commits; the row numbers of the other rows and of their errors stay as they were), deletes
    a file left with no data at all, and deletes the rows' errors and any error that quotes the
    email."""

    name = "imports"
    description = "Rows of uploaded CSV files that name the contact, and the errors reported for them."
    models = ("marketing.ImportJob", "marketing.ImportRowError")

    def identifiers(self, contact: Contact) -> set[str]:
        from marketing.models import AnonymousId

        values = {contact.email, contact.external_id, contact.phone}
        values |= set(AnonymousId._base_manager.filter(contact=contact).values_list("value", flat=True))
        return {str(value).strip().lower() for value in values if value}

    def matches(self, contact: Contact):
        """Per job with a file naming the contact: (job, delimiter, header, rows, numbers of its rows)."""
        from marketing.models import ImportJob

        wanted = self.identifiers(contact)
        for job in ImportJob._base_manager.filter(org_id=contact.org_id).exclude(file="").order_by("pk"):
            try:
                delimiter, header, rows = _csv_read(job)
            except (OSError, UnicodeDecodeError, csv.Error):
                continue  # a missing or unreadable file holds nothing we can read back
            numbers = [
                number
                for number, row in enumerate(rows, start=1)
                if any(_cell(value) in wanted for value in row.values() if isinstance(value, str))
            ]
            yield job, delimiter, header, rows, numbers

    def row_errors(self, contact: Contact, job, numbers: list[int]) -> QuerySet:
        from marketing.models import ImportRowError

        quoting = Q(reason__icontains=contact.email) if contact.email else Q(pk__in=[])
        return ImportRowError.objects.filter(Q(row__in=numbers) | quoting, job=job)

    def export(self, contact: Contact) -> list[dict]:
        found = []
        for job, _, _, rows, numbers in self.matches(contact):
            errors = self.row_errors(contact, job, numbers)
            if not numbers and not errors.exists():
                continue
            found.append(
                {
                    "import_id": job.pk,
                    "kind": job.kind,
                    "file": job.file.name,
                    "created_at": job.created_at.isoformat(),
                    "rows": [{"row": number, "values": rows[number - 1]} for number in numbers],
                    "errors": plain_rows(errors.order_by("row", "pk"), "row", "column", "reason"),
                }
            )
        return found

    def erase(self, contact: Contact) -> None:
        from marketing.models import ImportJob

        for job, delimiter, header, rows, numbers in self.matches(contact):
            self.row_errors(contact, job, numbers).delete()
            if contact.email and contact.email in job.error.lower():
                ImportJob._base_manager.filter(pk=job.pk).update(error="")
            if not numbers:
                continue
            for number in numbers:
                rows[number - 1] = dict.fromkeys(header, "")
            if all(not any(row.values()) for row in rows):
                ImportJob._base_manager.filter(pk=job.pk).update(file="", file_sha256="")
                transaction.on_commit(partial(job.file.storage.delete, job.file.name))
                continue
            content = _csv_text(header, rows, delimiter).encode()
            ImportJob._base_manager.filter(pk=job.pk).update(file_sha256=hashlib.sha256(content).hexdigest())
            transaction.on_commit(partial(_file_replace, job.file.storage, job.file.name, content))


def _cell(value: str) -> str:
    return value.strip().lower()


def _csv_read(job) -> tuple[str, list[str], list[dict]]:
    """An import's stored file: its delimiter, header and data rows (as the import read them)."""
    from marketing.imports import _csv_rows

    with job.file.open("rb") as binary, _csv_rows(binary) as reader:
        rows = [{key: value for key, value in row.items() if key is not None} for row in reader]
        return reader.reader.dialect.delimiter, list(reader.fieldnames or []), rows


def _csv_text(header: list[str], rows: list[dict], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _file_replace(storage, name: str, content: bytes) -> None:
    """Overwrites a stored file in place (same name: the job keeps pointing at it)."""
    storage.delete(name)
    saved = storage.save(name, ContentFile(content))
    if saved != name:  # another file took the name meanwhile: keep ours where the job looks
        storage.delete(saved)
        raise OSError(f"could not rewrite {name}")
