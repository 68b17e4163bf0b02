"""Data-subject requests through their services: due dates by law, the confirmation email and
its link (valid, tampered, expired, superseded; a GET does not confirm), extension, each kind's
completion, rejection, and the daily reminders and overdue alerts."""

import io
import json
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Message
from compliance.data_subject_requests import (
    request_archives_expire,
    request_complete,
    request_due_at,
    request_extend,
    request_receive,
    request_reject,
    request_verification_resend,
    requests_remind,
)
from compliance.models import ConsentRecord, DataSubjectRequest, Law, RequestKind, RequestSource, RequestStatus
from compliance.tasks import data_subject_request_archives_expire, data_subject_requests_remind
from marketing.models import AuditEntry, Contact, ErasedIdentity, Role
from tests.factories import ContactFactory


def confirm_path(email) -> str:
    [url] = re.findall(r"https?://\S+/privacy/requests/confirm/\S+/", email.body)
    return urlsplit(url).path


def receive(org, **fields):
    return request_receive(
        org=org, **{"kind": RequestKind.ACCESS, "email": "pat@example.com", "source": RequestSource.API, **fields}
    )


@pytest.mark.parametrize(
    ("law", "received", "extended", "due"),
    [
        (Law.GDPR, datetime(2027, 1, 31, 9, 30, tzinfo=UTC), False, datetime(2027, 2, 28, 9, 30, tzinfo=UTC)),
        (Law.GDPR, datetime(2028, 1, 31, 9, 30, tzinfo=UTC), False, datetime(2028, 2, 29, 9, 30, tzinfo=UTC)),
        (Law.GDPR, datetime(2027, 3, 15, 0, 0, tzinfo=UTC), False, datetime(2027, 4, 15, 0, 0, tzinfo=UTC)),
        (Law.GDPR, datetime(2027, 1, 31, 9, 30, tzinfo=UTC), True, datetime(2027, 4, 30, 9, 30, tzinfo=UTC)),
        (Law.GDPR, datetime(2027, 11, 30, 12, 0, tzinfo=UTC), True, datetime(2028, 2, 29, 12, 0, tzinfo=UTC)),
        (Law.CCPA, datetime(2027, 1, 31, 9, 30, tzinfo=UTC), False, datetime(2027, 3, 17, 9, 30, tzinfo=UTC)),
        (Law.CCPA, datetime(2027, 1, 31, 9, 30, tzinfo=UTC), True, datetime(2027, 5, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_due_dates_follow_the_law(law, received, extended, due):
    assert request_due_at(law=law, received_at=received, extended=extended) == due


def test_a_request_finds_its_contact_and_mails_a_confirmation_link(org, sent, settings):
    settings.SITE_URL = "https://console.example"
    contact = ContactFactory(org=org, email="pat@example.com")
    received = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)

    request = sent(lambda: receive(org, email=" Pat@Example.com ", law=Law.GDPR, now=received, details="All of it"))

    assert (request.contact, request.email, request.status) == (contact, "pat@example.com", RequestStatus.UNVERIFIED)
    assert request.due_at == datetime(2027, 2, 28, 9, 30, tzinfo=UTC) and request.details == "All of it"
    message = Message.objects.get()
    assert (message.contact_id, message.purpose, message.to) == (None, "transactional", "pat@example.com")
    [email] = mail.outbox
    assert email.to == ["pat@example.com"] and "Confirm your request to Org A" in email.subject
    assert "https://console.example/privacy/requests/confirm/" in email.body and "7 days" in email.body


def test_the_default_law_and_an_address_that_matches_no_contact(org, sent, settings):
    settings.DSAR_DEFAULT_LAW = "ccpa"
    ContactFactory(org=org, email="someone-else@example.com")

    request = sent(lambda: receive(org, email="nobody@example.com"))

    assert request.law == Law.CCPA and request.contact is None
    assert request.due_at - request.received_at == timedelta(days=45)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"email": ""}, "email"),
        ({"kind": "forget_me"}, "kind"),
        ({"law": "lgpd"}, "law"),
        ({"source": "fax"}, "source"),
    ],
)
def test_bad_input_names_the_field(org, fields, field):
    with pytest.raises(ValidationError) as caught:
        receive(org, **fields)
    assert list(caught.value.message_dict) == [field]
    assert not DataSubjectRequest.objects.exists()


def test_a_get_shows_a_button_and_only_the_post_confirms(org, sent):
    request = sent(lambda: receive(org))
    person = Client()

    page = person.get(confirm_path(mail.outbox[0]))

    assert page.status_code == 200 and "Confirm my request" in page.content.decode()
    request.refresh_from_db()
    assert (request.status, request.verified_at) == (RequestStatus.UNVERIFIED, None)

    confirmed = person.post(confirm_path(mail.outbox[0]))

    assert confirmed.status_code == 200 and "Your request is confirmed" in confirmed.content.decode()
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN and request.verified_at is not None
    again = person.post(confirm_path(mail.outbox[0]))
    assert again.status_code == 200 and "Your request is confirmed" in again.content.decode()


def test_a_tampered_link_is_refused(org, sent):
    sent(lambda: receive(org))
    path = confirm_path(mail.outbox[0])
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]

    for response in (Client().get(tampered), Client().post(tampered), Client().post("/privacy/requests/confirm/x/")):
        assert response.status_code == 400 and "This link does not work" in response.content.decode()
    assert DataSubjectRequest.objects.get().status == RequestStatus.UNVERIFIED


def test_an_expired_link_is_refused(org, sent):
    eight_days_ago = time.time() - 8 * 86400
    with mock.patch("django.core.signing.time.time", return_value=eight_days_ago):
        sent(lambda: receive(org))

    response = Client().post(confirm_path(mail.outbox[0]))

    assert response.status_code == 400 and "This link has expired" in response.content.decode()
    assert DataSubjectRequest.objects.get().status == RequestStatus.UNVERIFIED


def open_request(org, sent, **fields) -> DataSubjectRequest:
    """A request received and confirmed by the person."""
    request = sent(lambda: receive(org, **fields))
    sent(lambda: Client().post(confirm_path(mail.outbox[-1])))
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN
    return request


def test_a_resend_makes_the_older_link_stop_working(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    request = sent(lambda: receive(org))

    sent(lambda: request_verification_resend(request=request, by=officer))

    first, newest = mail.outbox
    assert Client().post(confirm_path(first)).status_code == 400
    assert Client().post(confirm_path(newest)).status_code == 200
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN
    with pytest.raises(ValidationError, match="cannot be sent a confirmation link again"):
        request_verification_resend(request=request, by=officer)


def test_an_extension_is_once_with_a_reason_and_the_person_is_told(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    received = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)
    request = sent(lambda: receive(org, law=Law.GDPR, now=received))
    DataSubjectRequest.objects.filter(pk=request.pk).update(reminded_at=received)

    with pytest.raises(ValidationError) as caught:
        request_extend(request=request, reason="  ", by=officer)
    assert list(caught.value.message_dict) == ["reason"]

    extended = sent(lambda: request_extend(request=request, reason="Records are spread over three systems", by=officer))

    assert extended.extended and extended.due_at == datetime(2027, 4, 30, 9, 30, tzinfo=UTC)
    assert extended.extension_reason == "Records are spread over three systems" and extended.reminded_at is None
    told = mail.outbox[-1]
    assert told.to == ["pat@example.com"] and "30 April 2027" in told.body and "three systems" in told.body
    with pytest.raises(ValidationError, match="extended already"):
        request_extend(request=extended, reason="Still busy", by=officer)


def test_a_rejection_needs_a_reason_and_closes_the_request(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    request = open_request(org, sent)

    with pytest.raises(ValidationError) as caught:
        request_reject(request=request, reason="", by=officer)
    assert list(caught.value.message_dict) == ["reason"]

    rejected = sent(
        lambda: request_reject(request=request, reason="Manifestly excessive: the fifth this week", by=officer)
    )

    assert (rejected.status, rejected.handled_by, rejected.outcome) == (
        RequestStatus.REJECTED,
        officer,
        "Manifestly excessive: the fifth this week",
    )
    assert rejected.completed_at is not None and "fifth this week" in mail.outbox[-1].body
    with pytest.raises(ValidationError, match="cannot be completed"):
        request_complete(request=rejected, by=officer)


def test_an_unconfirmed_request_cannot_be_completed(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    request = sent(lambda: receive(org, kind=RequestKind.OPT_OUT_OF_SALE))

    with pytest.raises(ValidationError, match="not confirmed yet"):
        request_complete(request=request, by=officer)


def test_opt_out_of_sale_records_a_withdrawal(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    contact = ContactFactory(org=org, email="pat@example.com")
    request = open_request(org, sent, kind=RequestKind.OPT_OUT_OF_SALE, law=Law.CCPA)

    done = sent(lambda: request_complete(request=request, by=officer))

    record = ConsentRecord.objects.get(contact=contact)
    assert (record.purpose, record.granted, record.source) == ("sale_sharing", False, "data_subject_request")
    assert record.proof["data_subject_request"] == request.pk
    assert done.status == RequestStatus.COMPLETED and "no longer sent to third parties" in done.outcome
    assert "will no longer sell or share" in mail.outbox[-1].body


def test_rectification_is_completed_with_what_was_corrected(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    ContactFactory(org=org, email="pat@example.com")
    request = open_request(org, sent, kind=RequestKind.RECTIFICATION, details="My surname is Okafor")

    with pytest.raises(ValidationError) as caught:
        request_complete(request=request, by=officer)
    assert list(caught.value.message_dict) == ["outcome"]

    done = sent(lambda: request_complete(request=request, by=officer, outcome="Last name corrected to Okafor"))

    assert (done.status, done.outcome, done.handled_by) == (
        RequestStatus.COMPLETED,
        "Last name corrected to Okafor",
        officer,
    )


@pytest.mark.parametrize("kind", [RequestKind.ACCESS, RequestKind.ERASURE, RequestKind.OPT_OUT_OF_SALE])
def test_a_request_about_no_contact_is_completed_as_no_data_held(org, sent, member_factory, kind):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    request = open_request(org, sent, kind=kind, email="stranger@example.com")

    done = sent(lambda: request_complete(request=request, by=officer))

    assert done.status == RequestStatus.COMPLETED and done.outcome.startswith("No data held")
    assert done.archive_path == "" and not ConsentRecord.objects.exists()
    assert "holds no personal data about stranger@example.com" in mail.outbox[-1].body


def test_reminders_and_overdue_alerts_go_to_the_compliance_team_once(org, other_org, sent, member_factory):
    cora = member_factory(org, Role.COMPLIANCE, username="cora", email="cora@acme.example")
    member_factory(org, Role.ADMIN, username="ada", email="ada@acme.example")
    member_factory(org, Role.MARKETER, username="mara", email="mara@acme.example")
    now = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
    received = now - timedelta(days=20)
    soon = open_request(org, sent, email="soon@example.com", law=Law.CCPA)
    late = open_request(org, sent, email="late@example.com")
    later = open_request(org, sent, email="later@example.com")
    unconfirmed = sent(lambda: receive(org, email="quiet@example.com"))
    done = open_request(org, sent, email="done@example.com", kind=RequestKind.OPT_OUT_OF_SALE)
    sent(lambda: request_complete(request=done, by=cora))
    DataSubjectRequest.objects.filter(pk=soon.pk).update(received_at=received, due_at=now + timedelta(days=3))
    DataSubjectRequest.objects.filter(pk=late.pk).update(received_at=received, due_at=now - timedelta(days=2, hours=1))
    DataSubjectRequest.objects.filter(pk=later.pk).update(due_at=now + timedelta(days=20))
    DataSubjectRequest.objects.filter(pk__in=[unconfirmed.pk, done.pk]).update(due_at=now - timedelta(days=1))
    before = len(mail.outbox)

    told = sent(lambda: requests_remind(now=now))

    assert told == 2
    [alert] = mail.outbox[before:]
    assert alert.to == ["cora@acme.example"] and alert.subject == "Org A: 1 data-subject request(s) overdue"
    assert f"#{late.pk} " in alert.body and "overdue by 2 days" in alert.body
    assert f"#{soon.pk} " in alert.body and "due in 3 days" in alert.body
    assert "later@example.com" not in alert.body and "quiet@example.com" not in alert.body
    assert reverse("admin:compliance_datasubjectrequest_changelist") in alert.body
    soon.refresh_from_db()
    late.refresh_from_db()
    assert soon.reminded_at == now and soon.overdue_alerted_at is None
    assert late.overdue_alerted_at == now and late.reminded_at == now

    assert sent(lambda: requests_remind(now=now + timedelta(hours=1))) == 0
    assert len(mail.outbox) == before + 1

    # The soon one passes its deadline: one alert, then no more.
    assert sent(lambda: requests_remind(now=now + timedelta(days=4))) == 1
    assert "overdue by 1 day (" in mail.outbox[-1].body and f"#{soon.pk} " in mail.outbox[-1].body
    assert sent(lambda: requests_remind(now=now + timedelta(days=5))) == 0


def test_reminders_go_to_the_admins_when_the_org_has_no_compliance_member(org, sent, member_factory):
    member_factory(org, Role.ADMIN, username="ada", email="ada@acme.example")
    member_factory(org, Role.MARKETER, username="mara", email="mara@acme.example")
    request = open_request(org, sent)
    DataSubjectRequest.objects.filter(pk=request.pk).update(due_at=timezone.now() + timedelta(days=6))
    before = len(mail.outbox)

    assert sent(lambda: data_subject_requests_remind.delay().get()) == 1

    [reminder] = mail.outbox[before:]
    assert reminder.to == ["ada@acme.example"] and "due within seven days" in reminder.subject


def test_the_reminder_job_is_a_daily_system_schedule(db):
    from django_celery_beat.models import PeriodicTask

    job = PeriodicTask.objects.get(name="compliance: data-subject request reminders")
    assert job.task == "compliance.tasks.data_subject_requests_remind" and job.interval.every == 86400
    job = PeriodicTask.objects.get(name="compliance: expired data-subject request archives")
    assert job.task == "compliance.tasks.data_subject_request_archives_expire" and job.interval.every == 86400


def download_path(email) -> str:
    [url] = re.findall(r"https?://\S+/privacy/requests/download/\S+/", email.body)
    return urlsplit(url).path


@pytest.mark.parametrize("kind", [RequestKind.ACCESS, RequestKind.PORTABILITY])
def test_access_mails_a_link_to_a_zip_of_json_and_csv(org, sent, member_factory, settings, tmp_path, kind):
    settings.MEDIA_ROOT = str(tmp_path)
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    contact = ContactFactory(org=org, email="pat@example.com", first_name="Pat")
    ContactFactory(org=org, email="someone-else@example.com", first_name="Other")
    request = open_request(org, sent, kind=kind)

    done = sent(lambda: request_complete(request=request, by=officer))

    assert done.status == RequestStatus.COMPLETED and done.archive_path and "Archive" in done.outcome
    told = mail.outbox[-1]
    assert told.to == ["pat@example.com"] and "7 days" in told.body
    response = Client().get(download_path(told))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f'filename="personal-data-{request.pk}.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert "README.txt" in names and "contact.json" in names and "contact.csv" in names
    [row] = json.loads(archive.read("contact.json"))
    assert (row["id"], row["email"], row["first_name"]) == (contact.pk, "pat@example.com", "Pat")
    assert "someone-else" not in "".join(archive.read(n).decode() for n in names)
    audited = AuditEntry.objects.filter(target_type="compliance.datasubjectrequest", target_id=str(request.pk))
    rows = list(audited.order_by("pk").values_list("verb", "actor_user_id", "actor_label", "source"))
    assert [row[0] for row in rows] == ["created", "verified", "changed", "downloaded"]
    subject = ("data subject (signed link)", "public")
    assert rows[1][2:] == subject and rows[3][2:] == subject and rows[2][1:3] == (officer.pk, "cora")


def test_a_download_link_expires_and_cannot_be_forged(org, sent, member_factory, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    ContactFactory(org=org, email="pat@example.com")
    request = open_request(org, sent)
    eight_days_ago = time.time() - 8 * 86400
    with mock.patch("django.core.signing.time.time", return_value=eight_days_ago):
        sent(lambda: request_complete(request=request, by=officer))
    path = download_path(mail.outbox[-1])

    expired = Client().get(path)
    forged = Client().get(path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:])
    verify_token_as_download = Client().get(confirm_path(mail.outbox[0]).replace("confirm", "download"))

    assert expired.status_code == 400 and "This link has expired" in expired.content.decode()
    for response in (forged, verify_token_as_download):
        assert response.status_code == 400 and "This link does not work" in response.content.decode()


def test_erasure_erases_the_contact_and_keeps_the_request_as_the_record(org, sent, member_factory):
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    contact = ContactFactory(org=org, email="pat@example.com")
    request = open_request(org, sent, kind=RequestKind.ERASURE)

    done = sent(lambda: request_complete(request=request, by=officer))

    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert ErasedIdentity.objects.filter(org=org).exists()
    done.refresh_from_db()
    assert (done.status, done.contact, done.handled_by) == (RequestStatus.COMPLETED, None, officer)
    assert "erased" in done.outcome and done.email == ""  # the request stays, without the address
    # The erased address is blocked for everything but the answers to its requests: this one.
    told = mail.outbox[-1]
    assert told.to == ["pat@example.com"] and "erased the personal data it held" in told.body
    # Once sent, that answer keeps nothing of the person in the outbox either.
    answer = Message.objects.get(idempotency_key=f"notice:dsar-completed:{request.pk}")
    assert (answer.status, answer.to, answer.content, answer.error) == ("sent", "", {}, "")
    assert not Message.objects.filter(to__icontains="pat@").exists()


def test_an_archive_is_deleted_once_its_link_has_expired(org, sent, member_factory, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    ContactFactory(org=org, email="pat@example.com")
    ContactFactory(org=org, email="sam@example.com")
    old = sent(lambda: request_complete(request=open_request(org, sent), by=officer))
    old_link = download_path(mail.outbox[-1])
    fresh = sent(lambda: request_complete(request=open_request(org, sent, email="sam@example.com"), by=officer))
    DataSubjectRequest.objects.filter(pk=old.pk).update(completed_at=timezone.now() - timedelta(days=8))
    assert len(list(tmp_path.rglob("*.zip"))) == 2

    assert data_subject_request_archives_expire.delay().get() == 1

    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.archive_path == "" and fresh.archive_path
    assert [p.name for p in tmp_path.rglob("*.zip")] == [Path(fresh.archive_path).name]
    gone = Client().get(old_link)
    assert gone.status_code == 400 and "This link has expired" in gone.content.decode()
    assert request_archives_expire() == 0


def test_erasure_deletes_the_archives_of_the_persons_earlier_access_requests(
    org, sent, member_factory, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    officer = member_factory(org, Role.COMPLIANCE, username="cora")
    ContactFactory(org=org, email="pat@example.com")
    sent(lambda: request_complete(request=open_request(org, sent), by=officer))
    assert len(list(tmp_path.rglob("*.zip"))) == 1
    erasure = open_request(org, sent, kind=RequestKind.ERASURE)

    sent(lambda: request_complete(request=erasure, by=officer))

    assert list(tmp_path.rglob("*.zip")) == []
    assert not DataSubjectRequest.objects.exclude(archive_path="").exists()
