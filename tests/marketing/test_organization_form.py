"""The organisation page's form (marketing/organization_form.py): frequency caps per channel and
period, quiet hours as two times, the default time zone from a list, origins one a line."""

from datetime import time

import pytest
from django.test import Client
from django.urls import reverse

from marketing.models import Organization, Role


@pytest.fixture
def org_admin(org, member_factory):
    client = Client()
    client.force_login(member_factory(org, Role.ADMIN, username="ada"))
    return client


def settings_data(org: Organization, **fields) -> dict:
    return {
        "name": org.name,
        "slug": org.slug,
        "postal_address": "1 Main St",
        "default_time_zone": "Europe/Berlin",
        "default_country": "DE",
        "from_name": "",
        "from_email": "",
        "quiet_hours_start": "",
        "quiet_hours_end": "",
        "allowed_origins": "",
        **fields,
    }


def test_the_page_shows_caps_and_quiet_hours_as_fields(org, org_admin):
    org.frequency_caps = {"email": {"day": 2, "week": 5}}
    org.quiet_hours_start, org.quiet_hours_end = time(21), time(8)
    org.allowed_origins = ["https://www.acme.io", "https://shop.acme.io"]
    org.save()
    page = org_admin.get(reverse("admin:marketing_organization_change", args=[org.pk])).content.decode()
    assert 'name="cap_email_day"' in page and 'value="2"' in page and 'value="5"' in page
    assert 'name="cap_sms_week"' in page
    assert 'type="time"' in page and 'value="21:00"' in page and 'value="08:00"' in page
    assert "https://www.acme.io\nhttps://shop.acme.io</textarea>" in page
    assert 'name="frequency_caps"' not in page  # no JSON to type
    assert '<option value="Europe/Berlin"' in page


def test_saving_writes_caps_and_keeps_what_the_form_does_not_show(org, org_admin):
    org.frequency_caps = {"email": {"day": 2, "month": 20}, "slack": {"day": 9}}
    org.save()
    data = settings_data(
        org,
        cap_email_day="",
        cap_email_week="4",
        cap_sms_day="1",
        quiet_hours_start="21:30",
        quiet_hours_end="07:45",
        allowed_origins="https://www.Acme.io/\n\nhttps://shop.acme.io:8443\nhttps://www.acme.io",
    )
    response = org_admin.post(reverse("admin:marketing_organization_change", args=[org.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    org.refresh_from_db()
    # The emptied day cap is gone, the month cap and the Slack cap no field shows are kept.
    assert org.frequency_caps == {"email": {"week": 4, "month": 20}, "sms": {"day": 1}, "slack": {"day": 9}}
    assert (org.quiet_hours_start, org.quiet_hours_end) == (time(21, 30), time(7, 45))
    assert org.allowed_origins == ["https://www.acme.io", "https://shop.acme.io:8443"]
    assert org.default_time_zone == "Europe/Berlin"


def test_errors_are_on_their_fields_and_name_the_bad_origin_line(org, org_admin):
    data = settings_data(
        org,
        cap_email_day="0",
        cap_push_week="lots",
        quiet_hours_start="22:00",
        allowed_origins="https://www.acme.io\nwww.acme.io/contact\nftp://files.acme.io",
        default_time_zone="Mars/Olympus",
    )
    response = org_admin.post(reverse("admin:marketing_organization_change", args=[org.pk]), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["cap_email_day"] == ["At least 1; leave it empty for no limit."]
    assert "cap_push_week" in errors
    assert errors["quiet_hours_end"] == ["Quiet hours need both a start and an end (or neither)."]
    assert errors["allowed_origins"] == [
        "Line 2: “www.acme.io/contact” is not a web origin. Write the scheme and host only, e.g. "
        "https://www.acme.io (no path).",
        "Line 3: “ftp://files.acme.io” is not a web origin. Write the scheme and host only, e.g. "
        "https://www.acme.io (no path).",
    ]
    assert "default_time_zone" in errors
    org.refresh_from_db()
    assert org.frequency_caps == {} and org.quiet_hours_start is None
