"""A person with data in every place the product keeps some, and a bystander who must stay whole.

The person's values are distinctive so a scan of the whole database finds any copy left behind.
"""

import csv
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from channels_app.models import Message, PushSubscription, Suppression
from compliance.models import ConsentRecord, DataSubjectRequest
from marketing.identity import contact_merge
from marketing.imports import import_job_create, import_job_run
from marketing.models import AnonymousId, Contact, Event, IdentityConflict, ImportJob, ImportRowError, SegmentMembership
from scoring.models import ContactScore, Handoff, ScoreLedger, ScoringModel
from tests.factories import ContactFactory, ListMembershipFactory, SegmentFactory, TagFactory, UserFactory
from workflows.models import Approval, AutomationExecution, Delivery, Workflow, WorkflowInstance, WorkflowStepRun

EMAIL = "zebulon.quarmbyfeather@erasure-probe.example"
OLD_EMAIL = "zq.oldaddress@erasure-probe.example"
PHONE = "+4915198765432"
FIRST_NAME = "Zebulonix"
LAST_NAME = "Quarmbyfeather"
# What no table, file or cache key may hold after the erasure.
TRACES = (EMAIL, OLD_EMAIL, PHONE, PHONE.removeprefix("+"), FIRST_NAME, LAST_NAME, "erasure-probe")

OTHER_EMAIL = "bystander@example.com"


@dataclass
class People:
    person: Contact
    other: Contact
    job: ImportJob
    import_path: Path


def _csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "last_name", "phone"])
        writer.writerows(rows)
    return path


def person_with_data_everywhere(org, tmp_path: Path) -> People:
    """The person (and a bystander with a copy of each kind of row) in ``org``; MEDIA_ROOT set by the caller."""
    now = timezone.now()
    rep = UserFactory(username="rep-erasure", email="rep@example.com")
    person = ContactFactory(
        org=org,
        email=EMAIL,
        phone=PHONE,
        first_name=FIRST_NAME,
        last_name=LAST_NAME,
        external_id="ext-zq-778",
        properties={"nickname": FIRST_NAME, "referrer": OLD_EMAIL},
    )
    other = ContactFactory(org=org, email=OTHER_EMAIL, first_name="Bea", last_name="Stander")

    # A duplicate record of the person, merged into it (its snapshot keeps the old email).
    duplicate = ContactFactory(org=org, email=OLD_EMAIL, first_name=FIRST_NAME, last_name=LAST_NAME)
    Event.objects.create(org=org, contact=duplicate, type="page_viewed", occurred_at=now, message_id="dup-1")
    contact_merge(org=org, kept=person, gone=duplicate, reason="same_person")

    for contact in (person, other):
        pk = contact.pk
        tag = TagFactory(org=org, name=f"tag-{pk}")
        contact.tags.add(tag)
        ListMembershipFactory(contact_list__org=org, contact=contact)
        segment = SegmentFactory(org=org)
        SegmentMembership.objects.create(org=org, segment=segment, contact=contact)
        AnonymousId.objects.create(org=org, contact=contact, value=f"anon-{contact.first_name}-{pk}")
        event = Event.objects.create(
            org=org,
            contact=contact,
            type="form_submitted",
            properties={"email": contact.email, "name": f"{contact.first_name} {contact.last_name}"},
            occurred_at=now,
            message_id=f"form-{pk}",
        )
        Message.objects.create(
            org=org,
            contact=contact,
            channel="email",
            to=contact.email,
            idempotency_key=f"msg-{pk}",
            status="sent",
            content={
                "subject": f"Hello {contact.first_name}",
                "html": f"<p>Dear {contact.first_name} {contact.last_name}</p>",
            },
            status_history=[{"status": "sent", "at": now.isoformat(), "reason": f"to {contact.email}"}],
        )
        PushSubscription.objects.create(
            org=org,
            contact=contact,
            endpoint=f"https://push.example/{contact.first_name}",
            p256dh="key",
            auth="auth",
            user_agent=f"Browser of {contact.first_name}",
        )
        model, _ = ScoringModel.objects.get_or_create(org=org, slug="default", defaults={"name": "Default"})
        ContactScore.objects.create(
            org=org,
            contact=contact,
            model=model,
            score=120,
            probability=0.7,
            factors=[{"feature": "first_name", "value": contact.first_name, "effect": 0.1}],
            predicted_at=now,
        )
        ScoreLedger.objects.create(
            org=org, contact=contact, model=model, delta=20, score_after=120, reason="manual",
            note=f"bonus for {contact.first_name}", event=event,
        )  # fmt: skip
        Handoff.objects.create(
            org=org, contact=contact, reason="manual", score=120, sla_due_at=now + timedelta(days=1),
            rejection_reason=f"{contact.first_name} asked to wait", assignee=rep, source_event=event,
        )  # fmt: skip
        workflow = Workflow.objects.create(org=org, slug=f"wf-{pk}", name=f"Nurture {pk}")
        version = workflow.versions.create(org=org, number=1, definition={"steps": []})
        instance = WorkflowInstance.objects.create(
            org=org, workflow=workflow, version=version, contact=contact, trigger_type="manual",
            trigger_key=f"k-{pk}", context={"vars": {"greeting": f"Hi {contact.first_name}"}},
            trigger_data={"email": contact.email}, status="completed", finished_at=now,
        )  # fmt: skip
        WorkflowStepRun.objects.create(
            org=org, instance=instance, workflow=workflow, step_id="send", step_type="action",
            idempotency_key=f"{instance.pk}:send:1", started_at=now, completed_at=now,
            input={"to": contact.email}, output={"rendered": f"Dear {contact.last_name}"},
        )  # fmt: skip
        Approval.objects.create(
            org=org, instance=instance, step_id="approve", idempotency_key=f"{instance.pk}:approve:1",
            due_at=now, note=f"ok for {contact.first_name}",
        )  # fmt: skip
        Delivery.objects.create(
            org=org, instance=instance, step_id="hook", idempotency_key=f"{instance.pk}:hook:1",
            action="webhook", request={"body": {"email": contact.email}}, response={"echo": contact.last_name},
        )  # fmt: skip
        AutomationExecution.objects.create(
            org=org, workflow=workflow, instance=instance, contact=contact, status="failure",
            started_at=now, finished_at=now, error=f"could not reach {contact.email}",
        )  # fmt: skip
        ConsentRecord.objects.create(
            org=org, contact=contact, subject_email=contact.email, purpose="email_marketing", granted=True,
            source="form", proof={"ip": "203.0.113.9", "text": f"I, {contact.first_name}, agree"}, event=event,
        )  # fmt: skip
        archive = default_storage.save(f"dsar/archive-{pk}.zip", ContentFile(f"contact.json: {contact.email}".encode()))
        DataSubjectRequest.objects.create(
            org=org, kind="access", source="api", email=contact.email, contact=contact,
            details=f"Send me what you hold on {contact.first_name} {contact.last_name}", due_at=now,
            archive_path=archive, outcome=f"Archive sent to {contact.email.upper()}.",
        )  # fmt: skip
        Suppression.objects.create(org=org, channel="email", address=contact.email, reason="hard_bounce")
        LogEntry.objects.create(
            user=rep, content_type=ContentType.objects.get_for_model(Contact), object_id=str(pk),
            object_repr=str(contact), action_flag=CHANGE,
            change_message=f'[{{"changed": {{"fields": ["Email"]}}}}, "was {contact.email}"]',
        )  # fmt: skip

    Suppression.objects.create(org=org, channel="sms", address=Suppression.address_of(PHONE), reason="sms_stop")
    IdentityConflict.objects.create(
        org=org, contact=person, other_contact=other, source="identify",
        identifiers={"email": {"value": EMAIL, "contact": person.pk}, "userId": {"value": "u", "contact": other.pk}},
    )  # fmt: skip
    # A notice to the rep that names the person (a handoff alert), without a contact.
    Message.objects.create(
        org=org, channel="email", purpose="transactional", to=rep.email, idempotency_key="alert-1", status="sent",
        content={"subject": f"Overdue lead: {FIRST_NAME} {LAST_NAME} <{EMAIL}>", "text": "Please look"},
    )  # fmt: skip

    # An import whose file has the person's row among others, and an error quoting the email.
    path = _csv(
        tmp_path / "people.csv",
        [[OTHER_EMAIL, "Bea", "Stander", ""], [EMAIL, FIRST_NAME, LAST_NAME, PHONE], ["x@example.com", "X", "", ""]],
    )
    job = import_job_run(
        job_id=import_job_create(
            org=org,
            kind=ImportJob.Kind.CONTACTS,
            path_or_file=path,
            mapping={"email": "email", "first_name": "first_name", "last_name": "last_name", "phone": "phone"},
        ).pk
    )
    ImportRowError.objects.create(
        job=job, row=2, column="email", reason=f"belongs to the contact with the email {EMAIL}."
    )
    ImportRowError.objects.create(job=job, row=3, column="phone", reason="a bystander's error")
    person.refresh_from_db()
    return People(person=person, other=other, job=job, import_path=path)
