"""Data-subject requests through their services: due dates by law, the confirmation email and
its link (valid, tampered, expired, superseded; a GET does not confirm), extension, each kind's
completion, rejection, and the daily reminders and overdue alerts."""

import re
import time
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client

from channels_app.models import Message
from compliance.data_subject_requests import request_due_at, request_receive
from compliance.models import DataSubjectRequest, Law, RequestKind, RequestSource, RequestStatus
from tests.factories import ContactFactory


@pytest.fixture
def sent(django_capture_on_commit_callbacks, eager_tasks):
    """Runs a block's after-commit callbacks (the outbox sends inline), and returns its result."""

    def run(action):
        start = len(connection.run_on_commit)
        with django_capture_on_commit_callbacks(execute=True):
            result = action()
        del connection.run_on_commit[start:]
        return result

    return run


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
