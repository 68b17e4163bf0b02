"""Inviting teammates by email: the console's invite form and pending list (org admins only), the
email through the outbox, the signed link's page for a new person and for an existing account, a
used, revoked, expired or superseded link refused with a page that says so, the daily limit, and
the form and the accept page in Chromium."""

import re
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from channels_app.models import Message
from marketing.database_roles import system_alias
from marketing.invitations import invitation_send
from marketing.models import Invitation, Membership, Role, User
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, page_width, playwright_or_skip

MEMBERS = reverse("admin:marketing_membership_changelist")
INVITE = reverse("admin:marketing_membership_invite")
SHOTS = Path(tempfile.gettempdir()) / "invitation-shots"  # kept after the run, to look at
WIDTH = 1366


@pytest.fixture
def admin_user(org, member_factory):
    return member_factory(org, Role.ADMIN, username="ada", email="ada@acme.example", first_name="Ada")


@pytest.fixture
def admin_console(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def link_path(email) -> str:
    [url] = re.findall(r"https?://\S+/invite/\S+/", email.body)
    return urlsplit(url).path


def invite(client, email, role=Role.MARKETER):
    return client.post(INVITE, {"email": email, "role": role})


def test_the_full_round_trip_for_a_new_person(org, admin_console, sent, settings):
    settings.SITE_URL = "https://console.example"
    response = sent(lambda: invite(admin_console, "Nina@Example.com", Role.SALES))

    assert response.status_code == 302 and response["Location"] == MEMBERS
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.status) == ("nina@example.com", Role.SALES, "pending")
    message = Message.objects.get()
    assert (message.contact_id, message.purpose, message.to) == (None, "transactional", "nina@example.com")
    [email] = mail.outbox
    assert email.to == ["nina@example.com"] and "Ada invited you to" in email.subject
    assert "https://console.example/invite/" in email.body and "7 days" in email.body
    members_page = admin_console.get(MEMBERS).content.decode()
    assert "nina@example.com" in members_page and "Resend" in members_page and "Invite a teammate" in members_page

    person = Client()
    page = person.get(link_path(email))
    assert page.status_code == 200 and "Create my account and join" in page.content.decode()
    mismatch = person.post(
        link_path(email), {"first_name": "Nina", "password": "a-long-passphrase-9", "password_again": "other"}
    )
    assert mismatch.status_code == 400 and "The two passwords differ" in mismatch.content.decode()
    weak = person.post(link_path(email), {"first_name": "Nina", "password": "123", "password_again": "123"})
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    assert not User.objects.filter(email="nina@example.com").exists()

    form = {"first_name": "Nina", "last_name": "Berg", "password": "a-long-passphrase-9"}
    joined = person.post(link_path(email), {**form, "password_again": form["password"]})

    assert joined.status_code == 302 and joined["Location"] == reverse("admin:index")
    user = User.objects.get(email="nina@example.com")
    assert (user.username, user.get_full_name()) == ("nina@example.com", "Nina Berg")
    assert user.check_password("a-long-passphrase-9")
    with scopes_disabled():
        assert Membership.objects.get(user=user).role == Role.SALES and Membership.objects.get(user=user).org == org
    assert person.get(reverse("admin:index")).status_code == 200  # signed in, in the org
    invitation.refresh_from_db()
    assert (invitation.status, invitation.accepted_by) == ("accepted", user)

    again = Client().post(link_path(email), {**form, "password_again": form["password"]})
    assert again.status_code == 410 and "already used" in again.content.decode()
    assert User.objects.filter(email="nina@example.com").count() == 1


def test_someone_with_an_account_signs_in_to_join(org, other_org, admin_console, member_factory, sent):
    existing = member_factory(other_org, Role.MARKETER, username="omar", email="omar@globex.example")
    sent(lambda: invite(admin_console, "omar@globex.example", Role.ANALYST))
    path = link_path(mail.outbox[0])
    person = Client()

    page = person.get(path)
    assert "sign in with its password" in page.content.decode() and "omar" in page.content.decode()
    wrong = person.post(path, {"password": "nope"})
    assert wrong.status_code == 400 and "That password is not right" in wrong.content.decode()
    joined = person.post(path, {"password": "pw-for-tests"})

    assert joined.status_code == 302
    with scopes_disabled():
        assert Membership.objects.get(user=existing, org=org).role == Role.ANALYST
    assert User.objects.filter(email="omar@globex.example").count() == 1


def test_someone_already_signed_in_under_the_address_joins_with_one_click(
    org, other_org, admin_console, member_factory, sent
):
    existing = member_factory(other_org, Role.MARKETER, username="omar", email="omar@globex.example")
    sent(lambda: invite(admin_console, "omar@globex.example", Role.MARKETER))
    path = link_path(mail.outbox[0])
    person = Client()
    person.force_login(existing)

    page = person.get(path)
    assert "id_password" not in page.content.decode() and "Join Org A" in page.content.decode()
    joined = person.post(path)

    assert joined.status_code == 302
    assert person.get(reverse("admin:index")).context["request"].org == org  # the console opens in the org joined
    with scopes_disabled():  # both orgs' memberships: read as the system role
        assert Membership.objects.using(system_alias()).filter(user=existing).count() == 2


def test_an_expired_link_and_a_link_older_than_the_resend_are_refused(org, admin_user, admin_console, sent):
    long_ago = timezone.now() - timedelta(days=8)
    sent(lambda: invitation_send(org=org, email="late@example.com", role=Role.MARKETER, by=admin_user, now=long_ago))
    expired = Client().get(link_path(mail.outbox[0]))
    assert expired.status_code == 410 and "This invitation has expired" in expired.content.decode()
    assert "resend" in expired.content.decode()
    assert Invitation.objects.get().status == "expired"

    first = sent(lambda: invitation_send(org=org, email="soon@example.com", role=Role.MARKETER, by=admin_user))
    Invitation.objects.filter(pk=first.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    resent = sent(lambda: admin_console.post(reverse("admin:marketing_invitation_resend", args=[first.pk])))
    assert resent.status_code == 302 and len(mail.outbox) == 3
    assert Client().get(link_path(mail.outbox[1])).status_code == 410  # the first email's link
    assert Client().get(link_path(mail.outbox[2])).status_code == 200  # the newest one works


def test_the_signature_itself_expires_whatever_the_row_says(org, admin_user, sent):
    eight_days_ago = time.time() - 8 * 86400
    with mock.patch("django.core.signing.time.time", return_value=eight_days_ago):  # the link signed then
        sent(lambda: invitation_send(org=org, email="old@example.com", role=Role.MARKETER, by=admin_user))
    assert Invitation.objects.get().expires_at > timezone.now()  # the row alone would still accept it

    page = Client().get(link_path(mail.outbox[0]))

    assert page.status_code == 410 and "This invitation has expired" in page.content.decode()


def test_a_revoked_link_says_so_and_another_orgs_admin_cannot_revoke_yours(
    org, other_org, admin_console, member_factory, sent
):
    sent(lambda: invite(admin_console, "kim@example.com"))
    invitation = Invitation.objects.get()
    intruder = Client()
    intruder.force_login(member_factory(other_org, Role.ADMIN, username="globex-admin"))

    refused = intruder.post(reverse("admin:marketing_invitation_revoke", args=[invitation.pk]))
    assert refused.status_code == 404
    invitation.refresh_from_db()
    assert invitation.status == "pending"

    assert admin_console.get(reverse("admin:marketing_invitation_revoke", args=[invitation.pk])).status_code == 405
    revoked = admin_console.post(reverse("admin:marketing_invitation_revoke", args=[invitation.pk]))
    assert revoked.status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    page = Client().get(link_path(mail.outbox[0]))
    assert page.status_code == 410 and "withdrawn" in page.content.decode()
    assert admin_console.get(MEMBERS).context["pending_invitations"] == []  # no longer pending


def test_a_marketer_may_not_invite_resend_or_revoke(org, admin_user, console, sent):
    invitation = sent(lambda: invitation_send(org=org, email="x@example.com", role=Role.ADMIN, by=admin_user))

    assert console.get(INVITE).status_code == 403
    assert invite(console, "y@example.com").status_code == 403
    assert console.post(reverse("admin:marketing_invitation_revoke", args=[invitation.pk])).status_code == 403
    assert console.post(reverse("admin:marketing_invitation_resend", args=[invitation.pk])).status_code == 403
    members = console.get(MEMBERS)
    assert members.status_code == 200 and "Invite a teammate" not in members.content.decode()
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1


def test_the_form_names_the_field_a_mistake_is_in(org, admin_console, marketer, sent):
    bad = invite(admin_console, "not an address")
    assert bad.status_code == 200 and "Check the address" in str(bad.context["form"].errors["email"])
    member = invite(admin_console, marketer.email)
    assert "already a member" in str(member.context["form"].errors["email"])
    assert Invitation.objects.count() == 0 and mail.outbox == []


def test_an_org_sends_at_most_the_daily_limit(org, admin_console, settings, sent):
    settings.INVITATIONS_PER_ORG_PER_DAY = 2
    for n in range(2):
        assert sent(lambda n=n: invite(admin_console, f"p{n}@example.com")).status_code == 302

    third = sent(lambda: invite(admin_console, "p2@example.com"))

    assert third.status_code == 200
    assert "2 invitations in the last 24 hours" in str(third.context["form"].errors["email"])
    assert Invitation.objects.count() == 2 and len(mail.outbox) == 2
    Invitation.objects.update(sent_at=timezone.now() - timedelta(hours=25))  # a day later
    assert sent(lambda: invite(admin_console, "p2@example.com")).status_code == 302


def test_a_mangled_link_is_a_clear_page(db):
    page = Client().get(reverse("invitation-accept", args=["not-a-token"]))
    assert page.status_code == 400 and "does not work" in page.content.decode()


@pytest.mark.slow
def test_inviting_and_accepting_in_chromium(org, admin_user, live_server, eager_tasks):
    sync_playwright = playwright_or_skip()
    SHOTS.mkdir(parents=True, exist_ok=True)
    widths = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 768})
            login(page, live_server.url, "ada")
            page.goto(f"{live_server.url}{MEMBERS}")
            page.click("text=Invite a teammate")
            page.fill("#id_email", "not an address")
            page.click("text=Send the invitation")
            error = page.inner_text("#invite-form .errorlist")
            page.screenshot(path=str(SHOTS / "invite-form-error.png"), full_page=True)
            widths["form"] = page_width(page)
            page.fill("#id_email", "lea@example.com")
            page.select_option("#id_role", "analyst")
            with page.expect_navigation():
                page.click("text=Send the invitation")
            pending = page.inner_text("#invitations table")
            page.screenshot(path=str(SHOTS / "members-pending.png"), full_page=True)
            widths["members"] = page_width(page)

            newcomer = browser.new_page(viewport={"width": WIDTH, "height": 768})
            newcomer.goto(f"{live_server.url}{link_path(mail.outbox[0])}")
            newcomer.screenshot(path=str(SHOTS / "accept-page.png"), full_page=True)
            widths["accept"] = newcomer.evaluate("document.documentElement.scrollWidth")
            newcomer.fill("#id_first_name", "Lea")
            newcomer.fill("#id_password", "a-long-passphrase-9")
            newcomer.fill("#id_password_again", "a-long-passphrase-9")
            with newcomer.expect_navigation():
                newcomer.click("text=Create my account and join")
            landed = newcomer.url
            newcomer.goto(f"{live_server.url}{link_path(mail.outbox[0])}")
            used = newcomer.inner_text("h1")
            newcomer.screenshot(path=str(SHOTS / "accept-used.png"), full_page=True)
        finally:
            browser.close()

    assert "Check the address" in error
    assert "lea@example.com" in pending and "Analyst" in pending
    assert landed.rstrip("/").endswith("/admin")
    assert used == "This invitation was already used"
    assert all(width <= WIDTH for width in widths.values()), widths
    with scopes_disabled():
        assert Membership.objects.get(user__email="lea@example.com").role == Role.ANALYST
