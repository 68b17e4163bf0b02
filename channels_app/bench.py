"""Benchmark scenarios ``channels`` and ``projection`` for ``python manage.py bench`` (registered
with ``@scenario``).

Email through the outbox the way production sends it: ``messages_enqueue`` (render, tracked
links, footer, the ``Message`` row) in the command's process, then the ``messages_send`` tasks
drained by Celery worker processes into a loopback SMTP server (aiosmtpd) that counts what it
receives; and the raw ceiling of plain ``smtplib`` to the same server (docs/bench.md, "channels").
``projection`` times a workflow's projected sends over a segment (the send guards in SQL).
"""

import email.policy
import json
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings

from marketing.bench import Profiler, Scenario, scenario
from marketing.key_rotation import contacts_phones_encrypt
from marketing.models import Contact, Organization, PropertyDefinition
from marketing.tenancy import org_context
from workflows.bench import COUNTRIES, Processes

ENQUEUE_CHUNK = 500  # messages per transaction in the enqueue phase
VARIANTS = [
    {
        "name": "A",
        "weight": 50,
        "subject": "{{ first_name }}, your {{ properties.plan }} plan in {{ country }}",
        "preheader": "News for {{ first_name }} {{ last_name }}",
        "html": (
            "<h1>Hello {{ first_name | default: 'there' }},</h1>"
            "<p>Your <b>{{ properties.plan }}</b> plan has {{ properties.seats }} seats.</p>"
            '<p><a href="https://acme.example/pricing?utm_source=email&amp;utm_campaign=bench">See pricing</a> '
            'or <a href="https://acme.example/blog/launch">read the launch post</a>.</p>'
        ),
        "text": (
            "Hello {{ first_name }}, your {{ properties.plan }} plan has {{ properties.seats }} seats.\n"
            "Pricing: https://acme.example/pricing?utm_source=email&utm_campaign=bench\n"
            "Launch: https://acme.example/blog/launch"
        ),
    },
    {
        "name": "B",
        "weight": 50,
        "subject": "What's new for {{ company.name | default: 'your team' }}, {{ first_name }}",
        "html": (
            "<p>Hi {{ first_name }} {{ last_name }},</p>"
            "{% if properties.seats > 100 %}<p>Big team? Talk to us.</p>{% endif %}"
            '<p><a href="https://acme.example/demo?utm_source=email">Book a demo</a> · '
            '<a href="https://acme.example/docs">Docs</a></p>'
        ),
    },
]
# The loopback SMTP server, run by this interpreter in a process of its own (so its work is not
# in this process's GIL or measurements): it counts messages and distinct Message-IDs (a regex
# over the headers, no parsing), and answers each line on stdin with "count distinct missing".
SMTP_SERVER = r"""
import re, sys, threading
from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
lock = threading.Lock()
state = {"count": 0, "missing": 0}
ids = set()


class Counting:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or b""
        end = raw.find(b"\r\n\r\n")
        found = MESSAGE_ID.search(raw[: end if end >= 0 else len(raw)])
        with lock:
            state["count"] += 1
            if found:
                ids.add(found.group(1))
            else:
                state["missing"] += 1
        return "250 Message accepted for delivery"


controller = Controller(Counting(), hostname="127.0.0.1", port=int(sys.argv[1]), server_hostname="bench.local")
controller.start()
print("ready", flush=True)
for line in sys.stdin:
    with lock:
        print(state["count"], len(ids), state["missing"], flush=True)
controller.stop()
"""


class SmtpServer:
    """The counting SMTP server process on 127.0.0.1 and a free port."""

    def __init__(self):
        self.port = _free_port()
        self.proc = subprocess.Popen(  # noqa: S603  our own interpreter and a fixed script
            [sys.executable, "-c", SMTP_SERVER, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise CommandError("the loopback SMTP server (aiosmtpd) did not start")

    def counts(self) -> tuple[int, int, int]:
        """(messages received, distinct Message-IDs, messages without one)."""
        self.proc.stdin.write("?\n")
        self.proc.stdin.flush()
        count, distinct, missing = self.proc.stdout.readline().split()
        return int(count), int(distinct), int(missing)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SendWorkers(Processes):
    """Celery workers only (no beat: the sweep would re-send the queue behind the bench's back),
    pointed at the loopback SMTP server with a rate limit that does not throttle."""

    def __init__(self, *, workers: int, log_dir: Path, smtp_port: int):
        super().__init__(workers=workers, log_dir=log_dir)
        self.smtp_port = smtp_port

    def _env(self) -> dict:
        return {
            **super()._env(),
            "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            "EMAIL_RATE_PER_S": "100000",
            "EMAIL_TIMEOUT": "30",
        }

    def start(self) -> None:
        from marketing.celery import app

        app.control.purge()
        for index in range(self.count):
            self.workers.append(
                self._start(
                    [
                        "worker",
                        "--pool",
                        "solo",
                        "--hostname",
                        f"bench-channels-{index}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel",
                        "warning",
                    ],
                    self.log_dir / f"worker-{index}.log",
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check()
            if len(app.control.ping(timeout=0.5)) >= self.count:
                return
        raise CommandError("the Celery workers did not answer a ping within 60 s; see " + str(self.log_dir))


@scenario
class ChannelsScenario(Scenario):
    """Email through the outbox: N consenting contacts get a two-variant marketing email.
    ``messages_enqueue`` in the command's process (render + tracked links + footer + outbox
    rows, 500 a batch, as a broadcast does), then the send tasks drained by Celery workers into a
    loopback SMTP server; and plain smtplib to the same server as the raw ceiling (vs_raw)."""

    name = "channels"
    help = "Email outbox: render+enqueue msgs/s, delivered msgs/s via Celery to SMTP, RSS, vs raw smtplib."
    org_slug = "bench-channels"
    org_name = "Bench (channels)"
    org_tables = (
        "channels_app_message",
        "channels_app_suppression",
        "channels_app_templateversion",
        "channels_app_messagetemplate",
        "compliance_consentrecord",
        "marketing_contact",
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--messages", type=int, default=50_000, help="Messages (and contacts) (default 50000).")
        parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2).")
        parser.add_argument("--batch", type=int, default=20, help="Message ids per send task (default 20).")
        parser.add_argument("--raw-sample", type=int, default=2000, help="Messages sent by plain smtplib (2000).")
        parser.add_argument("--profile", action="store_true", help="cProfile the enqueue phase; top costs to stderr.")
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        if connection.vendor != "postgresql" or settings.EMBEDDED:
            raise CommandError(
                "bench channels needs PostgreSQL and Redis (DATABASE_URL=postgres://… REDIS_URL=redis://…): "
                "it starts Celery workers as separate processes that share the database and broker."
            )
        n = options["messages"]
        if n < 1:
            raise CommandError("--messages must be at least 1.")
        org = self.org_fresh()
        self._contacts(org, n, progress)
        template = self._template(org)
        figures: dict = {"messages": n, "workers": options["workers"], "send_batch": options["batch"]}
        figures.update(self._enqueue(org, template, n, options["profile"], progress))

        server = SmtpServer()
        log_dir = Path(tempfile.mkdtemp(prefix="bench-channels-"))
        procs = SendWorkers(workers=options["workers"], log_dir=log_dir, smtp_port=server.port)
        try:
            procs.start()
            figures.update(self._deliver(org, n, options["batch"], server, procs, progress))
            procs.stop()
            figures["rss_mb"] = round(max(procs.peak_rss.values(), default=0) / 2**20, 1)
            figures["worker_errors"] = procs.errors()
            figures.update(self._raw(org, min(n, options["raw_sample"]), server, progress))
        finally:
            procs.stop()
            server.stop()
        figures["vs_raw"] = round(figures["delivered_per_s"] / figures["raw_smtp_per_s"], 3)
        yield figures
        if not options["keep"]:
            self.org_empty(org)

    # -- data ----------------------------------------------------------------------------------

    def org_fresh(self) -> Organization:
        org = super().org_fresh()
        org.postal_address = "Bench Inc.\n1 Loopback Street\n12345 Localhost"
        org.from_email = "news@bench.example"
        org.from_name = "Bench News"
        org.quiet_hours_start = org.quiet_hours_end = None
        org.frequency_caps = {}
        org.save()
        return org

    def org_empty(self, org: Organization) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            # A template points at its live version: unlinked first, so the versions can go.
            cursor.execute("UPDATE channels_app_messagetemplate SET live_version_id = NULL WHERE org_id = %s", [org.pk])
            super().org_empty(org)

    def _contacts(self, org: Organization, n: int, progress) -> None:
        """N contacts generated in SQL from the row number, each with an email_marketing grant."""
        advance = progress("generating contacts and consent", 1)
        first = ["Ana", "Ben", "Chloé", "Dmitri", "Emma", "Felix", "Grace", "Hiro", "Ines", "Jonas"]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO marketing_contact (org_id, email, external_id, phone, first_name, last_name, job_title, "
                "country, time_zone, locale, lifecycle_stage, lead_status, score, properties, created_at, "
                "updated_at, last_activity_at) "
                "SELECT %s, 'c' || g || '@d' || (g %% 500) || '.bench.example', NULL, '', (%s::text[])[1 + g %% 10], "
                "'Last ' || g, '', (ARRAY['DE', 'FR', 'US', 'GB', 'BR'])[1 + g %% 5], '', '', 'lead', 'new', "
                "g %% 1000, jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + g %% 3], "
                "'seats', g %% 500), now(), now(), NULL FROM generate_series(1, %s) g",
                [org.pk, first, n],
            )
            cursor.execute(
                "INSERT INTO compliance_consentrecord (org_id, contact_id, purpose, granted, source, lawful_basis, "
                "proof, recorded_at) SELECT org_id, id, 'email_marketing', true, 'import', 'consent', '{}', now() "
                "FROM marketing_contact WHERE org_id = %s",
                [org.pk],
            )
            cursor.execute("ANALYZE marketing_contact")
            cursor.execute("ANALYZE compliance_consentrecord")
        advance(1)

    def _template(self, org: Organization):
        from channels_app.models import MessageTemplate
        from channels_app.template_versions import template_publish

        with org_context(org):
            template = MessageTemplate.objects.create(
                org=org, slug="bench", name="Bench", channel="email", purpose="marketing", variants=VARIANTS
            )
            template_publish(template=template)
            template.refresh_from_db()
            template.live_version  # noqa: B018  loaded once, as a caller holding the template would
        return template

    # -- phases --------------------------------------------------------------------------------

    def _enqueue(self, org: Organization, template, n: int, profile: bool, progress) -> dict:
        """``messages_enqueue`` for every contact, 500 a batch (a broadcast), without the send
        tasks. DEBUG is off as in production (the debug cursor would format and keep every query)."""
        from channels_app.outbox import Recipient, messages_enqueue

        advance = progress("render + enqueue", n)
        profiler = Profiler(profile)
        queries = 0
        elapsed = 0.0
        with override_settings(DEBUG=False), org_context(org):
            contacts = Contact.objects.filter(org=org).order_by("pk")
            last = 0
            while True:
                chunk = list(contacts.filter(pk__gt=last)[:ENQUEUE_CHUNK])
                if not chunk:
                    break
                last = chunk[-1].pk
                start = time.perf_counter()
                with profiler, transaction.atomic():
                    messages_enqueue(
                        org=org,
                        template=template,
                        recipients=[Recipient(contact, f"bench-channels:{contact.pk}") for contact in chunk],
                        enqueue_send=False,
                    )
                elapsed += time.perf_counter() - start
                advance(len(chunk))
            if n:
                queries = self._queries_per_message(org, template, contacts.first())
        profiler.report()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM channels_app_message WHERE org_id = %s", [org.pk])
            made = cursor.fetchone()[0]
        if made != n:
            raise CommandError(f"{made} messages enqueued, expected {n}")
        return {
            "enqueue_seconds": round(elapsed, 2),
            "render_enqueue_per_s": round(n / elapsed) if elapsed else None,
            "enqueue_queries_per_message": queries,
        }

    def _queries_per_message(self, org: Organization, template, contact) -> int:
        """Queries of one more ``message_enqueue`` (a fresh key, rolled back)."""
        from django.test.utils import CaptureQueriesContext

        from channels_app.outbox import message_enqueue

        with CaptureQueriesContext(connection) as captured:
            try:
                with transaction.atomic():
                    message_enqueue(
                        org=org,
                        contact=contact,
                        template=template,
                        idempotency_key="bench-channels:count",
                        enqueue_send=False,
                    )
                    raise _RollbackError
            except _RollbackError:
                pass
        control = ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK")
        return sum(1 for q in captured.captured_queries if not q["sql"].startswith(control))

    def _deliver(self, org: Organization, n: int, batch: int, server: SmtpServer, procs, progress) -> dict:
        """The send tasks for every queued message, ``batch`` ids each, timed until the SMTP
        server has received all N (or nothing arrives for 60 s)."""
        from channels_app.tasks import messages_send

        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM channels_app_message WHERE org_id = %s ORDER BY id", [org.pk])
            ids = [row[0] for row in cursor.fetchall()]
        advance = progress("delivered over SMTP", n)
        start = time.monotonic()
        for first in range(0, len(ids), batch):
            messages_send.delay(message_ids=ids[first : first + batch])
        enqueued_s = time.monotonic() - start
        seen, last_change = 0, time.monotonic()
        while seen < n:
            time.sleep(0.25)
            count = server.counts()[0]
            if count != seen:
                advance(count - seen)
                seen, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > 60:
                break
            procs.sample_rss()
            procs.check()
        elapsed = time.monotonic() - start
        # The last transitions to ``sent`` commit just after the last DATA reply.
        deadline = time.monotonic() + 10
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT status, count(*) FROM channels_app_message WHERE org_id = %s GROUP BY status", [org.pk]
                )
                statuses = dict(cursor.fetchall())
            if statuses.get("sent", 0) >= n or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        count, distinct, missing = server.counts()  # again: a late duplicate counts too
        return {
            "delivered": count,
            "distinct_message_ids": distinct,
            "duplicates": count - distinct - missing,
            "sent_rows": statuses.get("sent", 0),
            "not_sent_rows": sum(v for k, v in statuses.items() if k != "sent"),
            "task_enqueue_seconds": round(enqueued_s, 2),
            "deliver_seconds": round(elapsed, 2),
            "delivered_per_s": round(seen / elapsed),
        }

    def _raw(self, org: Organization, sample: int, server: SmtpServer, progress) -> dict:
        """Plain smtplib from this process to the same server: the same From, To, headers and
        bodies as the outbox sent (the rows' rendered content), the MIME built before the clock
        starts (its cost is ``raw_mime_build_ms``); once over one connection (the ceiling, and what the
        outbox does for a batch), once with a connection per message."""
        with connection.cursor() as cursor:
            cursor.execute(
                'SELECT idempotency_key, "to", content FROM channels_app_message '
                "WHERE org_id = %s ORDER BY id LIMIT %s",
                [org.pk, sample],
            )
            rows = cursor.fetchall()
        rows = [(key, to, json.loads(content) if isinstance(content, str) else content) for key, to, content in rows]
        advance = progress("raw smtplib", 2 * len(rows))

        def build(index: int, key: str, to: str, content: dict) -> bytes:
            message = EmailMessage()
            message["Subject"] = content.get("subject", "")
            message["From"] = "Bench News <news@bench.example>"
            message["To"] = to
            message["Message-ID"] = f"<raw-{index}-{key.replace(':', '=3A')}@bench.example>"
            message.set_content(content.get("text") or "", cte="quoted-printable")
            if content.get("html"):
                message.add_alternative(content["html"], subtype="html", cte="quoted-printable")
            return message.as_bytes(policy=email.policy.SMTP)

        start = time.perf_counter()
        built = [(to, build(index, key, to, content)) for index, (key, to, content) in enumerate(rows)]
        build_s = time.perf_counter() - start
        before = server.counts()[0]
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", server.port, local_hostname="bench.local", timeout=30) as smtp:
            for to, raw in built:
                smtp.sendmail("news@bench.example", [to], raw)
                advance(1)
        one_connection_s = time.perf_counter() - start
        start = time.perf_counter()
        for to, raw in built:
            with smtplib.SMTP("127.0.0.1", server.port, local_hostname="bench.local", timeout=30) as smtp:
                smtp.sendmail("news@bench.example", [to], raw)
            advance(1)
        per_connection_s = time.perf_counter() - start
        return {
            "raw_sample": len(rows),
            "raw_received": server.counts()[0] - before,
            "raw_smtp_per_s": round(len(rows) / one_connection_s),
            "raw_smtp_connection_per_message_per_s": round(len(rows) / per_connection_s),
            "raw_mime_build_ms": round(build_s / len(rows) * 1000, 2),
        }


class _RollbackError(Exception):
    pass


# -- projection: the send guards of a workflow over a segment, in SQL ---------------------------


def projection_definition(score: int = 40) -> dict:
    """The projection bench's workflow, every rule of which compiles: a condition, an A/B split
    (one arm waits an hour), an email, an approval, a wait that times out, an SMS, a second email."""
    return {
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "keen",
                "type": "condition",
                "condition": {"and": [{">=": [{"var": "score"}, score]}, {"!=": [{"var": "properties.plan"}, "free"]}]},
                "true_next": "ab",
                "false_next": "opened",
            },
            {
                "id": "ab",
                "type": "split",
                "branches": [{"name": "A", "weight": 30, "next": "mail"}, {"name": "B", "weight": 70, "next": "hour"}],
            },
            {"id": "hour", "type": "delay", "config": {"duration": "PT1H"}, "next": "mail"},
            {"id": "mail", "type": "action", "action": "send_email", "config": {"template": "promo"}, "next": "ok"},
            {
                "id": "ok",
                "type": "approval",
                "approvers": {"role": "marketer"},
                "approved_next": "opened",
                "rejected_next": None,
                "timeout_next": None,
            },
            {
                "id": "opened",
                "type": "wait_for_event",
                "event": "email_opened",
                "timeout": "P1D",
                "next": None,
                "timeout_next": "text",
            },
            {"id": "text", "type": "action", "action": "send_sms", "config": {"template": "remind"}, "next": "again"},
            {"id": "again", "type": "action", "action": "send_email", "config": {"template": "promo"}, "next": None},
        ],
    }


@scenario
class ProjectionScenario(Scenario):
    """Projected volume (``workflows.projection``) of a workflow whose rules all compile, over a
    segment of N contacts with consent, suppressions, stored sends, phones and time zones mixed
    in: the seconds one projection takes (set-based, so ``sample_size`` is null)."""

    name = "projection"
    help = "Projection of a compiled workflow over an N-contact segment: seconds (PostgreSQL)."
    org_slug = "bench-projection"
    org_name = "Bench (projection)"
    org_tables = (
        "channels_app_message",
        "channels_app_suppression",
        "compliance_consentrecord",
        "marketing_segmentmembership",
        "marketing_segment",
        "workflows_workflowversion",
        "workflows_workflow",
        "channels_app_templateversion",
        "channels_app_messagetemplate",
        "marketing_contact",
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=100_000, help="Segment members (default 100000).")
        parser.add_argument("--repeat", type=int, default=3, help="Timed projections (default 3).")
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")

    def org_empty(self, org: Organization) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE workflows_workflow SET live_version_id = NULL WHERE org_id = %s", [org.pk])
            cursor.execute("UPDATE channels_app_messagetemplate SET live_version_id = NULL WHERE org_id = %s", [org.pk])
            super().org_empty(org)

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        from workflows.projection import workflow_project

        if connection.vendor != "postgresql":
            raise CommandError(
                "bench projection needs PostgreSQL (DATABASE_URL=postgres://…): it measures the SQL walk."
            )
        n = options["contacts"]
        org = self.org_fresh()
        try:
            with org_context(org):
                workflow, segment = self._data(org, n, progress)
                now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # a Wednesday morning (UTC): quiet in the Americas
                advance = progress("projecting", options["repeat"])
                timings, result = [], {}
                for _ in range(max(1, options["repeat"])):
                    start = time.perf_counter()
                    result = workflow_project(workflow=workflow, segment=segment, now=now)
                    timings.append(time.perf_counter() - start)
                    advance(1)
            yield {
                "contacts": n,
                "seconds": round(min(timings), 2),
                "seconds_max": round(max(timings), 2),
                "sample_size": result["sample_size"],
                "sends": result["sends"],
                "blocked": sum(result["blocked"].values()),
                "held": sum(result["held"].values()),
                "steps": len(result["steps"]),
            }
        finally:
            if not options["keep"]:
                self.org_empty(org)

    def _data(self, org: Organization, n: int, progress):
        """N contacts in SQL from the row number, email consent for all (withdrawn for a tenth)
        and SMS consent for 60 %, 2 % suppressed, 5 % with a marketing email sent the day before;
        a segment of them all; the two templates and the workflow (a draft)."""
        from channels_app.models import Message, MessageTemplate, Suppression
        from channels_app.template_versions import template_publish
        from marketing.models import Contact, Segment
        from workflows.services import workflow_create

        advance = progress("generating contacts, consent and a segment", 1)
        zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "", "UTC"]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO marketing_contact (org_id, email, external_id, phone, first_name, last_name, job_title, "
                "country, time_zone, locale, lifecycle_stage, lead_status, score, properties, created_at, "
                "updated_at, last_activity_at) "
                "SELECT %s, CASE WHEN g %% 20 = 0 THEN NULL ELSE 'p' || g || '@projection.bench' END, NULL, "
                "CASE WHEN g %% 5 < 3 THEN '+4915112' || lpad((g %% 1000000)::text, 6, '0') ELSE '' END, "
                "'First', 'Last ' || g, '', (%s::text[])[1 + g %% 10], (%s::text[])[1 + g %% 5], '', 'lead', "
                "'new', g %% 100, jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + g %% 3]), "
                "now(), now(), NULL FROM generate_series(1, %s) g",
                [org.pk, COUNTRIES, zones, n],
            )
        contacts_phones_encrypt(org=org)  # generated in clear above; stored as the ORM stores them
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO compliance_consentrecord (org_id, contact_id, purpose, granted, source, lawful_basis, "
                "proof, recorded_at) SELECT org_id, id, p.purpose, true, 'import', 'consent', '{}', now() "
                "FROM marketing_contact, (VALUES ('email_marketing', 10), ('sms', 6)) p(purpose, share) "
                "WHERE org_id = %s AND id %% 10 < p.share",
                [org.pk],
            )
            segment = Segment.objects.create(org=org, slug="everyone", name="Everyone", kind=Segment.Kind.STATIC)
            cursor.execute(
                "INSERT INTO marketing_segmentmembership (org_id, segment_id, contact_id, entered_at) "
                "SELECT org_id, %s, id, now() FROM marketing_contact WHERE org_id = %s",
                [segment.pk, org.pk],
            )
            cursor.execute(
                "UPDATE compliance_consentrecord SET granted = false WHERE org_id = %s AND purpose = 'email_marketing' "
                "AND contact_id %% 10 = 6",
                [org.pk],
            )
        emails = list(Contact.objects.filter(org=org).exclude(email=None).order_by("pk").values_list("pk", "email"))
        Suppression.objects.bulk_create(
            [Suppression(org=org, channel="email", address=email, reason="manual") for _, email in emails[::50]]
        )
        sent = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # the day before the projection starts
        Message.objects.bulk_create(
            [
                Message(
                    org=org,
                    contact_id=pk,
                    channel="email",
                    to=email,
                    idempotency_key=f"bench-projection-{pk}",
                    status="sent",
                    sent_at=sent,
                )
                for pk, email in emails[3::20]
            ],
            batch_size=5000,
        )
        PropertyDefinition.objects.get_or_create(org=org, subject="contact", key="plan", defaults={"type": "enum"})
        org.frequency_caps = {"email": {"day": 1, "week": 2}}
        org.save(update_fields=["frequency_caps"])
        for slug, channel in (("promo", "email"), ("remind", "sms")):
            variant = {"name": "A", "weight": 1, "text": "Hi {{ first_name }}."}
            if channel == "email":
                variant.update(subject="Hi {{ first_name }}", html="<p>Hi</p>")
            template = MessageTemplate.objects.create(
                org=org, slug=slug, name=slug, channel=channel, variants=[variant]
            )
            template_publish(template=template)
        workflow = workflow_create(
            org=org, name="Bench projection", slug="projection", definition=projection_definition()
        )
        with connection.cursor() as cursor:
            for table in ("marketing_contact", "compliance_consentrecord", "marketing_segmentmembership"):
                cursor.execute(f"ANALYZE {table}")
        advance(1)
        return workflow, segment
