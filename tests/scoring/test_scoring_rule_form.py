"""In chromium: a marketer builds a scoring rule with the rule builder (the event's fields for a
behaviour rule, none for a fit rule), sets its points and cap and saves it; then each page that
became a form is drawn at 1366 px (the scoring rule, the scoring model with its thresholds, a
contact with custom properties, the organisation, a consent record) without sideways scroll."""

import tempfile
from datetime import time
from pathlib import Path

from compliance.models import ConsentRecord
from marketing.models import PropertyDefinition, Role
from scoring.models import ScoringModel, ScoringRule
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, page_width, playwright_or_skip
from tests.factories import ContactFactory

SHOTS = Path(tempfile.gettempdir()) / "console_forms"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0"


def test_a_marketer_builds_a_scoring_rule_and_the_forms_fit_the_screen(org, live_server, member_factory):
    sync_playwright = playwright_or_skip()
    SHOTS.mkdir(exist_ok=True)
    member_factory(org, Role.ADMIN, username="ada")
    member_factory(org, Role.MARKETER, username="mara")
    model = ScoringModel.objects.create(
        org=org,
        name="Lead score",
        slug="lead",
        thresholds=[{"name": "warm", "score": 200}, {"name": "hot", "score": 500, "actions": [{"type": "handoff"}]}],
    )
    ScoringRule.objects.create(org=org, model=model, name="Demo asked", event_type="demo_requested", points=50)
    define = PropertyDefinition.objects.create
    define(org=org, subject="event", key="path", label="Page path", type="string")
    define(org=org, subject="contact", key="plan", label="Plan", type="enum", options=["free", "pro"])
    define(org=org, subject="contact", key="seats", label="Seats", type="number")
    define(org=org, subject="contact", key="trial_ends_at", label="Trial ends", type="datetime")
    define(org=org, subject="contact", key="beta", label="Beta tester", type="boolean")
    contact = ContactFactory(org=org, properties={"plan": "pro", "seats": 12, "beta": True, "legacy_id": "A-7"})
    record = ConsentRecord.objects.create(
        org=org,
        contact=contact,
        purpose="email_marketing",
        granted=True,
        source="form",
        proof={"form": "Newsletter signup", "ip": "203.0.113.9", "user_agent": FIREFOX, "text": "Monthly news"},
    )
    org.frequency_caps = {"email": {"day": 2, "week": 5}}
    org.quiet_hours_start, org.quiet_hours_end = time(21), time(8)
    org.allowed_origins = ["https://www.acme.io"]
    org.save()

    widths = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})

            def shoot(name: str) -> None:
                page.screenshot(path=SHOTS / f"{name}_1366.png", full_page=True)
                widths[name] = page_width(page)

            login(page, live_server.url, "mara", next_url="/admin/scoring/scoringrule/add/")
            page.select_option("#id_model", str(model.pk))
            page.fill("#id_name", "Pricing page")
            page.fill("#id_event_type", "page_view")
            row = page.locator(".rule-builder-row").nth(0)
            # The builder fills its field list from the API: read it once it has arrived (a busy
            # machine answered after the first read), and the fit list once the event fields left.
            row.get_by_label("Field").locator('option[value="event.properties.path"]').wait_for(state="attached")
            behaviour_fields = row.get_by_label("Field").locator("option").evaluate_all("os => os.map(o => o.value)")
            page.select_option("#id_kind", "fit")
            page.wait_for_function(
                "() => ![...document.querySelectorAll('.rule-builder-row option')]"
                ".some(o => o.value.startsWith('event.'))"
            )
            fit_fields = row.get_by_label("Field").locator("option").evaluate_all("os => os.map(o => o.value)")
            page.select_option("#id_kind", "behaviour")
            row.get_by_label("Field").select_option("event.properties.path")
            row.get_by_label("Operator").select_option("is")
            row.get_by_label("Value").fill("/pricing")
            page.fill("#id_points", "15")
            page.fill("#id_cap_count", "3")
            page.select_option("#id_cap_period", "day")
            advanced_open = page.eval_on_selector("details.rule-builder-advanced", "d => d.open")
            shoot("scoring_rule")
            with page.expect_navigation():
                page.click("[name=_save]")
            saved_message = page.inner_text("#main")

            page.goto(f"{live_server.url}/admin/scoring/scoringmodel/{model.pk}/change/")
            page.wait_for_selector(".rule-builder-row")
            builders_on_model = page.locator(".rule-builder").count()
            shoot("scoring_model")

            page.goto(f"{live_server.url}/admin/marketing/contact/{contact.pk}/change/")
            shoot("contact_properties")

            page.context.clear_cookies()
            login(page, live_server.url, "ada", next_url=f"/admin/marketing/organization/{org.pk}/change/")
            shoot("organisation")
            page.goto(f"{live_server.url}/admin/compliance/consentrecord/{record.pk}/change/")
            proof_text = page.inner_text(".consent-proof")
            shoot("consent_record")
        finally:
            browser.close()

    assert "event.properties.path" in behaviour_fields and "event.type" in behaviour_fields
    assert "plan" not in behaviour_fields and "properties.plan" in behaviour_fields
    assert not [path for path in fit_fields if path.startswith("event.")] and "properties.plan" in fit_fields
    assert advanced_open is False  # the JSON stays folded away
    assert "was added successfully" in saved_message
    rule = ScoringRule.objects.get(name="Pricing page")
    assert rule.condition == {"and": [{"==": [{"var": "event.properties.path"}, "/pricing"]}]}
    assert (rule.model, rule.kind, rule.points, rule.cap_count, rule.cap_period) == (model, "behaviour", 15, 3, "day")
    assert builders_on_model == 2  # a builder for each of the two rules inline
    assert "Given on a form: Newsletter signup" in proof_text and "Firefox 131 on Windows" in proof_text
    assert widths == dict.fromkeys(widths, 1366) and len(widths) == 5, widths
