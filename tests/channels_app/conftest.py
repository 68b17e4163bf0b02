"""Fixtures of the channel tests: a loopback SMTP server (aiosmtpd) that records every message,
Django's SMTP backend pointed at it, a consenting contact and a published email template."""

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller

from channels_app.models import MessageTemplate
from channels_app.template_versions import template_publish
from compliance.services import consent_record
from tests.factories import ContactFactory
from tests.workflows.conftest import drain, publish  # noqa: F401  the workflow fixtures, for send_email


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"]


@dataclass
class RecordingHandler:
    """Accepts everything unless told otherwise: ``rcpt_replies`` maps an address to the reply
    to its RCPT (e.g. "550 5.1.1 No such user"); ``data_delay`` seconds are spent in each DATA."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_delay: float = 0.0
    greetings: int = 0  # EHLOs: one per connection
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802  aiosmtpd hook
        with self.lock:
            self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802  aiosmtpd hook
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  aiosmtpd hook
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
            )
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [r.message_id for r in self.received]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONSENTED_AT = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def smtp_server():
    """A running aiosmtpd ``Controller`` on 127.0.0.1 and a free port; ``.handler.received`` lists
    every message it accepted (envelope and raw bytes)."""
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def smtp(settings, smtp_server):
    """Django's SMTP backend pointed at the loopback server; returns the recording handler."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    return smtp_server.handler


@pytest.fixture
def contact(org):
    """Ana, in Berlin, who granted email marketing consent before any time the tests use (their
    fixed Mondays, or the real now): a withdrawal a test records at its fixed time is then newer
    whatever day the suite runs."""
    ana = ContactFactory(
        org=org, email="ana@example.com", first_name="Ana", phone="+4915112345678", time_zone="Europe/Berlin"
    )
    consent_record(org=org, contact=ana, purpose="email_marketing", granted=True, source="form", at=CONSENTED_AT)
    return ana


@pytest.fixture
def template_factory(org):
    """Makes and publishes a template (one variant by default)."""

    def make(slug="welcome", *, channel="email", purpose="marketing", variants=None):
        if variants is None:
            variants = (
                [{"name": "A", "weight": 1, "text": "Hi {{ first_name }}, welcome."}]
                if channel == "sms"
                else [
                    {
                        "name": "A",
                        "weight": 1,
                        "subject": "Welcome, {{ first_name }}",
                        "html": '<p>Hello {{ first_name }}, see <a href="https://acme.io/start?utm_source=x">this</a>.</p>',
                        "text": "Hello {{ first_name }}.",
                    }
                ]
            )
        template = MessageTemplate.objects.create(
            org=org, slug=slug, name=slug.title(), channel=channel, purpose=purpose, variants=variants
        )
        template_publish(template=template)
        template.refresh_from_db()
        return template

    return make


@pytest.fixture
def template(template_factory):
    return template_factory()
