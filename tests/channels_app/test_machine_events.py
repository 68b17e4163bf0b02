"""Machine opens and clicks (mail scanners, link checkers, Apple Mail Privacy Protection) are their
own event types, ``email_opened_machine`` and ``email_clicked_machine``: stored beside the person's
own open and click, counted nowhere that does not name them (scoring, ``event_count``,
``wait_for_event``), and the first human open or click after them is the contact's."""

import base64
import importlib
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from anymail.signals import AnymailTrackingEvent, EventType
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from channels_app import signed_links
from channels_app.esp_tracking import tracking_event_received
from marketing.conditions import evaluate, to_q
from marketing.dispatch import dispatch_batch_run
from marketing.models import Contact, DispatchBatch, Event
from scoring.models import ContactScore, ScoreLedger
from tests.channels_app.test_esp_tracking import SECRET, URL, engagement
from tests.channels_app.test_tracking import BROWSER, make_message, path_of
from tests.scoring.test_rules import make_model, make_rule
from tests.workflows.conftest import only_instance
from workflows.models import WorkflowStepRun
from workflows.services import workflow_enrol

SCANNER = "Mozilla/5.0 (compatible; Proofpoint URL Defense scanner)"
LINK = "https://acme.io/pricing?utm_campaign=nov"


@pytest.fixture
def person():
    return Client(HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def scanner():
    return Client(HTTP_USER_AGENT=SCANNER)


def dispatch_pending():
    """Runs every stored batch through the consumers (scoring, workflows), as the dispatch task does."""
    for batch in DispatchBatch.objects.filter(status=DispatchBatch.Status.PENDING).order_by("pk"):
        dispatch_batch_run(batch_id=batch.pk)


def history(message):
    message.refresh_from_db()
    return [(entry["status"], entry.get("reason")) for entry in message.status_history]


# --- the finding: a scanner's click, then the person's -----------------------------------------------


def test_a_scanners_click_then_the_persons_click_are_two_events_and_score_once(org, person, scanner):
    model = make_model(org)
    clicked = make_rule(model, "email_clicked", 10)
    message = make_message(org)
    link = path_of(signed_links.click_url(message.pk, LINK))

    assert scanner.get(link).status_code == 302  # the scanner still gets the redirect
    assert person.get(link)["Location"] == LINK
    person.get(link)  # the person again: nothing new
    dispatch_pending()

    machine, human = Event.objects.filter(contact=message.contact).order_by("id")
    assert (machine.type, human.type) == ("email_clicked_machine", "email_clicked")
    assert machine.properties["url"] == human.properties["url"] == LINK
    assert machine.properties["machine_reason"] == "scanner (proofpoint)"
    assert "machine_click" not in human.properties and "machine_reason" not in human.properties
    assert list(ScoreLedger.objects.filter(rule=clicked).values_list("event", flat=True)) == [human.pk]
    assert ContactScore.objects.get(contact=message.contact, model=model).score == model.base + 10
    assert history(message) == [("clicked", "machine click: scanner (proofpoint)"), ("clicked", "link")]
    assert message.status == "clicked"


def test_a_machine_click_alone_leaves_the_message_unclicked(org, scanner):
    message = make_message(org)
    scanner.get(path_of(signed_links.click_url(message.pk, LINK)))
    scanner.get(path_of(signed_links.click_url(message.pk, LINK)))  # a scanner's retry: one machine click
    assert list(Event.objects.values_list("type", flat=True)) == ["email_clicked_machine"]
    message.refresh_from_db()
    assert message.status == "sent"


def test_a_machine_open_then_the_persons_open_are_two_events_and_score_once(org, person):
    model = make_model(org)
    opened = make_rule(model, "email_opened", 2)
    message = make_message(org)
    pixel = path_of(signed_links.open_url(message.pk))

    person.get(pixel, HTTP_USER_AGENT="Mozilla/5.0")  # Apple Mail Privacy Protection's proxy
    person.get(pixel)
    dispatch_pending()

    machine, human = Event.objects.filter(contact=message.contact).order_by("id")
    assert (machine.type, human.type) == ("email_opened_machine", "email_opened")
    assert (machine.message_id, human.message_id) == (f"open-machine:{message.pk}", f"open:{message.pk}")
    assert machine.properties["machine_reason"] == "apple mail privacy protection"
    assert "machine_open" not in human.properties
    assert list(ScoreLedger.objects.filter(rule=opened).values_list("event", flat=True)) == [human.pk]
    assert history(message) == [("opened", "machine open: apple mail privacy protection"), ("opened", "pixel")]
    assert message.status == "opened"


def test_a_rule_that_names_the_machine_type_scores_it(org, scanner):
    model = make_model(org)
    machine_rule = make_rule(model, "email_clicked_machine", 1)
    message = make_message(org)
    scanner.get(path_of(signed_links.click_url(message.pk, LINK)))
    dispatch_pending()
    assert ScoreLedger.objects.filter(rule=machine_rule).count() == 1


# --- conditions and waits ---------------------------------------------------------------------------


def test_event_count_of_email_clicked_ignores_machine_clicks(org, person, scanner):
    message = make_message(org)
    link = path_of(signed_links.click_url(message.pk, LINK))
    rule = {">": [{"event_count": ["email_clicked", None, 30]}, 0]}
    contact = message.contact

    scanner.get(link)
    assert evaluate(rule, {}, contact=contact) is False
    assert not Contact.objects.filter(to_q(rule, "contact", org=org), pk=contact.pk).exists()

    person.get(link)
    assert evaluate(rule, {}, contact=contact) is True
    assert Contact.objects.filter(to_q(rule, "contact", org=org), pk=contact.pk).exists()


def test_wait_for_event_on_email_clicked_is_not_woken_by_a_machine_click(org, publish, drain, person, scanner):
    workflow = publish(
        [
            {
                "id": "w",
                "type": "wait_for_event",
                "event": "email_clicked",
                "timeout": "P3D",
                "next": "clicked",
                "timeout_next": "gave_up",
            },
            {"id": "clicked", "type": "action", "action": "log", "config": {"message": "clicked"}, "next": None},
            {"id": "gave_up", "type": "action", "action": "log", "config": {"message": "timeout"}, "next": None},
        ]
    )
    message = make_message(org)
    workflow_enrol(workflow=workflow, contact_ids=[message.contact_id], trigger_type="manual", trigger_key="k")
    drain()
    link = path_of(signed_links.click_url(message.pk, LINK))

    scanner.get(link)
    dispatch_pending()
    drain()
    assert only_instance(workflow).status == "waiting"

    person.get(link)
    dispatch_pending()
    drain()
    instance = only_instance(workflow)
    done = WorkflowStepRun.objects.filter(instance=instance, status="completed").order_by("id")
    assert [run.step_id for run in done] == ["w", "clicked"]
    assert instance.context["steps"]["w"]["result"]["event"]["type"] == "email_clicked"


# --- ESP reports ------------------------------------------------------------------------------------


@pytest.fixture
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def test_esp_machine_opens_and_clicks_do_not_move_the_status(org, webhook_secret):
    message = make_message(org, provider="email", provider_message_id="pm-1")
    auth = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}

    def post(payload):
        response = Client().post(URL, data=json.dumps(payload), content_type="application/json", **auth)
        assert response.status_code == 200

    post(engagement("Open", "pm-1", UserAgent="Mozilla/5.0"))  # Apple MPP through Postmark
    post(engagement("Click", "pm-1", UserAgent=SCANNER, OriginalLink=LINK))
    message.refresh_from_db()
    assert message.status == "sent"
    assert [reason for _, reason in history(message)] == [
        "Postmark opened (machine: apple mail privacy protection)",
        "Postmark clicked (machine: scanner (proofpoint))",
    ]

    post(engagement("Click", "pm-1", OriginalLink=LINK, ReceivedAt="2026-11-30T10:09:40Z"))  # the person
    message.refresh_from_db()
    assert message.status == "clicked"


@pytest.mark.parametrize(
    ("esp_name", "raw"),
    [
        ("SendGrid", {"event": "open", "sg_machine_open": True}),
        ("Mailgun", {"event-data": {"event": "opened", "client-info": {"bot": "apple"}}}),
    ],
)
def test_esps_own_machine_flags_are_honoured(org, webhook_secret, esp_name, raw):
    message = make_message(org, provider="email", provider_message_id="esp-1")
    event = AnymailTrackingEvent(
        event_type=EventType.OPENED,
        message_id="esp-1",
        recipient=message.to,
        timestamp=timezone.now(),
        user_agent="Mozilla/5.0 (iPhone) AppleWebKit/605.1.15",
        esp_event=raw,
    )
    tracking_event_received(sender=object, event=event, esp_name=esp_name)
    message.refresh_from_db()
    assert message.status == "sent"
    assert history(message) == [("opened", f"{esp_name} opened (machine: {esp_name} flags it)")]


# --- the data migration -----------------------------------------------------------------------------


def test_the_migration_converts_flagged_events_and_back(org):
    migration = importlib.import_module("marketing.migrations.0010_machine_event_types")
    contact = make_message(org).contact
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    made = {}
    for key, type_, properties in [
        ("mo", "email_opened", {"machine_open": True}),
        ("ho", "email_opened", {"machine_open": False}),
        ("mc", "email_clicked", {"machine_click": True, "url": LINK}),
        ("hc", "email_clicked", {"machine_click": False, "url": LINK}),
        ("old", "email_clicked", {"url": LINK}),  # stored before clicks were flagged
        ("api", "page_view", {"machine_open": True}),  # not an email event: left alone
    ]:
        made[key] = Event.objects.create(
            org=org, contact=contact, type=type_, properties=properties, occurred_at=at, message_id=key
        )
    editor = SimpleNamespace(connection=connection)

    migration.machine_events_split(apps, editor)
    types = dict(Event.objects.values_list("message_id", "type"))
    assert types == {
        "mo": "email_opened_machine",
        "ho": "email_opened",
        "mc": "email_clicked_machine",
        "hc": "email_clicked",
        "old": "email_clicked",
        "api": "page_view",
    }
    assert Event.objects.get(message_id="mc").properties == {"machine_click": True, "url": LINK}

    Event.objects.create(  # recorded by the new code: no flag
        org=org, contact=contact, type="email_opened_machine", properties={}, occurred_at=at, message_id="new"
    )
    migration.machine_events_merge(apps, editor)
    rows = {m: (t, p) for m, t, p in Event.objects.values_list("message_id", "type", "properties")}
    assert rows["mo"] == ("email_opened", {"machine_open": True})
    assert rows["new"] == ("email_opened", {"machine_open": True})
    assert rows["mc"] == ("email_clicked", {"machine_click": True, "url": LINK})
    assert (rows["ho"][0], rows["hc"][0], rows["api"][0]) == ("email_opened", "email_clicked", "page_view")


# --- the timeline -----------------------------------------------------------------------------------


def test_the_timeline_shows_machine_events_apart(org, console):
    message = make_message(org)
    now = timezone.now()
    for i, type_ in enumerate(["email_clicked_machine", "email_clicked"]):
        Event.objects.create(
            org=org,
            contact=message.contact,
            type=type_,
            properties={"url": LINK},
            occurred_at=now - timedelta(minutes=5 - i),
            message_id=f"t{i}",
        )
    page = console.get(reverse("admin:marketing_contact_timeline", args=[message.contact_id])).content.decode()
    assert page.count('class="timeline-machine"') == 1
    assert "machine click" in page
