"""Compliance's personal data about a contact: its consent records and its data-subject requests.

Both stay after an erasure as the record that consent was given (or withdrawn) and that the
request was fulfilled, with the person's email replaced by its keyed hash."""

import re
from functools import partial

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, QuerySet

from marketing import erased_identities
from marketing.models import Contact
from marketing.personal_data import ContactRowsSource, PersonalDataSource, personal_data_source, plain_rows


def _email_digest(contact: Contact) -> str:
    return erased_identities.digest(erased_identities.EMAIL, contact.email) if contact.email else ""


@personal_data_source
class ConsentRecords(PersonalDataSource):
    """Each grant and withdrawal of consent, with its source and proof. Erasure anonymises them:
    the purpose, the answer, when and from where stay; the contact, email and proof go."""

    name = "consent_records"
    description = "Each grant or withdrawal of consent: purpose, source, lawful basis, proof, time."
    models = ("compliance.ConsentRecord",)

    def queryset(self, contact: Contact) -> QuerySet:
        from compliance.models import ConsentRecord

        # Records outlive a deleted or merged-away contact with its email kept as subject_email.
        by_email = Q(contact__isnull=True, subject_email__iexact=contact.email) if contact.email else Q(pk__in=[])
        return ConsentRecord._base_manager.filter(Q(contact=contact) | by_email, org_id=contact.org_id)

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"))

    def erase(self, contact: Contact) -> None:
        self.queryset(contact).update(contact=None, subject_email="", proof={}, subject_digest=_email_digest(contact))


@personal_data_source
class DataSubjectRequests(PersonalDataSource):
    """The person's requests about their data. Erasure keeps each as the record that it was
    handled, without the email (a keyed hash instead), the details the person wrote or the
    address quoted in the outcome; an access request's stored archive is deleted after commit."""

    name = "data_subject_requests"
    description = "The person's requests about their data (access, erasure…), when received, due and handled."
    models = ("compliance.DataSubjectRequest",)

    def queryset(self, contact: Contact) -> QuerySet:
        from compliance.models import DataSubjectRequest

        by_email = Q(email__iexact=contact.email) if contact.email else Q(pk__in=[])
        return DataSubjectRequest._base_manager.filter(Q(contact=contact) | by_email, org_id=contact.org_id)

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"))

    def erase(self, contact: Contact) -> None:
        digest = _email_digest(contact)
        for request in self.queryset(contact).only("pk", "outcome", "archive_path"):
            if request.archive_path:
                transaction.on_commit(partial(default_storage.delete, request.archive_path))
            outcome = request.outcome
            if contact.email:
                outcome = re.sub(re.escape(contact.email), "(erased)", outcome, flags=re.IGNORECASE)
            type(request)._base_manager.filter(pk=request.pk).update(
                contact=None, email="", details="", outcome=outcome, archive_path="", subject_digest=digest
            )


@personal_data_source
class TopicChoices(ContactRowsSource):
    """The topics the contact joined or left in the preference centre, with the proof of each choice."""

    name = "topic_choices"
    description = "The topics the contact joined or left (preference centre, console, API), with proof."
    model = "compliance.TopicChoice"


@personal_data_source
class ConsentStates(ContactRowsSource):
    """The contact's current answer per purpose, derived from the consent records; erased with
    the contact (the records stay, anonymised)."""

    name = "consent_states"
    description = "The current consent per purpose (granted or withdrawn, and since when)."
    model = "compliance.ConsentState"


@personal_data_source
class PendingConsents(ContactRowsSource):
    """Consent ticked on a form and awaiting the person's confirmation by email, with the
    form's proof (wording, address, browser)."""

    name = "pending_consents"
    description = "Consent ticked on a form, awaiting (or given) confirmation by email, with the form's proof."
    model = "compliance.PendingConsent"
