"""Console login throttling (django-axes): wrong passwords for one user from one address lock that
pair out for the cool-off, with a page that says so; other addresses and a correct login go on."""

from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from marketing.models import Role

ATTACKER = "203.0.113.7"
OFFICE = "198.51.100.20"


@pytest.fixture
def person(org, member_factory):
    return member_factory(org, Role.MARKETER, username="ana")


def sign_in(password: str, *, address: str = ATTACKER, username: str = "ana"):
    """One POST of the console's real login form, from ``address``."""
    return Client(REMOTE_ADDR=address).post(
        reverse("admin:login"), {"username": username, "password": password, "next": reverse("admin:index")}
    )


def signed_in(response) -> bool:
    return response.status_code == 302 and response.url == reverse("admin:index")


def test_forty_wrong_passwords_then_the_right_one_is_refused_with_the_lockout_page(person):
    for _ in range(40):
        assert sign_in("guess").status_code in (200, 429)
    response = sign_in("pw-for-tests")

    assert not signed_in(response)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Sign-in paused" in page
    assert "try again in 15 minutes" in page
    assert "Marketing console" in page  # the console's own look, not a bare text response
    assert "_auth_user_id" not in response.client.session


def test_the_limit_is_the_setting_and_a_success_before_it_resets_the_count(person):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert sign_in("guess").status_code == 200  # the form again, with its error
    assert signed_in(sign_in("pw-for-tests"))
    for _ in range(4):
        sign_in("guess")
    assert signed_in(sign_in("pw-for-tests"))  # the success reset the count: 4 more were allowed
    for _ in range(5):
        sign_in("guess")
    assert sign_in("pw-for-tests").status_code == 429


def test_another_address_of_the_same_user_is_not_locked(person):
    for _ in range(40):
        sign_in("guess")
    assert sign_in("pw-for-tests").status_code == 429
    assert signed_in(sign_in("pw-for-tests", address=OFFICE))


def test_the_lockout_ends_after_the_cool_off(person):
    for _ in range(6):
        sign_in("guess")
    assert sign_in("pw-for-tests").status_code == 429

    # 16 minutes pass (the cool-off is 15): the attempts are older than the cool-off.
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert signed_in(sign_in("pw-for-tests"))


def test_an_operator_unlocks_a_person(person):
    for _ in range(6):
        sign_in("guess")
    assert sign_in("pw-for-tests").status_code == 429
    call_command("axes_reset_username", "ana", stdout=StringIO())
    assert signed_in(sign_in("pw-for-tests"))


def test_the_lockout_follows_the_client_address_behind_the_trusted_proxy(person, settings):
    """Behind one proxy the client is the right-most X-Forwarded-For entry, not the proxy's address
    (else every user would share one lock) nor a forged left-most one."""
    settings.TRUSTED_PROXY_COUNT = 1

    def via_proxy(password, forwarded):
        return Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded).post(
            reverse("admin:login"), {"username": "ana", "password": password, "next": reverse("admin:index")}
        )

    for n in range(6):
        via_proxy("guess", f"192.0.2.{n}, {ATTACKER}")  # a new forged address each time
    assert via_proxy("pw-for-tests", ATTACKER).status_code == 429
    assert signed_in(via_proxy("pw-for-tests", OFFICE))


def test_the_test_clients_logins_work_with_axes(person):
    client = Client()
    client.force_login(person)
    assert client.get(reverse("admin:index")).status_code == 200
    # Client.login authenticates without a request, which axes needs: tests hand it one.
    assert Client().login(request=HttpRequest(), username="ana", password="pw-for-tests")


def test_axes_migrations_are_in_and_nothing_is_missing(db):
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_signing_in_from_the_login_page_itself_lands_on_the_console(person):
    # The login form as the theme renders it, opened without ?next=: the browser posts no "next".
    response = Client(REMOTE_ADDR=OFFICE).post(reverse("admin:login"), {"username": "ana", "password": "pw-for-tests"})

    assert response.status_code == 302 and response.url == reverse("admin:index")
