"""The scoring consumer (scoring/consumers.py) on the real dispatch path: events in through the
API are scored once, a redelivered batch adds nothing, the work per batch is a bounded number of
queries, and a failing prediction leaves the rules' scores standing."""

import logging
from datetime import timedelta

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from marketing.dispatch import consumers, dispatch_batch_run
from marketing.models import DispatchBatch, Event
from scoring.models import ContactScore, Handoff, ScoreLedger
from tests.factories import ContactFactory
from tests.scoring.test_rules import PRICING, assert_identity, make_event, make_model, make_rule

EVENTS = "/api/v1/events/"


@pytest.fixture
def model(org):
    model = make_model(org)
    make_rule(model, "page_view", 15, condition=PRICING, cap_count=3, cap_period="day")
    make_rule(model, "page_view", 5, condition={"==": [{"var": ["event.properties.path", ""]}, "/"]})
    make_rule(model, "email_clicked", 10)
    make_rule(model, "demo_requested", 100, creates_handoff=True)
    make_rule(model, points=20, kind="fit", condition={"==": [{"var": "country"}, "DE"]})
    return model


def test_the_consumer_is_registered():
    assert "scoring" in consumers()


def test_events_through_the_api_are_scored_once_even_when_the_batch_is_redelivered(
    org, model, api, eager_tasks, django_capture_on_commit_callbacks
):
    events = [
        {"type": "page_view", "email": "ana@example.com", "properties": {"path": "/pricing"}},
        {"type": "email_clicked", "email": "ana@example.com"},
        {"type": "demo_requested", "email": "ana@example.com"},
        {"type": "page_view", "email": "bo@example.com", "properties": {"path": "/"}},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(EVENTS, {"events": events}, content_type="application/json")
    assert response.status_code in (200, 201, 207), response.content
    ana = ContactScore.objects.get(contact__email="ana@example.com", model=model)
    assert ana.score == 100 + 15 + 10 + 100  # created by the API without a country: no fit points
    assert ContactScore.objects.get(contact__email="bo@example.com").score == 105
    rows = ScoreLedger.objects.count()

    demo = Event.objects.get(type="demo_requested")
    [batch] = [b for b in DispatchBatch.objects.all() if demo.pk in b.event_ids]
    DispatchBatch.objects.filter(pk=batch.pk).update(status=DispatchBatch.Status.PENDING)  # as the sweeper would
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_batch_run(batch_id=batch.pk)

    assert ScoreLedger.objects.count() == rows
    assert ContactScore.objects.get(pk=ana.pk).score == ana.score
    assert Handoff.objects.filter(contact__email="ana@example.com").count() == 1
    assert_identity(model)


def test_calling_the_consumer_twice_with_the_same_batch_changes_nothing_the_second_time(org, model):
    contact = ContactFactory(org=org)
    events = [make_event(contact, "email_clicked", at=timezone.now() - timedelta(minutes=i)) for i in range(3, 0, -1)]
    scoring = consumers()["scoring"]
    scoring.consume(events)
    ledger = list(ScoreLedger.objects.order_by("id").values_list("id", "delta"))
    scoring.consume(events)
    assert list(ScoreLedger.objects.order_by("id").values_list("id", "delta")) == ledger
    assert ContactScore.objects.get(contact=contact).score == 100 + 20 + 30


def test_a_batch_of_200_events_takes_a_bounded_number_of_queries(org, model, django_assert_max_num_queries):
    contacts = [ContactFactory(org=org, country="DE" if i % 2 else "US") for i in range(40)]
    now = timezone.now()
    kinds = [("page_view", {"path": "/pricing"}), ("page_view", {"path": "/"}), ("email_clicked", {})]
    events = sorted(
        (make_event(contacts[i % 40], *kinds[i % 3], at=now - timedelta(minutes=200 - i)) for i in range(200)),
        key=lambda e: (e.contact_id, e.occurred_at, e.pk),
    )
    events.append(make_event(contacts[0], "demo_requested"))
    scoring = consumers()["scoring"]
    # models, rules, contacts, done rows, scores locked, scores created, caps, ledger, scores,
    # Contact.score, a handoff (a few queries), the crossing events (ingestion), and whether to ask
    # for predictions.
    with django_assert_max_num_queries(30):
        scoring.consume(events)
    assert ScoreLedger.objects.filter(reason="fit").count() == 20
    assert_identity(model)
    # Redelivered: found done up front, nothing written (two of them ask for profiling consent).
    with django_assert_max_num_queries(8 + 2):
        scoring.consume(events)


def test_a_failing_prediction_leaves_the_rules_scores(
    org, model, caplog, eager_tasks, django_capture_on_commit_callbacks
):
    from scoring.models import PredictiveModel

    # A stored model whose artifact cannot be loaded: the real prediction path (its task) fails.
    PredictiveModel.objects.create(org=org, version=1, algorithm="logistic_regression", artifact=b"not a model")
    contact = ContactFactory(org=org, country="US")
    with (
        caplog.at_level(logging.WARNING, logger="scoring.predictive"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        consumers()["scoring"].consume([make_event(contact, "email_clicked")])
    assert len(callbacks) == 1  # the prediction task
    assert ContactScore.objects.get(contact=contact).score == 110
    assert ContactScore.objects.get(contact=contact).probability is None
    assert "rules only" in caplog.text


def test_batches_of_a_thousand_events_keep_every_score_equal_to_its_ledger(org, model):
    """Five batches of 1,000 events over 500 contacts, with caps and fit points: the sum of the
    ledger's deltas is every score's distance from base, and no contact passes the daily cap.
    Throughput is the bench's business (``python manage.py bench scoring``), not a test's."""
    contacts = [ContactFactory(org=org, country="DE" if i % 2 else "US") for i in range(500)]
    now = timezone.now()
    kinds = [("page_view", {"path": "/pricing"}), ("page_view", {"path": "/"}), ("email_clicked", {})]
    rows = [
        Event(
            org=org,
            contact=contacts[i % 500],
            type=kinds[i % 3][0],
            properties=kinds[i % 3][1],
            occurred_at=now - timedelta(seconds=5000 - i),
            message_id=f"bench-{i}",
        )
        for i in range(5000)
    ]
    Event.objects.bulk_create(rows)
    stored = list(Event.objects.filter(org=org).order_by("contact_id", "occurred_at", "id"))
    scoring = consumers()["scoring"]
    for first in range(0, len(stored), 1000):
        scoring.consume(stored[first : first + 1000])
    assert ContactScore.objects.filter(org=org).count() == 500
    pricing = ScoreLedger.objects.filter(rule__points=15).values("contact").annotate(n=Count("pk"))
    assert max(row["n"] for row in pricing) == 3  # some contacts viewed pricing 4 times
    total = ScoreLedger.objects.aggregate(s=Sum("delta"))["s"]
    assert total == sum(ContactScore.objects.values_list("score", flat=True)) - 100 * 500
