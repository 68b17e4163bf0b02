"""SMS through Twilio: the provider against a fake Twilio Messages API on loopback (a threaded
http.server recording the form posts), and the status-callback and inbound webhooks with real
Twilio signatures (``RequestValidator.compute_signature`` with the test auth token)."""

import base64
import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test import Client
from django_scopes import scopes_disabled
from twilio.request_validator import RequestValidator

from channels_app.models import Message, Suppression
from channels_app.outbox import message_enqueue, message_send
from channels_app.providers import provider_for
from channels_app.providers.sms import status_token_read
from compliance.models import ConsentRecord
from compliance.selectors import consent_states
from compliance.services import consent_record
from marketing.database_roles import system_alias
from marketing.field_encryption import phone_index
from marketing.models import Event
from tests.factories import ContactFactory

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM = "+15005550006"
SITE_URL = "https://console.example.com"
PHONE = "+4915112345678"  # Ana's (the contact fixture)
# Monday 30 November 2026, 10:00 UTC = 11:00 in Berlin: outside SMS quiet hours (21:00–08:00).
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


# --- a fake Twilio ----------------------------------------------------------------------------------


@dataclass
class Post:
    path: str
    form: dict[str, str]
    authorization: str


@dataclass
class FakeTwilio:
    """Answers like Twilio's Messages API. ``replies`` is a queue of (status, JSON body) answered
    before the default 201 with a new SID; every POST is recorded in ``posts``."""

    url: str = ""
    posts: list[Post] = field(default_factory=list)
    replies: list[tuple[int, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        with self.lock:
            self.posts.append(Post(path, form, authorization))
            if self.replies:
                return self.replies.pop(0)
            sid = f"SM{len(self.posts):032x}"
        return 201, {
            "sid": sid,
            "account_sid": ACCOUNT_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
        }

    def error(self, status: int, code: int, message: str) -> None:
        """Queues one Twilio error answer (the legacy JSON error shape of the Messages API)."""
        self.replies.append(
            (
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )
        )


def _handler(fake: FakeTwilio):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
            status, body = fake.answer(self.path, form, self.headers.get("Authorization", ""))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep the test output quiet
            pass

    return Handler


@pytest.fixture
def fake_twilio():
    fake = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def twilio(settings, fake_twilio):
    """Twilio's settings pointed at the fake; no rate limit (the tests send in quick bursts)."""
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.TWILIO_FROM = FROM
    settings.TWILIO_API_URL = fake_twilio.url
    settings.SITE_URL = SITE_URL
    settings.SMS_RATE_PER_S = 0
    return fake_twilio


@pytest.fixture
def texter(org, contact):
    """Ana (Berlin, +4915112345678), who also granted SMS consent."""
    consent_record(org=org, contact=contact, purpose="sms", granted=True, source="form")
    return contact


@pytest.fixture
def sms_template(template_factory):
    return template_factory(
        "reminder", channel="sms", variants=[{"name": "A", "weight": 100, "text": "Hi {{ first_name }}, see you at 3."}]
    )


def enqueue(org, contact, template, key="sms-1", now=T0) -> Message:
    return message_enqueue(org=org, contact=contact, template=template, idempotency_key=key, now=now)


def reload(message: Message) -> Message:
    return Message.objects.with_scopes_disabled().get(pk=message.pk)


# --- send -------------------------------------------------------------------------------------------


def test_an_sms_reaches_twilio_with_to_from_body_and_a_signed_status_callback(org, texter, sms_template, twilio):
    assert provider_for("sms").name == "twilio"
    message = enqueue(org, texter, sms_template)
    assert message.to == PHONE

    assert message_send(message_id=message.pk, now=T0) == "sent"

    (post,) = twilio.posts
    assert post.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert post.authorization == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert (post.form["To"], post.form["From"], post.form["Body"]) == (PHONE, FROM, "Hi Ana, see you at 3.")
    callback = post.form["StatusCallback"]
    assert callback.startswith(f"{SITE_URL}/m/sms/status/")
    assert status_token_read(callback.rsplit("/", 1)[1]) == message.pk
    assert status_token_read(callback.rsplit("/", 1)[1][:-2] + "xx") is None  # altered: not ours
    message = reload(message)
    assert (message.status, message.provider, message.provider_message_id) == ("sent", "twilio", f"SM{1:032x}")


def test_a_messaging_service_sid_goes_in_place_of_from(org, texter, sms_template, twilio, settings):
    settings.TWILIO_FROM = "MG" + "1" * 32
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "sent"

    form = twilio.posts[0].form
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


def test_a_contact_without_a_valid_phone_is_blocked_without_calling_twilio(org, sms_template, twilio):
    nobody = ContactFactory(org=org, phone="", time_zone="Europe/Berlin")
    consent_record(org=org, contact=nobody, purpose="sms", granted=True, source="form")
    message = enqueue(org, nobody, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "blocked"
    assert reload(message).error == "the contact has no sms address" and twilio.posts == []


def test_a_batch_session_sends_every_message_through_one_client(org, texter, sms_template, twilio):
    sender = provider_for("sms")
    messages = [enqueue(org, texter, sms_template, key=f"batch-{n}") for n in range(2)]

    session = sender.open_session()
    try:
        sids = [sender.send(message, session) for message in messages]
    finally:
        sender.close_session(session)

    assert sids == [f"SM{1:032x}", f"SM{2:032x}"]
    callbacks = [status_token_read(post.form["StatusCallback"].rsplit("/", 1)[1]) for post in twilio.posts]
    assert callbacks == [message.pk for message in messages]


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (429, 20429, "Too Many Requests"),
        (500, 20500, "Internal Server Error"),
        (503, 20503, "Service Unavailable"),
        (401, 20003, "Authenticate"),  # our credentials, not this message: retried like SMTP auth errors
    ],
)
def test_a_transient_twilio_error_is_retried_by_the_outbox_and_then_sent(
    org, texter, sms_template, twilio, status, code, text
):
    twilio.error(status, code, text)
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "queued"
    retry = reload(message)
    assert retry.attempts == 1 and retry.next_attempt_at > T0
    assert retry.error.startswith("will retry: Twilio") and str(status) in retry.error

    assert message_send(message_id=message.pk, now=retry.next_attempt_at) == "sent"
    assert len(twilio.posts) == 2
    first, again = (dict(post.form) for post in twilio.posts)
    # The same message again; its status callback token is signed anew (it carries the time of
    # signing) and names the same message.
    tokens = [form.pop("StatusCallback").rsplit("/", 1)[-1] for form in (first, again)]
    assert [status_token_read(token) for token in tokens] == [message.pk, message.pk]
    assert first == again
    assert reload(message).status == "sent"


def test_twilio_unreachable_is_transient(org, texter, sms_template, twilio, settings):
    with socket.socket() as sock:  # a port nobody listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        settings.TWILIO_API_URL = f"http://127.0.0.1:{sock.getsockname()[1]}"
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "queued"
    assert "Twilio unreachable: ConnectionError" in reload(message).error


def test_an_invalid_number_fails_the_message_and_suppresses_it_as_a_hard_bounce(org, texter, sms_template, twilio):
    twilio.error(400, 21211, "The 'To' number +4915112345678 is not a valid phone number.")
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "failed"

    message = reload(message)
    assert "21211" in message.error and "not a valid phone number" in message.error
    suppression = Suppression.objects.get(channel="sms", address=phone_index(PHONE))
    assert suppression.reason == "hard_bounce"
    assert message_send(message_id=enqueue(org, texter, sms_template, key="sms-2").pk, now=T0) == "blocked"


def test_another_4xx_fails_the_message_without_suppressing_the_number(org, texter, sms_template, twilio):
    twilio.error(400, 21408, "Permission to send an SMS has not been enabled for the region of the 'To' number")
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "failed"
    assert "21408" in reload(message).error
    assert not Suppression.objects.exists()
    assert len(twilio.posts) == 1  # permanent: not tried again


def test_an_unsubscribed_recipient_fails_the_message_and_records_a_stop_suppression(org, texter, sms_template, twilio):
    twilio.error(400, 21610, "Attempt to send to unsubscribed recipient")
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "failed"

    assert "21610" in reload(message).error
    assert Suppression.objects.get(channel="sms", address=phone_index(PHONE)).reason == "sms_stop"


def test_without_twilio_settings_the_message_fails_with_a_readable_reason(org, texter, sms_template, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    settings.TWILIO_AUTH_TOKEN = ""
    settings.TWILIO_FROM = FROM
    settings.SMS_RATE_PER_S = 0
    message = enqueue(org, texter, sms_template)

    assert message_send(message_id=message.pk, now=T0) == "failed"
    assert reload(message).error == (
        "SMS is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio's credentials and sender)."
    )


# --- status callback --------------------------------------------------------------------------------


def twilio_post(path: str, form: dict, *, token: str = AUTH_TOKEN, signature: str | None = None):
    """POSTs ``form`` to ``path`` as Twilio would, signed for ``SITE_URL`` + path with ``token``."""
    if signature is None:
        signature = RequestValidator(token).compute_signature(f"{SITE_URL}{path}", form)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return Client().post(path, form, headers=headers)


@pytest.fixture
def sent(org, texter, sms_template, twilio) -> tuple[Message, str]:
    """An SMS to Ana that Twilio accepted, and the path of its status callback."""
    message = enqueue(org, texter, sms_template)
    assert message_send(message_id=message.pk, now=T0) == "sent"
    callback = twilio.posts[-1].form["StatusCallback"]
    return reload(message), callback.removeprefix(SITE_URL)


def test_a_signed_delivered_callback_moves_the_message_to_delivered(sent):
    message, path = sent
    form = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}

    response = twilio_post(path, form)

    assert response.status_code == 204
    message = reload(message)
    assert message.status == "delivered"
    assert [h["status"] for h in message.status_history] == ["queued", "sent", "delivered"]

    assert twilio_post(path, form).status_code == 204  # Twilio retried: recorded once
    assert len(reload(message).status_history) == 3


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "wrong-token"])
def test_a_callback_with_a_bad_or_missing_signature_is_refused_and_changes_nothing(sent, signature):
    message, path = sent
    form = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
    if signature == "wrong-token":
        signature = RequestValidator("another-token").compute_signature(f"{SITE_URL}{path}", form)

    response = twilio_post(path, form, signature=signature)

    assert response.status_code == 403
    assert reload(message).status == "sent" and len(reload(message).status_history) == 2


def test_a_signature_for_other_form_values_is_refused(sent):
    message, path = sent
    signed_for = {"MessageSid": message.provider_message_id, "MessageStatus": "sent"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{SITE_URL}{path}", signed_for)

    response = twilio_post(path, {**signed_for, "MessageStatus": "delivered"}, signature=signature)

    assert response.status_code == 403 and reload(message).status == "sent"


def test_a_signed_callback_with_a_forged_token_is_a_400(sent):
    message, path = sent
    forged = path[:-4] + "abcd"

    response = twilio_post(forged, {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"})

    assert response.status_code == 400 and reload(message).status == "sent"


def test_an_undelivered_callback_to_a_landline_fails_the_message_and_suppresses_the_number(sent):
    message, path = sent

    response = twilio_post(
        path, {"MessageSid": message.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30006"}
    )

    assert response.status_code == 204
    message = reload(message)
    assert message.status == "failed" and "30006" in message.error
    assert Suppression.objects.get(channel="sms", address=phone_index(PHONE)).reason == "hard_bounce"


def test_an_unreachable_handset_fails_the_message_but_keeps_the_number(sent):
    message, path = sent

    twilio_post(path, {"MessageSid": message.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30003"})

    message = reload(message)
    assert message.status == "failed" and "error 30003" in message.error
    assert not Suppression.objects.exists()


# --- inbound ----------------------------------------------------------------------------------------

INBOUND = "/m/sms/inbound"


def text_in(body: str, *, sid: str = "SMin1", phone: str = PHONE):
    return twilio_post(INBOUND, {"From": phone, "To": FROM, "Body": body, "MessageSid": sid, "AccountSid": ACCOUNT_SID})


def test_stop_blocks_the_next_send_and_start_allows_it_again(org, texter, sms_template, twilio):
    response = text_in("  stop ")

    assert response.status_code == 200 and response["Content-Type"] == "application/xml"
    assert Suppression.objects.get(channel="sms", address=phone_index(PHONE)).reason == "sms_stop"
    assert consent_states(org=org, contact_ids=[texter.pk], purpose="sms") == {texter.pk: False}
    withdrawal = ConsentRecord.objects.filter(contact=texter, purpose="sms").first()
    assert (withdrawal.granted, withdrawal.source, withdrawal.proof["body"]) == (False, "sms_reply", "  stop ")

    blocked = enqueue(org, texter, sms_template, key="after-stop")
    assert message_send(message_id=blocked.pk, now=T0) == "blocked"
    assert reload(blocked).error.startswith("no consent: sms was withdrawn")
    assert twilio.posts == []

    assert text_in("START", sid="SMin2").status_code == 200

    assert not Suppression.objects.exists()
    assert consent_states(org=org, contact_ids=[texter.pk], purpose="sms") == {texter.pk: True}
    allowed = enqueue(org, texter, sms_template, key="after-start")
    assert message_send(message_id=allowed.pk, now=T0) == "sent"
    assert len(twilio.posts) == 1


def test_stop_blocks_transactional_texts_too(org, texter, template_factory, twilio):
    receipt = template_factory("receipt", channel="sms", purpose="transactional")
    text_in("UNSUBSCRIBE")

    message = enqueue(org, texter, receipt)

    assert message_send(message_id=message.pk, now=T0) == "blocked"
    assert reload(message).error == "suppressed: replied stop"


def test_stop_acts_in_every_org_with_the_number_and_only_there(org, other_org, texter, twilio):
    with scopes_disabled():
        twin = ContactFactory(org=other_org, phone=PHONE)
        stranger = ContactFactory(org=other_org, phone="+4915199999999")

    text_in("Quit")

    with scopes_disabled():  # both orgs' rows: read through the system alias (row-level security)
        suppressions = Suppression.objects.using(system_alias())
        assert set(suppressions.values_list("org_id", "address", "reason")) == {
            (org.pk, phone_index(PHONE), "sms_stop"),
            (other_org.pk, phone_index(PHONE), "sms_stop"),
        }
        records = ConsentRecord.objects.using(system_alias()).filter(purpose="sms", granted=False)
        withdrawn = set(records.values_list("contact_id", flat=True))
    assert withdrawn == {texter.pk, twin.pk} and stranger.pk not in withdrawn


def test_help_answers_twiml_naming_the_org(org, sent):
    org.name, org.from_email = "Acme Dental", "hello@acme.io"
    org.save()

    response = text_in("help")

    assert response.status_code == 200 and response["Content-Type"] == "application/xml"
    body = response.content.decode()
    assert body.startswith("<?xml") and "<Response><Message>" in body
    assert "Acme Dental" in body and "Reply STOP to unsubscribe." in body
    assert not Suppression.objects.exists()


def test_another_text_is_an_sms_received_event_for_the_contact_texted_last(org, other_org, sent, twilio):
    message, _ = sent
    with scopes_disabled():
        ContactFactory(org=other_org, phone=PHONE)  # never texted: does not get the reply

    response = text_in("Can we make it 4?", sid="SMreply1")
    text_in("Can we make it 4?", sid="SMreply1")  # Twilio sent the webhook twice

    assert response.status_code == 200 and response.content.decode().endswith("<Response />")
    with scopes_disabled():
        (event,) = Event.objects.filter(type="sms_received")
    assert (event.org_id, event.contact_id, event.source) == (org.pk, message.contact_id, "sms")
    # Not the sender's number: it is the contact's, kept encrypted there, not in clear in an event.
    assert event.properties == {"body": "Can we make it 4?", "to": FROM, "in_reply_to": message.pk}
    assert not Suppression.objects.exists()


def test_an_inbound_text_with_a_bad_signature_is_refused_and_records_nothing(org, texter, twilio):
    form = {"From": PHONE, "To": FROM, "Body": "STOP", "MessageSid": "SMx"}

    response = twilio_post(INBOUND, form, token="not-the-auth-token")

    assert response.status_code == 403
    assert not Suppression.objects.exists()
    assert consent_states(org=org, contact_ids=[texter.pk], purpose="sms") == {texter.pk: True}


def test_the_status_callback_url_uses_site_url_not_the_request_host(sent, settings):
    message, path = sent
    form = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
    signed_for_request_host = RequestValidator(AUTH_TOKEN).compute_signature(f"http://testserver{path}", form)

    assert twilio_post(path, form, signature=signed_for_request_host).status_code == 403
    assert reload(message).status == "sent"


def test_a_replayed_stop_is_ignored_and_the_number_stays_subscribed(org, texter, twilio):
    # Twilio's signature covers the URL and the form, not the time: a captured STOP stays valid.
    stop = {"From": PHONE, "To": FROM, "Body": "STOP", "MessageSid": "SMstop1", "AccountSid": ACCOUNT_SID}
    assert twilio_post(INBOUND, stop).status_code == 200
    assert text_in("START", sid="SMstart1").status_code == 200
    records = ConsentRecord.objects.filter(contact=texter, purpose="sms").count()

    replayed = twilio_post(INBOUND, stop)

    assert replayed.status_code == 200 and replayed.content.decode().endswith("<Response />")
    assert not Suppression.objects.exists()
    assert consent_states(org=org, contact_ids=[texter.pk], purpose="sms") == {texter.pk: True}
    assert ConsentRecord.objects.filter(contact=texter, purpose="sms").count() == records


def test_a_replayed_help_gets_an_empty_answer(org, sent):
    assert "Reply STOP" in text_in("help", sid="SMhelp1").content.decode()

    assert text_in("help", sid="SMhelp1").content.decode().endswith("<Response />")


def test_an_inbound_text_without_a_message_sid_is_a_400_naming_it(org, texter, twilio):
    response = twilio_post(INBOUND, {"From": PHONE, "To": FROM, "Body": "STOP", "AccountSid": ACCOUNT_SID})

    assert response.status_code == 400 and "MessageSid" in response.content.decode()
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("field", ["MessageSid", "Body", "To"])
def test_a_signed_text_holding_a_nul_is_a_400_naming_the_field(org, texter, twilio, field):
    form = {"From": PHONE, "To": FROM, "Body": "STOP", "MessageSid": "SMnul", "AccountSid": ACCOUNT_SID}
    form[field] = form[field] + "\x00"
    response = twilio_post(INBOUND, form)

    assert response.status_code == 400 and field in response.content.decode()
    assert not Suppression.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_of_one_stop_act_once(org, texter, twilio):
    # The second delivery waits on the claim's unique index until the first commits, then finds
    # the sid claimed (the suppression's unique index would serialise STOP alone too; the claim
    # makes it hold for every keyword).
    form = {"From": PHONE, "To": FROM, "Body": "STOP", "MessageSid": "SMtwice", "AccountSid": ACCOUNT_SID}
    start = threading.Barrier(2)
    statuses = []

    def deliver():
        try:
            start.wait()
            statuses.append(twilio_post(INBOUND, form).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200, 200]
    assert ConsentRecord.objects.filter(contact=texter, purpose="sms", granted=False).count() == 1
