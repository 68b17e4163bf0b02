"""In Chromium at 1366 px: the Consent regimes page (radio buttons, the one-click GDPR box) and the
double opt-in confirmation page a person opens from the email."""

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
