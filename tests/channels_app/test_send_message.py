"""``manage.py send_message``: sends through every guard; exits 0 when sent, else one line saying why."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from channels_app.models import Message
from compliance.services import consent_record
from tests.factories import ContactFactory

ROOT = Path(__file__).resolve().parents[2]


def send(**options) -> str:
    out = StringIO()
    call_command("send_message", stdout=out, **options)
    return out.getvalue()


def test_a_sent_message_reports_its_message_id(org, contact, template, smtp):
    output = send(org="org-a", contact="ANA@example.com", template="welcome")

    message = Message.objects.get()
    assert message.status == "sent" and message.idempotency_key.startswith("cmd:")
    assert output.strip() == f"sent message #{message.pk} to ana@example.com ({message.provider_message_id})"
    assert smtp.message_ids() == [message.provider_message_id]


def test_a_blocked_message_fails_with_the_reason(org, template, smtp):
    ContactFactory(org=org, email="stranger@example.com")

    with pytest.raises(CommandError, match=r"^blocked: no consent: email_marketing was never granted$"):
        send(org="org-a", contact="stranger@example.com", template="welcome")
    assert smtp.received == []


def test_a_held_message_says_until_when(org, contact, template, smtp):
    local = timezone.now().astimezone(ZoneInfo("Europe/Berlin"))
    org.quiet_hours_start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    org.quiet_hours_end = (local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    org.save()

    with pytest.raises(CommandError, match=r"^held until \S+: quiet hours: .* Europe/Berlin$"):
        send(org="org-a", contact="ana@example.com", template="welcome")
    assert Message.objects.get().status == "held"


def test_unknown_names_are_errors(org, contact, template):
    with pytest.raises(CommandError, match="No template with slug 'nope'"):
        send(org="org-a", contact="ana@example.com", template="nope")
    with pytest.raises(CommandError, match="No contact with email"):
        send(org="org-a", contact="nobody@example.com", template="welcome")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_exit_code_is_0_when_sent_and_1_with_one_line_when_blocked(
    org, contact, template, smtp_server, shared_database_url
):
    ContactFactory(org=org, email="stranger@example.com")
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "LOG_LEVEL": "WARNING",
    }

    def run(email: str) -> subprocess.CompletedProcess:
        args = [sys.executable, "manage.py", "send_message", "--org", "org-a", "--contact", email]
        return subprocess.run(  # noqa: S603  our interpreter, fixed arguments
            [*args, "--template", "welcome"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    sent = run("ana@example.com")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("sent message #")
    assert len(smtp_server.handler.received) == 1

    blocked = run("stranger@example.com")
    assert blocked.returncode == 1
    assert (
        blocked.stderr.strip().splitlines()[-1]
        == "CommandError: blocked: no consent: email_marketing was never granted"
    )


def test_consent_granted_later_lets_the_next_run_send(org, template, smtp):
    bo = ContactFactory(org=org, email="bo@example.com")
    with pytest.raises(CommandError):
        send(org="org-a", contact="bo@example.com", template="welcome")
    consent_record(org=org, contact=bo, purpose="email_marketing", granted=True, source="form")

    assert send(org="org-a", contact="bo@example.com", template="welcome").startswith("sent message #")
    assert len(smtp.received) == 1
