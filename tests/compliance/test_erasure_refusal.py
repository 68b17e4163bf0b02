"""After an erasure the person's email and phone are refused everywhere something could store
them again, each caller told why (a public caller only that nothing was stored), and nothing
is sent to them."""

import base64
import csv
import json
import uuid

import pytest
from django.test import Client

from channels_app.models import Message
from channels_app.outbox import messages_guards
from compliance.erasure import contact_erase
from marketing.erased_identities import NOT_IMPORTED, NOT_STORED, refusal
from marketing.identity import Trust
from marketing.imports import import_job_create, import_job_run
from marketing.ingestion import events_ingest, events_validate
from marketing.models import ApiKey, Contact, ImportJob, ImportRowError
from marketing.services import api_key_create
from tests.factories import ContactFactory

EMAIL = "erased.person@example.com"
PHONE = "+4915123456789"
SITE = "https://www.acme.io"
SERVER_REFUSAL = "erased at the person's request (data-subject request); not stored"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


@pytest.fixture
def erased(org):
    contact = ContactFactory(org=org, email=EMAIL, phone=PHONE, first_name="Erin")
    contact_erase(contact=contact)
    assert not Contact.objects.exists()


def segment_call(key: str, path: str, body: dict):
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return Client().post(path, json.dumps(body), content_type="application/json", headers={"Authorization": auth})


def test_the_refusals_read_as_documented():
    assert refusal(public=True) == NOT_STORED == "not stored"
    assert refusal(public=False) == SERVER_REFUSAL
    assert NOT_IMPORTED == "erased at the person's request (data-subject request); not imported"


def test_identify_with_a_server_key_says_erased_and_a_write_key_only_not_stored(org, erased, api_key, write_key):
    call = {"type": "identify", "userId": "u-9", "traits": {"email": EMAIL.upper(), "first_name": "Erin"}}
    by_phone = {"type": "identify", "userId": "u-8", "traits": {"phone": "0151 23456789"}}
    server = segment_call(api_key, "/v1/batch", {"batch": [call, by_phone]}).json()["results"]
    public = segment_call(write_key, "/v1/batch", {"batch": [call, by_phone]}).json()["results"]

    assert server[0]["status"] == "error" and server[0]["errors"] == {"traits.email": SERVER_REFUSAL}
    assert server[1]["errors"] == {"traits.phone": SERVER_REFUSAL}
    assert public[0]["status"] == "error" and public[0]["errors"] == {"traits.email": "not stored"}
    assert public[1]["errors"] == {"traits.phone": "not stored"}
    single = segment_call(write_key, "/v1/identify", call)
    assert single.status_code == 400 and single.json()["errors"] == {"traits.email": "not stored"}
    assert not Contact.objects.exists()


def test_events_naming_the_email_are_not_stored(org, erased):
    raw = [{"type": "signed_up", "email": EMAIL, "message_id": "m-1"}, {"type": "signed_up", "email": "new@x.io"}]
    for trust, reason in ((Trust.SERVER, SERVER_REFUSAL), (Trust.PUBLIC, "not stored")):
        items, errors = events_validate(raw)
        erased_event, other = events_ingest(org=org, items=items, errors=errors, source="api", trust=trust)
        assert (erased_event.status, erased_event.errors) == ("error", {"email": reason})
        assert other.status in {"stored", "duplicate"}
    assert list(Contact.objects.values_list("email", flat=True)) == ["new@x.io"]


def test_rest_create_names_the_field(org, erased, api):
    response = api.post("/api/v1/contacts/", {"email": EMAIL}, content_type="application/json")
    assert response.status_code == 400
    assert SERVER_REFUSAL in json.dumps(response.json())
    response = api.post(
        "/api/v1/contacts/", {"email": "fresh@example.com", "phone": PHONE}, content_type="application/json"
    )
    assert response.status_code == 400 and "phone" in response.json()
    assert not Contact.objects.exists()


def test_reimport_is_refused_row_by_row(org, erased, tmp_path):
    path = tmp_path / "again.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerows(
            [["email", "phone"], [EMAIL, ""], ["fresh@example.com", "0151 23456789"], ["ok@example.com", ""]]
        )
    job = import_job_create(
        org=org, kind=ImportJob.Kind.CONTACTS, path_or_file=path, mapping={"email": "email", "phone": "phone"}
    )
    job = import_job_run(job_id=job.pk)

    errors = set(ImportRowError.objects.filter(job=job).values_list("row", "column", "reason"))
    assert errors == {(1, "email", NOT_IMPORTED), (2, "phone", NOT_IMPORTED)}
    assert list(Contact.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_an_events_import_naming_the_email_is_refused_row_by_row(org, erased, tmp_path):
    path = tmp_path / "events.csv"
    with open(path, "w", newline="") as out:
        csv.writer(out).writerows(
            [
                ["email", "type", "at"],
                [EMAIL, "webinar", "2026-01-05T10:00:00Z"],
                ["ok@example.com", "webinar", "2026-01-05T10:00:00Z"],
            ]
        )
    job = import_job_create(
        org=org,
        kind=ImportJob.Kind.EVENTS,
        path_or_file=path,
        mapping={"email": "email", "type": "type", "at": "occurred_at"},
    )
    job = import_job_run(job_id=job.pk)

    assert list(ImportRowError.objects.filter(job=job).values_list("row", "column", "reason")) == [
        (1, "email", NOT_IMPORTED)
    ]
    assert list(Contact.objects.values_list("email", flat=True)) == ["ok@example.com"]


def test_a_public_form_stores_nothing_and_says_only_not_stored(org, erased):
    org.allowed_origins = [SITE]
    org.save(update_fields=["allowed_origins"])
    key = api_key_create(org=org, name="website", scope=ApiKey.Scope.WRITE)[1]
    response = Client().post(
        f"/t/forms/newsletter/?k={key}",
        json.dumps({"email": EMAIL}),
        content_type="application/json",
        HTTP_ORIGIN=SITE,
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"email": "not stored"}}
    assert not Contact.objects.exists()


def test_the_send_guard_blocks_the_erased_address_by_its_keyed_hash(org, erased):
    # Transactional messages (no consent needed) to the erased address and phone, by some contact.
    someone = ContactFactory(org=org, email="someone@example.com")

    def message(channel, to, key):
        return Message.objects.create(
            org=org, contact=someone, channel=channel, purpose="transactional", to=to, idempotency_key=key
        )

    email, sms, fresh = (
        message("email", EMAIL.upper(), "n-1"),
        message("sms", PHONE, "n-2"),
        message("email", "f@x.io", "n-3"),
    )
    verdicts = messages_guards([email, sms, fresh], now=email.created_at)
    assert verdicts[email.pk].reason == verdicts[sms.pk].reason == "suppressed: erased (data-subject request)"
    assert verdicts[fresh.pk].verdict == "send"


def test_a_notice_to_the_erased_address_still_goes(org, erased, eager_tasks, django_capture_on_commit_callbacks):
    """The person may still write about their data (a new request) and be answered."""
    from django.core import mail

    from channels_app.outbox import notice_enqueue

    with django_capture_on_commit_callbacks(execute=True):
        notice = notice_enqueue(org=org, to=EMAIL, subject="Your request", text="Confirm it here.", key="dsar-x")
    notice.refresh_from_db()
    assert notice.status == "sent", notice.status_history
    assert mail.outbox[-1].to == [EMAIL]


def test_the_user_id_of_an_erased_person_brings_no_contact_back(org, api_key, write_key):
    contact = ContactFactory(org=org, email="uid.person@example.com", external_id="crm-42")
    contact_erase(contact=contact)
    identify = {"type": "identify", "userId": "crm-42", "traits": {"plan": "pro"}}
    track = {"type": "track", "userId": "crm-42", "event": "Viewed", "messageId": "t-1"}
    server = segment_call(api_key, "/v1/batch", {"batch": [identify, track]}).json()["results"]
    public = segment_call(write_key, "/v1/batch", {"batch": [identify, {**track, "messageId": "t-2"}]}).json()[
        "results"
    ]
    assert [r["status"] for r in server + public] == ["error"] * 4
    assert server[0]["errors"] == server[1]["errors"] == {"userId": SERVER_REFUSAL}
    assert public[0]["errors"] == public[1]["errors"] == {"userId": NOT_STORED}
    assert not Contact.objects.exists()
    # Another user id is stored as usual.
    other = segment_call(api_key, "/v1/identify", {"userId": "crm-43", "traits": {"plan": "pro"}})
    assert other.json()["status"] == "identified" and Contact.objects.get().external_id == "crm-43"
