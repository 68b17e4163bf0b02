"""Consent regimes: each purpose under opt-in and opt-out, at every place it is acted on — the
send guard per channel, tracking (API, pixel, message opens and clicks), scoring and prediction,
webhooks to third parties — and the console page that sets them."""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client

from channels_app import signed_links
from channels_app.models import Message, MessageTemplate, TemplateVersion
from channels_app.outbox import send_guards
from compliance.models import ConsentRegime, ConsentState, Purpose
from compliance.selectors import consent_allowed_ids, consent_regimes
from compliance.services import consent_record, consent_regimes_set
from marketing.consent_providers import consent_allowed_q
from marketing.ingestion import events_ingest, events_validate
from marketing.models import Contact, Event
from marketing.roles import Role
from marketing.services import api_key_create
from scoring.models import ContactScore, ScoreLedger, ScoringModel, ScoringRule
from scoring.rules import events_score
from tests.factories import ContactFactory
from workflows.actions import ActionContext, actions

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Berlin: no quiet hours
OPT_IN, OPT_OUT = "opt_in", "opt_out"


def regime(org, purpose, value):
    consent_regimes_set(org=org, regimes={purpose: value})


def person(org, **fields):
    return ContactFactory(org=org, phone="+4915112345678", time_zone="Europe/Berlin", **fields)


def say(org, contact, purpose, granted, at=T0 - timedelta(days=1)):
    consent_record(org=org, contact=contact, purpose=purpose, granted=granted, source="console", at=at)


# --- regimes ----------------------------------------------------------------------------------------


def test_defaults_keep_todays_behaviour_and_a_set_regime_is_kept_per_org(org, other_org):
    assert consent_regimes(org=org) == {
        "email_marketing": OPT_IN,
        "sms": OPT_IN,
        "push": OPT_IN,
        "tracking": OPT_OUT,
        "profiling": OPT_OUT,
        "sale_sharing": OPT_OUT,
    }
    regime(org, "tracking", OPT_IN)
    assert consent_regimes(org=org)["tracking"] == OPT_IN
    from marketing.tenancy import org_context

    with org_context(other_org):
        assert consent_regimes(org=other_org)["tracking"] == OPT_OUT


def test_an_unknown_purpose_or_regime_is_refused_naming_it(org):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        consent_regimes_set(org=org, regimes={"telepathy": OPT_IN, "sms": "maybe"})
    assert set(error.value.message_dict) == {"telepathy", "sms"}
    assert "opt_in or opt_out" in error.value.message_dict["sms"][0]


def test_the_state_follows_the_newest_record_and_filters_agree_in_sql(org):
    ana, bob, cy = person(org), person(org), person(org)
    say(org, ana, "profiling", True, at=T0)
    say(org, ana, "profiling", False, at=T0 - timedelta(days=3))  # recorded later, but older
    say(org, bob, "profiling", False)
    assert ConsentState.objects.get(contact=ana, purpose="profiling").granted is True
    for value, expected in ((OPT_OUT, {ana.pk, cy.pk}), (OPT_IN, {ana.pk})):
        regime(org, "profiling", value)
        ids = {ana.pk, bob.pk, cy.pk}
        assert consent_allowed_ids(org=org, contact_ids=ids, purpose="profiling") == expected
        in_sql = Contact.objects.filter(pk__in=ids).filter(consent_allowed_q(org=org, purpose="profiling"))
        assert set(in_sql.values_list("pk", flat=True)) == expected


# --- the send guard, per channel ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "purpose", "to"),
    [("email", "email_marketing", "x@example.com"), ("sms", "sms", "+4915112345678"), ("push", "push", "push:1")],
)
def test_the_send_guard_follows_each_channels_regime(org, channel, purpose, to):
    never, granted, withdrawn = person(org), person(org), person(org)
    say(org, granted, purpose, True)
    say(org, withdrawn, purpose, False)

    def verdict(contact):
        found = send_guards(org=org, contact=contact, channel=channel, purpose="marketing", to=to, now=T0)
        return found.verdict, found.reason

    regime(org, purpose, OPT_IN)
    assert verdict(never) == ("block", f"no consent: {purpose} was never granted")
    assert verdict(granted) == ("send", "")
    assert verdict(withdrawn) == ("block", f"no consent: {purpose} was withdrawn")
    regime(org, purpose, OPT_OUT)
    assert verdict(never) == ("send", "")
    assert verdict(granted) == ("send", "")
    assert verdict(withdrawn) == ("block", f"no consent: {purpose} was withdrawn")
    # Transactional mail needs no consent under either regime.
    found = send_guards(org=org, contact=withdrawn, channel=channel, purpose="transactional", to=to, now=T0)
    assert found.verdict == "send"


def test_a_webhook_message_is_stopped_by_an_opt_out_of_sale_or_sharing(org):
    never, withdrawn = person(org), person(org)
    say(org, withdrawn, "sale_sharing", False)

    def verdict(contact):
        return send_guards(org=org, contact=contact, channel="webhook", purpose="marketing", to="crm", now=T0)

    assert verdict(never).verdict == "send"
    assert (verdict(withdrawn).verdict, verdict(withdrawn).reason) == (
        "block",
        "no consent: sale_sharing was withdrawn",
    )
    regime(org, "sale_sharing", OPT_IN)
    assert verdict(never).reason == "no consent: sale_sharing was never granted"


def test_the_webhook_action_skips_a_contact_who_opted_out_of_sharing_and_says_why(org):
    from workflows.models import Workflow

    keeps, leaves = person(org), person(org)
    say(org, leaves, "sale_sharing", False)
    workflow = Workflow.objects.create(org=org, slug="w", name="W", draft_definition={"steps": []})
    webhook = actions()["webhook"]

    def run(contact):
        instance = type("Instance", (), {"workflow": workflow, "pk": 1, "context": {}})()
        ctx = ActionContext(
            org=org,
            contact=contact,
            instance=instance,
            step_id="post",
            idempotency_key="k",
            config={"url": "https://crm.example/hook"},
            now=T0,
            facts={"email": contact.email},
        )
        return webhook.run(ctx)

    assert run(leaves) == {"skipped": "not sent: the contact opted out of sale or sharing of their data (sale_sharing)"}
    assert run(keeps).request["body"]["contact"] == {"email": keeps.email}  # deferred to the sender


# --- tracking: the Segment API, the pixel, message opens and clicks -----------------------------------


def segment(path, body, key, **headers):
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    return Client().post(path, json.dumps(body), content_type="text/plain", headers={**auth, **headers})


@pytest.fixture
def write_key(org):
    org.allowed_origins = []
    return api_key_create(org=org, name="site", scope="write")[1]


def test_tracking_api_under_opt_out_stores_events_unless_the_contact_opted_out(org, write_key):
    stays, left = person(org, external_id="u-stays"), person(org, external_id="u-left")
    say(org, left, "tracking", False)
    for user in ("u-stays", "u-left"):
        response = segment("/v1/track", {"userId": user, "event": "Viewed", "messageId": user}, write_key)
        assert response.status_code == 200 and response.json()["success"] is True
    anonymous = segment("/v1/page", {"anonymousId": "a-1", "messageId": "p-1"}, write_key)
    assert anonymous.status_code == 200 and anonymous.json()["status"] == "stored"
    assert set(Event.objects.values_list("contact_id", flat=True)) == {
        stays.pk,
        Contact.objects.get(anonymous_ids__value="a-1").pk,
    }
    refused = segment("/v1/track", {"userId": "u-left", "event": "Viewed", "messageId": "again"}, write_key).json()
    assert refused["status"] == "dropped" and "not consented to tracking" in refused["reason"]


def test_tracking_api_under_opt_in_stores_only_for_contacts_who_agreed(org, write_key):
    regime(org, "tracking", OPT_IN)
    agreed, silent = person(org, external_id="u-agreed"), person(org, external_id="u-silent")
    say(org, agreed, "tracking", True)
    results = segment(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u-agreed", "event": "Viewed", "messageId": "m1"},
                {"type": "track", "userId": "u-silent", "event": "Viewed", "messageId": "m2"},
                {"type": "page", "anonymousId": "visitor", "messageId": "m3"},
            ]
        },
        write_key,
    ).json()["results"]
    assert [r["status"] for r in results] == ["stored", "dropped", "dropped"]
    assert list(Event.objects.values_list("contact_id", flat=True)) == [agreed.pk]
    assert not Contact.objects.filter(anonymous_ids__value="visitor").exists()  # nothing stored for them
    assert silent.consent_records.count() == 0


def test_segment_category_preferences_allow_under_opt_in_and_are_recorded_as_the_persons_choices(org, write_key):
    regime(org, "tracking", OPT_IN)
    known = person(org, external_id="u-1")
    allowed = {"context": {"consent": {"categoryPreferences": {"Analytics": True, "Advertising": False}}}}
    body = {"userId": "u-1", "event": "Viewed", "messageId": "c1", **allowed}
    assert segment("/v1/track", body, write_key).json()["status"] == "stored"
    choices = known.consent_records.order_by("purpose")
    assert [(r.purpose, r.granted, r.source) for r in choices] == [
        ("sale_sharing", False, "consent_banner"),
        ("tracking", True, "consent_banner"),
    ]
    # The banner sends its answers with every call: the same answers are not recorded again.
    segment("/v1/track", {**body, "messageId": "c1b"}, write_key)
    assert known.consent_records.count() == 2
    # An anonymous visitor whose banner allows analytics is tracked under opt-in too.
    anonymous = {"anonymousId": "v-1", "messageId": "c2", **allowed}
    assert segment("/v1/page", anonymous, write_key).json()["status"] == "stored"
    refused = {"userId": "u-1", "event": "Viewed", "messageId": "c3"}
    refused["context"] = {"consent": {"categoryPreferences": {"analytics": False}}}
    assert segment("/v1/track", refused, write_key).json()["status"] == "dropped"
    assert ConsentState.objects.get(contact=known, purpose="tracking").granted is False
    assert Event.objects.count() == 3
    # The banner changing its answer back grants again ...
    assert segment("/v1/track", {**body, "messageId": "c4"}, write_key).json()["status"] == "stored"
    assert ConsentState.objects.get(contact=known, purpose="tracking").granted is True


def test_a_banners_stored_yes_never_overrides_a_withdrawal_made_elsewhere_nor_grants_messages(org, write_key):
    known = person(org, external_id="u-2")
    say(org, known, "profiling", False)  # withdrawn on the preference centre, say
    preferences = {"Personalization": True, "email": True, "sms": False}
    body = {
        "userId": "u-2",
        "event": "Viewed",
        "messageId": "d1",
        "context": {"consent": {"categoryPreferences": preferences}},
    }
    assert segment("/v1/track", body, write_key).json()["status"] == "stored"
    states = dict(ConsentState.objects.filter(contact=known).values_list("purpose", "granted"))
    # Profiling stays withdrawn; a banner cannot grant email; its "no" to SMS is recorded.
    assert states == {"profiling": False, "sms": False}


def test_the_pixel_follows_the_tracking_regime(org, write_key):
    def pixel(aid):
        response = Client().get("/t/p.gif?" + urlencode({"k": write_key, "aid": aid, "url": "https://acme.example/"}))
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"

    pixel("visitor-1")
    assert Event.objects.count() == 1  # opt-out: an anonymous visitor is tracked
    regime(org, "tracking", OPT_IN)
    pixel("visitor-2")
    assert Event.objects.count() == 1  # opt-in: not without consent


def make_message(org, contact):
    template = MessageTemplate.objects.create(org=org, slug=f"t-{uuid.uuid4().hex[:8]}", name="News", channel="email")
    version = TemplateVersion.objects.create(org=org, template=template, number=1, variants=[])
    return Message.objects.create(
        org=org,
        contact=contact,
        channel="email",
        template_version=version,
        variant="A",
        idempotency_key=uuid.uuid4().hex,
        to=contact.email,
        status="sent",
    )


@pytest.mark.parametrize(("value", "stored"), [(OPT_OUT, True), (OPT_IN, False)])
def test_message_opens_and_clicks_of_a_contact_who_never_said_follow_the_regime(org, value, stored):
    regime(org, "tracking", value)
    message = make_message(org, person(org))
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0")
    client.get(urlsplit(signed_links.open_url(message.pk)).path)
    click = client.get(urlsplit(signed_links.click_url(message.pk, "https://acme.example/")).path)
    assert click.status_code == 302  # the person always reaches the link
    assert Event.objects.filter(type__in=["email_opened", "email_clicked"]).count() == (2 if stored else 0)
    message.refresh_from_db()
    assert (message.status == "clicked") is stored


# --- scoring and prediction -----------------------------------------------------------------------


@pytest.fixture
def scoring_model(org):
    model = ScoringModel.objects.create(org=org, slug="lead", name="Lead", is_default=True, active=True, base=0)
    ScoringRule.objects.create(
        org=org, model=model, name="Pricing", kind="behaviour", event_type="pricing_viewed", points=15
    )
    return model


def score_events(org, contacts):
    items, errors = events_validate([{"type": "pricing_viewed", "contact_id": c.pk} for c in contacts])
    events_ingest(org=org, items=items, errors=errors, source="api", dispatch=False)
    return events_score(org=org, events=list(Event.objects.filter(type="pricing_viewed")), now=T0)


@pytest.mark.parametrize("value", [OPT_OUT, OPT_IN])
def test_scoring_skips_contacts_without_profiling_consent(org, scoring_model, value):
    regime(org, "profiling", value)
    agreed, silent, refused = person(org), person(org), person(org)
    say(org, agreed, "profiling", True)
    say(org, refused, "profiling", False)
    changed = score_events(org, [agreed, silent, refused])
    expected = {agreed.pk, silent.pk} if value == OPT_OUT else {agreed.pk}
    assert changed == expected
    assert set(ContactScore.objects.values_list("contact_id", flat=True)) == expected
    assert not ScoreLedger.objects.filter(contact=refused).exists()


def test_recompute_and_prediction_leave_out_a_contact_who_withdrew_profiling(org, scoring_model):
    from scoring.predictive import _predict
    from scoring.recompute import scores_recompute

    stays, leaves = person(org), person(org)
    score_events(org, [stays, leaves])
    say(org, leaves, "profiling", False, at=T0 + timedelta(hours=1))
    ScoringRule.objects.filter(model=scoring_model).update(points=30)
    result = scores_recompute(model=scoring_model, now=T0 + timedelta(hours=2))
    assert result["contacts"] == 1
    scores = dict(ContactScore.objects.values_list("contact_id", "score"))
    assert scores[stays.pk] == 30 and scores[leaves.pk] == 15  # left as it was

    class Estimator:  # stands in for the trained model: what matters is who it is asked about
        asked: list = []

    loaded = type("Loaded", (), {"spec": None, "estimator": Estimator(), "means": {}})()
    import scoring.predictive as predictive

    seen = []
    original = predictive.contact_features
    predictive.contact_features = lambda *, org, contact_ids, spec, now: (
        seen.append(sorted(contact_ids)) or ((_ for _ in ()).throw(RuntimeError("stop")))
    )
    try:
        with pytest.raises(RuntimeError):
            _predict(org=org, model=loaded, contact_ids=[stays.pk, leaves.pk], now=T0)
    finally:
        predictive.contact_features = original
    assert seen == [[stays.pk]]


# --- the console page --------------------------------------------------------------------------------


def test_an_admin_sets_regimes_with_radio_buttons_and_one_click_gdpr(org, member_factory):
    admin = member_factory(org, role=Role.ADMIN)
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/compliance/consentregime/", follow=True)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('type="radio"') == 12 and "GDPR: opt-in for everything" in html
    url = page.redirect_chain[-1][0]
    form = {purpose: OPT_OUT for purpose in Purpose.values}
    form |= {"email_marketing": OPT_IN, "double_opt_in": "on"}
    saved = client.post(url, form, follow=True)
    assert saved.status_code == 200
    assert consent_regimes(org=org)["email_marketing"] == OPT_IN
    assert consent_regimes(org=org)["sms"] == OPT_OUT
    client.post(url, {**form, "gdpr_everything": "on"})
    assert set(consent_regimes(org=org).values()) == {OPT_IN}
    assert ConsentRegime.objects.count() == 1


@pytest.mark.parametrize("value", [OPT_OUT, OPT_IN])
def test_decay_leaves_out_contacts_without_profiling_consent(org, value):
    from scoring.decay import scores_decay

    regime(org, "profiling", value)
    model = ScoringModel.objects.create(org=org, slug="d", name="D", is_default=True, base=0, decay_factor=0.5)
    now = datetime.now(UTC)
    people = {}
    for name, answer in (("agreed", True), ("silent", None), ("refused", False)):
        contact = person(org, last_activity_at=now - timedelta(days=60), created_at=now - timedelta(days=90))
        ContactScore.objects.create(org=org, contact=contact, model=model, score=100)
        if answer is not None:
            say(org, contact, "profiling", answer, at=now - timedelta(days=61))
        people[name] = contact
    scores_decay(model=model, now=now, workers=1)
    scores = {name: ContactScore.objects.get(contact=c).score for name, c in people.items()}
    assert scores == {"agreed": 50, "silent": 50 if value == OPT_OUT else 100, "refused": 100}


def test_the_score_api_and_page_say_why_a_contact_is_not_scored(org, scoring_model, api, member_factory):
    scored_person, withdrawn = person(org), person(org)
    score_events(org, [scored_person, withdrawn])
    say(org, withdrawn, "profiling", False, at=T0 + timedelta(hours=1))
    assert api.get(f"/api/v1/contacts/{scored_person.pk}/score/").json()["not_scored"] is None
    body = api.get(f"/api/v1/contacts/{withdrawn.pk}/score/").json()
    assert body["not_scored"].startswith("Not scored: the contact has not consented to profiling")
    assert body["score"] == 15  # kept as it was
    client = Client()
    client.force_login(member_factory(org, role=Role.ADMIN))
    row = ContactScore.objects.get(contact=withdrawn)
    page = client.get(f"/admin/scoring/contactscore/{row.pk}/change/")
    assert page.status_code == 200 and "has not consented to profiling" in page.content.decode()
