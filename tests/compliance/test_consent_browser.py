"""In Chromium at 1366 px: the Consent regimes page (radio buttons, the one-click GDPR box), the
double opt-in confirmation page a person opens from the email, and track.js passing a consent
banner's choice."""

import json

from compliance.double_opt_in import confirmation_url, pending_consent_request
from compliance.models import ConsentRecord
from compliance.selectors import consent_regimes
from marketing.models import Role
from tests.factories import ContactFactory


def test_an_officer_makes_everything_opt_in_with_one_box(org, member_factory, live_server):
    from tests.browser import WIDTH, assert_no_sideways_scroll, launch, login, shots_dir

    member_factory(org, Role.COMPLIANCE, username="cora")
    shots = shots_dir("consent-shots")
    with launch() as browser:
        tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
        login(tab, live_server.url, "cora")
        tab.goto(f"{live_server.url}/admin/compliance/consentregime/")
        assert_no_sideways_scroll(tab)
        radios = tab.locator("input[type=radio]").count()
        tab.screenshot(path=str(shots / "regimes.png"), full_page=True)
        tab.check("#id_gdpr_everything")
        with tab.expect_navigation():
            tab.click("button[name=_save], input[name=_save]")
        saved = tab.inner_text("body")
        tab.screenshot(path=str(shots / "regimes-saved.png"), full_page=True)
        assert_no_sideways_scroll(tab)

    assert radios == 12
    assert "Consent regimes saved" in saved
    assert set(consent_regimes(org=org).values()) == {"opt_in"}


def test_a_person_confirms_from_the_page_the_email_links_to(org, live_server, settings):
    from django.utils import timezone

    from tests.browser import WIDTH, assert_no_sideways_scroll, launch, shots_dir

    settings.SITE_URL = live_server.url
    ana = ContactFactory(org=org, email="ana@example.com")
    proof = {"form": "newsletter", "text": "Yes, send me the newsletter.", "ip": "203.0.113.7"}
    pending = pending_consent_request(
        org=org, contact=ana, purposes=["email_marketing"], proof=proof, event=None, now=timezone.now()
    )
    shots = shots_dir("consent-shots")
    with launch() as browser:
        tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
        tab.goto(confirmation_url(pending))
        asked = tab.inner_text("body")
        tab.screenshot(path=str(shots / "confirm.png"), full_page=True)
        with tab.expect_navigation():
            tab.click("text=Yes, confirm")
        done = tab.inner_text("body")
        tab.screenshot(path=str(shots / "confirmed.png"), full_page=True)
        assert_no_sideways_scroll(tab)

    assert "ana@example.com" in asked and "email marketing" in asked
    assert "it is confirmed" in done
    grant = ConsentRecord.objects.get(contact=ana)
    assert grant.granted and grant.source == "double_opt_in" and grant.proof["confirmed_ip"]


def test_track_js_passes_the_banners_choice_so_an_opt_in_org_tracks_after_it(live_server, settings, tmp_path):
    from compliance.services import consent_regimes_set
    from marketing.models import Event
    from marketing.tenancy import org_context
    from tests.browser import launch
    from tests.factories import OrganizationFactory

    settings.DEBUG = True  # the demo page (track.js and a form) is served only in DEBUG
    settings.VAR_DIR = tmp_path
    acme = OrganizationFactory(slug="acme", allowed_origins=[live_server.url])
    with org_context(acme):
        consent_regimes_set(org=acme, regimes={"tracking": "opt_in"})
    answers = []
    with launch() as browser:
        tab = browser.new_page()
        # Both page views' answers are awaited; the database is read once chromium is closed.
        with tab.expect_response("**/v1/page") as first:
            tab.goto(f"{live_server.url}/t/demo/")
        answers.append(first.value.json())
        with tab.expect_response("**/v1/page") as second:
            tab.evaluate("window.mk.consent({Analytics: true, Advertising: false}); window.mk.page()")
        answers.append(second.value.json())
        sent = json.loads(second.value.request.post_data)

    assert answers[0]["status"] == "dropped" and answers[1]["status"] == "stored"
    assert sent["context"]["consent"] == {"categoryPreferences": {"Analytics": True, "Advertising": False}}
    with org_context(acme):
        assert Event.objects.filter(type="page_view").count() == 1
