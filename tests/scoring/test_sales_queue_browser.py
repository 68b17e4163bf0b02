"""The sales rep's story in headless chromium: signed in, the rep lands on the console's home with
"My queue" (their own open handoffs, not a colleague's), opens a handoff from its row (the page is
titled with the contact's name) and accepts it. Screenshots go to the temp dir's
sales-queue-shots/."""

import pytest
from django_scopes import scopes_disabled

from marketing.models import Role
from scoring.handoffs import handoff_create
from scoring.models import Handoff
from tests import browser
from tests.factories import ContactFactory


@pytest.mark.slow
def test_a_rep_lands_on_my_queue_opens_a_handoff_and_accepts_it(org, live_server, member_factory):
    rep, colleague = (member_factory(org, Role.SALES, username=name) for name in ("sam", "kim"))
    mine = handoff_create(org=org, contact=ContactFactory(org=org, first_name="Ana", last_name="Lima"), reason="demo")
    theirs = handoff_create(org=org, contact=ContactFactory(org=org, first_name="Bo", last_name="Berg"), reason="demo")
    assert (mine.assignee, theirs.assignee) == (rep, colleague)  # round robin: one each
    shots = browser.shots_dir("sales-queue-shots")

    with browser.launch() as chromium:
        page = chromium.new_page(viewport={"width": browser.WIDTH, "height": 768})
        browser.login(page, live_server.url, "sam")
        landed = page.url
        queue = page.locator('[data-panel="my-queue"]')
        rows = queue.locator("tbody tr").all_inner_texts()
        open_count = queue.locator('[data-stat="open"] .value').inner_text()
        page.screenshot(path=str(shots / "1-my-queue.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)

        with page.expect_navigation():
            queue.get_by_role("link", name="Ana Lima").click()
        opened = page.url
        heading = page.get_by_text("Handoff: ").first.inner_text()  # the header's last breadcrumb
        title = page.title()
        page.screenshot(path=str(shots / "2-handoff.png"), full_page=True)
        browser.assert_no_sideways_scroll(page)

        with page.expect_navigation():
            page.locator("#handoff-actions").get_by_role("button", name="Accept").click()
        after = page.locator("#handoff-actions").inner_text()
        message = page.get_by_text("Accepted: ").first.inner_text()
        page.screenshot(path=str(shots / "3-accepted.png"), full_page=True)

    assert landed == f"{live_server.url}/admin/"
    assert len(rows) == 1 and rows[0].startswith("Ana Lima")  # not the colleague's
    assert open_count == "1"
    assert opened.endswith(f"/admin/scoring/handoff/{mine.pk}/change/")
    assert title.startswith("Handoff: Ana Lima")
    assert heading.startswith("Handoff: Ana Lima")
    with scopes_disabled():
        mine.refresh_from_db()
        theirs.refresh_from_db()
    assert mine.status == Handoff.Status.ACCEPTED and mine.accepted_at is not None
    assert theirs.status == Handoff.Status.OPEN
    assert "Accept" not in after.split("\n")  # no Accept button once accepted
    assert message.startswith("Accepted: Ana Lima")
