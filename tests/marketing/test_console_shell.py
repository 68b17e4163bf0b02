"""The console's shell: the sidebar by job for each role, the org switcher on every page, no
sideways scroll at 1366 pixels, and the styled error pages."""

from pathlib import Path

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views import defaults

from marketing.models import Role
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, page_width, playwright_or_skip
from tests.factories import ContactFactory
from workflows.services import workflow_create

SHOTS = Path("/tmp/console-shots")  # noqa: S108  screenshots to look at, not secrets
WIDTH = 1366
EVERY_JOB = ["Contacts", "Segments", "Workflows", "Messages", "Scoring", "Sales queue", "Compliance", "Settings"]
GROUPS = {
    Role.ADMIN: [*EVERY_JOB, "System"],
    Role.MARKETER: EVERY_JOB,
    Role.ANALYST: EVERY_JOB,
    Role.SALES: ["Contacts", "Scoring", "Sales queue"],
}
VISIBLE_GROUPS = """[...document.querySelectorAll('#nav-sidebar-apps h2')]
    .filter(h => h.offsetParent !== null).map(h => h.textContent.trim())"""
NAV_LINKS = """[...document.querySelectorAll('#nav-sidebar-apps a')]
    .filter(a => a.offsetParent !== null).map(a => a.getAttribute('href'))"""

HELLO = {
    "trigger": {"type": "manual"},
    "steps": [{"id": "hello", "type": "action", "action": "log", "config": {"message": "hello"}, "next": None}],
}


def _visit(page, url: str, shot: str) -> dict:
    page.goto(url)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    return {
        "status_ok": page.locator("#nav-sidebar-apps").count() == 1,
        "switcher": page.locator("#org-switcher select").count() == 1,
        "groups": page.evaluate(VISIBLE_GROUPS),
        "width": page_width(page),
    }


@pytest.mark.slow
def test_each_role_sees_its_jobs_the_org_switcher_and_no_sideways_scroll(org, live_server, member_factory):
    sync_playwright = playwright_or_skip()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for role in GROUPS:
        member_factory(org, role, username=f"{role}-user")
    ContactFactory.create_batch(3, org=org)
    workflow = workflow_create(
        org=org, name="Welcome series", slug="welcome", description="", definition=HELLO, by=None
    )

    seen: dict[str, dict[str, dict]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for role in GROUPS:
                page = browser.new_page(viewport={"width": WIDTH, "height": 768})
                login(page, live_server.url, f"{role}-user")
                pages = {"home": _visit(page, f"{live_server.url}/admin/", f"{role}-home")}
                for link in page.evaluate(NAV_LINKS):
                    name = link.strip("/").replace("admin/", "").replace("/", "-") or "home"
                    pages[link] = _visit(page, f"{live_server.url}{link}", f"{role}-{name}")
                if role != Role.SALES:
                    change = reverse("admin:workflows_workflow_change", args=[workflow.pk])
                    pages[change] = _visit(page, f"{live_server.url}{change}", f"{role}-workflow-change")
                pages["404"] = _visit(page, f"{live_server.url}/admin/no-such-page/", f"{role}-404")
                seen[role] = pages
                page.close()
        finally:
            browser.close()

    for role, pages in seen.items():
        assert len(pages) >= 4, role  # home, a few lists, the 404
        for url, found in pages.items():
            assert found["status_ok"] and found["switcher"], (role, url)
            assert found["groups"] == GROUPS[role], (role, url, found["groups"])
            assert found["width"] <= WIDTH, (role, url, found["width"])
    assert "/admin/marketing/apikey/" in seen[Role.ADMIN] and "/admin/marketing/apikey/" not in seen[Role.MARKETER]
    assert "/admin/workflows/delivery/" in seen[Role.ADMIN] and "/admin/workflows/delivery/" not in seen[Role.ANALYST]
    assert "/admin/scoring/handoff/" in seen[Role.SALES] and "/admin/workflows/workflow/" not in seen[Role.SALES]
    assert not any("django_celery_beat" in url for url in seen[Role.ADMIN])  # beat's tables: superusers


def test_a_superuser_finds_beats_tables_under_system(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, is_superuser=True))
    system = next(
        g for g in client.get(reverse("admin:index")).context["sidebar_navigation"] if g.get("title") == "System"
    )
    shown = [item["link"] for item in system["items"] if item["has_permission"]]
    assert reverse("admin:django_celery_beat_periodictask_changelist") in shown
    assert reverse("admin:workflows_delivery_changelist") in shown


def test_a_404_in_the_console_is_styled_with_the_navigation(org, console):
    response = console.get("/admin/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'data-status="404"' in html and "Page not found" in html
    assert 'id="nav-sidebar-apps"' in html and 'id="org-switcher"' in html
    assert reverse("admin:marketing_contact_changelist") in html  # the sidebar's links


def test_a_403_in_the_console_is_styled_with_the_navigation(org, console):
    response = console.get(reverse("admin:marketing_apikey_changelist"))  # marketers see no API keys
    html = response.content.decode()
    assert response.status_code == 403
    assert 'data-status="403"' in html and "(marketer)" in html
    assert 'id="nav-sidebar-apps"' in html and 'id="org-switcher"' in html


def test_errors_off_the_console_stay_plain_and_the_apis_stay_json(org, console):
    public = console.get("/no-such-page/")
    assert public.status_code == 404 and "nav-sidebar-apps" not in public.content.decode()
    assert "Page not found" in public.content.decode()
    assert console.get("/api/v1/no-such-thing/").json() == {"detail": "Not found."}


def test_the_500_page_renders_without_the_database_or_a_request_context(django_db_blocker):
    request = RequestFactory().get("/admin/marketing/contact/")
    with django_db_blocker.block():
        response = defaults.server_error(request)
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html and 'href="/admin/marketing/contact/"' in html


def test_the_favicon_is_linked_on_console_pages(console):
    html = console.get(reverse("admin:index")).content.decode()
    assert 'rel="icon"' in html and "marketing/favicon.svg" in html
    assert (Path(__file__).resolve().parents[2] / "static" / "marketing" / "favicon.svg").read_text().startswith("<svg")


def test_unfolds_search_is_off_its_cache_is_per_user_not_per_org(console):
    assert console.get("/admin/search/", {"s": "contacts"}).status_code == 404
    assert "command-submit" not in console.get(reverse("admin:index")).content.decode()
