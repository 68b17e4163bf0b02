"""Feature rows for predictive scoring: windows, recency, email engagement, fit, and no leakage."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.models import Event
from scoring.features import LOOKBACK_DAYS, FeatureSpec, contact_features, feature_spec_for, training_features
from scoring.models import Handoff
from tests.factories import CompanyFactory, ContactFactory

NOW = timezone.now().replace(microsecond=0)
SPEC = FeatureSpec(
    event_types=("page_view", "email_opened", "email_clicked", "demo_requested"),
    page_paths=("/pricing",),
    industries=("software", "retail"),
    countries=("DE", "US"),
)


def _event(org, contact, event_type, days_ago, **properties):
    Event.objects.create(
        org=org,
        contact=contact,
        type=event_type,
        properties=properties,
        occurred_at=NOW - timedelta(days=days_ago),
        message_id=f"{contact.pk}-{event_type}-{days_ago}-{len(properties)}-{sorted(properties.items())}",
    )


def _row(rows, contact):
    return dict(zip(rows.names, rows.X[rows.contact_ids.index(contact.pk)], strict=True))


@pytest.fixture
def ana(org):
    company = CompanyFactory(org=org, industry="software", size=120)
    contact = ContactFactory(
        org=org, company=company, job_title="VP Marketing", country="DE", created_at=NOW - timedelta(days=50)
    )
    for days in (2, 20, 60, 200):  # one in each window, one outside them all
        _event(org, contact, "page_view", days, path="/blog")
    _event(org, contact, "page_view", 4, path="/pricing")
    _event(org, contact, "page_view", 45, path="/pricing")
    _event(org, contact, "email_opened", 10)
    _event(org, contact, "email_opened", 12)
    _event(org, contact, "email_opened_machine", 5)  # a proxy's open: not engagement
    _event(org, contact, "email_clicked", 3)
    _event(org, contact, "email_clicked_machine", 0.5)  # a scanner's click: not even recency
    _event(org, contact, "unsubscribed", 1)  # not in the vocabulary: only recency sees it
    return contact


def test_counts_per_window_recency_and_engagement(org, ana):
    row = _row(contact_features(org=org, contact_ids=[ana.pk], spec=SPEC, now=NOW), ana)

    assert (row["events_7d:page_view"], row["events_30d:page_view"], row["events_90d:page_view"]) == (2, 3, 5)
    assert (row["page_views_7d:/pricing"], row["page_views_30d:/pricing"], row["page_views_90d:/pricing"]) == (1, 1, 2)
    assert row["events_30d:email_opened"] == 2  # the machine open is not counted
    assert row["days_since_last_event"] == pytest.approx(1, abs=1e-3)  # nor the machine click
    assert row["events_7d:email_clicked"] == 1 and row["events_90d:demo_requested"] == 0
    assert row["days_since_last_event"] == pytest.approx(1, abs=1e-3)
    assert row["days_since_first_seen"] == pytest.approx(50, abs=1e-3)
    assert (row["email_opens_90d"], row["email_clicks_90d"], row["email_click_rate"]) == (2, 1, 0.5)


def test_fit_properties(org, ana):
    big_boss = ContactFactory(org=org, job_title="Co-Founder & CEO", country="FR")
    row = _row(contact_features(org=org, contact_ids=[ana.pk, big_boss.pk], spec=SPEC, now=NOW), ana)
    other = _row(contact_features(org=org, contact_ids=[big_boss.pk], spec=SPEC, now=NOW), big_boss)

    assert row["company_size_log"] == pytest.approx(math.log1p(120)) and row["has_company"] == 1
    assert (row["industry:software"], row["industry:retail"]) == (1, 0)
    assert (row["country:DE"], row["country:US"]) == (1, 0)
    assert (row["seniority:vp"], row["seniority:executive"], row["seniority:manager"]) == (1, 0, 0)
    assert other["seniority:executive"] == 1 and other["country:DE"] == other["country:US"] == 0
    assert other["has_company"] == 0 and other["days_since_last_event"] == LOOKBACK_DAYS


def test_one_query_for_many_contacts_and_only_the_org(org, other_org, ana, django_assert_num_queries):
    contacts = [ContactFactory(org=org) for _ in range(20)]
    stranger = ContactFactory(org=other_org)
    with django_assert_num_queries(1):
        rows = contact_features(
            org=org, contact_ids=[c.pk for c in contacts] + [ana.pk, stranger.pk], spec=SPEC, now=NOW
        )
    assert stranger.pk not in rows.contact_ids
    assert rows.contact_ids == sorted([c.pk for c in contacts] + [ana.pk])
    assert rows.X.shape == (21, len(SPEC.names))


def test_training_takes_a_converted_contact_as_it_was_before_converting(org):
    buyer = ContactFactory(org=org, lifecycle_stage="customer", created_at=NOW - timedelta(days=100))
    _event(org, buyer, "page_view", 35, path="/pricing")  # 5 days before the purchase
    _event(org, buyer, "demo_requested", 32)
    _event(org, buyer, "purchase", 30)
    _event(org, buyer, "page_view", 29, path="/pricing")  # after: must not count
    _event(org, buyer, "page_view", 1, path="/docs")
    _event(org, buyer, "email_clicked", 1)
    browser = ContactFactory(org=org, created_at=NOW - timedelta(days=80))
    _event(org, browser, "page_view", 3, path="/pricing")

    rows = training_features(org=org, spec=SPEC, now=NOW)
    row = _row(rows, buyer)

    assert rows.y[rows.contact_ids.index(buyer.pk)] == 1 and rows.y[rows.contact_ids.index(browser.pk)] == 0
    assert row["events_7d:page_view"] == 1 and row["events_90d:page_view"] == 1  # only the one before
    assert row["events_7d:demo_requested"] == 1 and row["events_90d:email_clicked"] == 0
    assert row["days_since_last_event"] == pytest.approx(2, abs=1e-3)  # the demo request, 2 days before buying
    assert row["days_since_first_seen"] == pytest.approx(70, abs=1e-3)
    assert _row(rows, browser)["days_since_first_seen"] == pytest.approx(80, abs=1e-3)


def test_a_converted_handoff_dates_the_conversion_and_a_stage_alone_labels(org):
    sold = ContactFactory(org=org, lifecycle_stage="customer")
    _event(org, sold, "page_view", 12, path="/pricing")
    _event(org, sold, "page_view", 2, path="/pricing")
    Handoff.objects.create(
        org=org,
        contact=sold,
        reason=Handoff.Reason.MANUAL,
        status=Handoff.Status.CONVERTED,
        score=300,
        sla_due_at=NOW,
        closed_at=NOW - timedelta(days=10),
    )
    undated = ContactFactory(org=org, lifecycle_stage="evangelist")
    _event(org, undated, "page_view", 2, path="/pricing")

    rows = training_features(org=org, spec=SPEC, now=NOW)

    assert _row(rows, sold)["events_90d:page_view"] == 1
    assert rows.y[rows.contact_ids.index(undated.pk)] == 1
    assert _row(rows, undated)["events_7d:page_view"] == 1  # no date known: as of now


def test_vocabulary_is_the_orgs_commonest_and_round_trips_through_names(org, ana):
    spec = feature_spec_for(org=org)
    _event(org, ana, "purchase", 1)

    assert spec.event_types[0] == "page_view" and "purchase" not in feature_spec_for(org=org).event_types
    assert not {"email_opened_machine", "email_clicked_machine"} & set(spec.event_types)
    assert spec.page_paths[:2] == ("/blog", "/pricing")
    assert spec.industries == ("software",) and spec.countries == ("DE",)
    assert FeatureSpec.from_names(spec.names) == spec
    with pytest.raises(ValueError, match="feature names"):
        FeatureSpec.from_names([*spec.names, "shoe_size"])
