"""Benchmark scenarios for ``python manage.py bench``, and the registry other apps add to.

A scenario is a small class registered with ``@scenario``; it lives in its app's ``bench``
module, declares its sizes as command-line options, and yields flat dicts of figures, each key
named with its unit (``contacts_per_s``, ``p95_ms``). The command adds ``scenario``, ``db`` and
``cores`` and prints one JSON object per line. Data is generated from a fixed seed, so two runs
measure the same work; where a raw ceiling exists, the scenario measures it in the same run and
reports the ratio (``vs_raw``).
"""

import cProfile
import gc
import io
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from marketing.models import Contact, DispatchBatch, Event, ListMembership, Membership, Organization, Role, User
from marketing.tenancy import org_context

_scenarios: dict[str, type["Scenario"]] = {}


class Scenario:
    """One benchmark. Subclasses set ``name`` and ``help`` and implement ``run``.

    A scenario works in an org of its own (``org_slug``), emptied before a run and, unless the run
    keeps it, after: ``org_fresh`` and ``org_empty`` delete the org's rows from ``org_tables``, in
    that order (children first), set-based (the ORM's cascade would walk every row).
    """

    name = ""
    help = ""
    org_slug = ""
    org_name = ""
    org_tables: tuple[str, ...] = ()

    def org_fresh(self) -> Organization:
        """The scenario's org, created, or emptied of what an earlier run left."""
        org, created = Organization.objects.get_or_create(slug=self.org_slug, defaults={"name": self.org_name})
        if not created:
            self.org_empty(org)
        return org

    def org_empty(self, org: Organization) -> None:
        # In the org's context: row-level security lets the app role delete only that org's rows.
        with org_context(org), transaction.atomic(), connection.cursor() as cursor:
            for table in self.org_tables:
                cursor.execute(f"DELETE FROM {table} WHERE org_id = %s", [org.pk])  # noqa: S608  fixed names

    def add_arguments(self, parser) -> None:
        """Declares the scenario's sizes and options."""

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        """Does the work and yields figures; ``progress(description, total)`` returns an advance()."""
        raise NotImplementedError


def scenario(cls: type[Scenario]) -> type[Scenario]:
    """Registers a scenario class under its ``name``."""
    _scenarios[cls.name] = cls
    return cls


def scenarios() -> dict[str, type[Scenario]]:
    """Every registered scenario, after importing each installed app's ``bench`` module."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("bench")
    return dict(sorted(_scenarios.items()))


def percentile_ms(samples: list[float], pct: float) -> float:
    """The pct-th percentile of samples given in seconds, in milliseconds."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return round(ordered[index] * 1000, 2)


def timed(func: Callable[[], object], repeat: int) -> list[float]:
    """Calls ``func`` once to warm up, then ``repeat`` times; returns the durations in seconds."""
    func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return samples


class Profiler:
    """cProfile around the timed parts of a phase when ``enabled`` (a scenario's ``--profile``);
    ``report()`` writes the top costs, cumulative and own, to stderr (stdout is the figures')."""

    def __init__(self, enabled: bool) -> None:
        self.profile = cProfile.Profile() if enabled else None

    def __enter__(self) -> "Profiler":
        if self.profile:
            self.profile.enable()
        return self

    def __exit__(self, *exc) -> None:
        if self.profile:
            self.profile.disable()

    def report(self) -> None:
        if not self.profile:
            return
        out = io.StringIO()
        pstats.Stats(self.profile, stream=out).sort_stats("cumulative").print_stats(45)
        pstats.Stats(self.profile, stream=out).sort_stats("tottime").print_stats(25)
        sys.stderr.write(out.getvalue())


def vacuum_analyze(*tables: str) -> None:
    """``VACUUM ANALYZE`` of ``tables`` (fixed names): fresh statistics, and the dead rows of an
    earlier phase cleared so they do not skew the next one's timing. Inside a transaction (the
    test suite's), where VACUUM cannot run, and on SQLite, only ANALYZE."""
    if connection.vendor != "postgresql":
        statements = ["ANALYZE"]
    elif connection.in_atomic_block:
        statements = [f"ANALYZE {table}" for table in tables]
    else:
        statements = [f"VACUUM ANALYZE {table}" for table in tables]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def checkpoint() -> None:
    """A PostgreSQL ``CHECKPOINT`` before a timed phase, so the pages an earlier phase dirtied
    (a million generated rows, say) are written now rather than by the checkpointer during the
    measurement. Skipped without the privilege (superuser or ``pg_checkpoint``) and on SQLite."""
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:
        pass  # the measurement is noisier, not wrong


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- contacts ---------------------------------------------------------------------------------

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emma",
    "Felix",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Viktor",
]
LAST_NAMES = [
    "Lima",
    "Schmidt",
    "Martin",
    "Ivanov",
    "Smith",
    "Keller",
    "Okafor",
    "Tanaka",
    "García",
    "Novak",
    "Rossi",
    "Dubois",
    "Nakamura",
    "Haddad",
    "Patel",
    "Larsen",
    "Silva",
    "Kowalski",
    "Brown",
    "Weber",
]
STAGE_WEIGHTS = {
    "subscriber": 20,
    "lead": 40,
    "mql": 12,
    "sql": 8,
    "opportunity": 6,
    "customer": 10,
    "evangelist": 2,
    "other": 2,
}
COUNTRIES = ["US", "DE", "GB", "FR", "BR", "JP", "IN", "ES", "NL", "CA"]


@scenario
class ContactsScenario(Scenario):
    """Bulk-creates N contacts in a bench org, then times the console's contact list, a search,
    a filter and a filtered count against them."""

    name = "contacts"
    help = "Bulk-create contacts; time the admin list, search, filter and a filtered count."
    org_slug = "bench-contacts"
    org_name = "Bench (contacts)"
    org_tables = ("marketing_contact",)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=100_000, help="How many contacts (default 100000).")
        parser.add_argument("--repeat", type=int, default=20, help="Timed repetitions per query (default 20).")
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        n, repeat = options["contacts"], options["repeat"]
        org = self.org_fresh()
        user, _ = User.objects.get_or_create(username="bench-admin", defaults={"email": "bench@localhost"})
        with org_context(org):
            Membership.objects.get_or_create(org=org, user=user, defaults={"role": Role.ADMIN})
        try:
            with org_context(org):
                rows = list(self._contact_rows(org, n))
                advance = progress("inserting contacts", n)
                start = time.perf_counter()
                for i in range(0, n, 5000):
                    batch = rows[i : i + 5000]
                    Contact.objects.bulk_create(batch)
                    advance(len(batch))
                insert_s = time.perf_counter() - start
                raw_per_s = self._raw_insert_rate(rows) if connection.vendor == "postgresql" else None
                self._analyze()
                figures = {"contacts": n, "insert_seconds": round(insert_s, 2), "contacts_per_s": round(n / insert_s)}
                if raw_per_s:
                    figures.update(raw_contacts_per_s=round(raw_per_s), vs_raw=round(n / insert_s / raw_per_s, 3))
                figures.update(self._queries(org, user, repeat, progress))
            yield figures
        finally:
            if not options["keep"]:
                self.org_empty(org)

    def org_empty(self, org) -> None:
        with org_context(org), transaction.atomic():
            # The contacts' tags and list places (tables without an org column) go first.
            contacts = Contact.objects.filter(org=org)
            Contact.tags.through.objects.filter(contact__in=contacts)._raw_delete(connection.alias)
            ListMembership.objects.filter(contact__in=contacts)._raw_delete(connection.alias)
            super().org_empty(org)

    def _contact_rows(self, org, n: int) -> Iterator[Contact]:
        rng = random.Random(1129)
        now = timezone.now()
        stages, weights = list(STAGE_WEIGHTS), list(STAGE_WEIGHTS.values())
        for i in range(n):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            created = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 730))
            yield Contact(
                org=org,
                email=f"{first.lower()}.{i}@d{i % 5000}.bench.example",
                first_name=first,
                last_name=last,
                country=rng.choice(COUNTRIES),
                lifecycle_stage=rng.choices(stages, weights)[0],
                lead_status=rng.choice(["new", "open", "in_progress", "connected"]),
                score=rng.randrange(0, 1000),
                properties={"plan": rng.choice(["free", "pro", "enterprise"]), "seats": rng.randrange(1, 500)},
                created_at=created,
                updated_at=created,
                last_activity_at=created,
            )

    def _raw_insert_rate(self, rows) -> float:
        """The ceiling: COPY of the same rows into an unlogged copy of the table, with its indexes."""
        columns = [
            "org_id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "job_title",
            "country",
            "time_zone",
            "locale",
            "lifecycle_stage",
            "lead_status",
            "score",
            "properties",
            "created_at",
            "updated_at",
            "last_activity_at",
        ]
        import json

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_contact_raw (LIKE marketing_contact INCLUDING ALL) ON COMMIT DROP")
            start = time.perf_counter()
            with cursor.copy(f"COPY bench_contact_raw ({', '.join(columns)}) FROM STDIN") as copy:
                for c in rows:
                    copy.write_row(
                        [
                            c.org_id,
                            c.email,
                            c.phone,
                            c.first_name,
                            c.last_name,
                            c.job_title,
                            c.country,
                            c.time_zone,
                            c.locale,
                            c.lifecycle_stage,
                            c.lead_status,
                            c.score,
                            json.dumps(c.properties),
                            c.created_at,
                            c.updated_at,
                            c.last_activity_at,
                        ]
                    )
            elapsed = time.perf_counter() - start
        return len(rows) / elapsed

    def _analyze(self) -> None:
        """Fresh statistics, and no dead rows left by the previous run's delete to skew timings."""
        vacuum_analyze("marketing_contact")

    def _queries(self, org, user, repeat: int, progress) -> dict:
        client = Client()
        client.force_login(user)
        url = "/admin/marketing/contact/"
        pages = {
            "admin_list": url,
            "admin_search": url + "?q=schmidt",
            "admin_filter": url + "?lifecycle_stage__exact=lead&country__exact=DE",
        }
        figures = {}
        advance = progress("timing queries", len(pages) + 1)
        with override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
            for name, page in pages.items():

                def get(page=page):
                    response = client.get(page)
                    assert response.status_code == 200, (page, response.status_code)

                samples = timed(get, repeat)
                figures[f"{name}_p50_ms"] = percentile_ms(samples, 50)
                figures[f"{name}_p95_ms"] = percentile_ms(samples, 95)
                advance(1)
        count_samples = timed(
            lambda: Contact.objects.filter(org=org, lifecycle_stage="lead", country="DE").count(), repeat
        )
        figures["filtered_count_p95_ms"] = percentile_ms(count_samples, 95)
        figures["filtered_count_p50_ms"] = round(statistics.median(count_samples) * 1000, 2)
        advance(1)
        return figures


# --- ingest -----------------------------------------------------------------------------------

EVENT_MIX = [
    ("page_view", 60),
    ("email_opened", 15),
    ("email_clicked", 10),
    ("form_submitted", 5),
    ("content_downloaded", 5),
    ("demo_requested", 2),
    ("purchase", 3),
]
PATHS = ["/", "/pricing", "/product/demo", "/blog/launch", "/case-studies/acme", "/docs"]


@scenario
class IngestScenario(Scenario):
    """Events through the batch API path (parse, validate, resolve contacts, insert, queue dispatch),
    then the dispatch drained by Celery workers."""

    name = "ingest"
    help = "Events/s through POST /api/v1/events/ and with dispatch drained; p50/p95 per batch."
    org_slug = "bench-ingest"
    org_name = "Bench (ingest)"
    org_tables = (
        "marketing_event",
        "marketing_dispatchbatch",
        "marketing_anonymousid",
        "marketing_propertydefinition",
        "marketing_contactmerge",
        "marketing_apikey",
        "marketing_contact",
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--events", type=int, default=200_000, help="How many events (default 200000).")
        parser.add_argument("--batch", type=int, default=1000, help="Events per request (default 1000).")
        parser.add_argument("--contacts", type=int, default=20_000, help="Distinct people (default 20000).")
        parser.add_argument("--clients", type=int, default=2, help="Concurrent client processes (default 2).")
        parser.add_argument("--workers", type=int, default=2, help="Celery worker processes to drain (default 2).")
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")
        parser.add_argument(
            "--rls",
            action="store_true",
            help="Post the same events twice: as this login, then as the app role with row-level security "
            "(PostgreSQL; the roles of db_roles); prints both and the ratio.",
        )
        parser.add_argument(
            "--app-role", default="marketing_app", help="The app role of --rls (default marketing_app)."
        )
        parser.add_argument(
            "--system-role", default="marketing_system", help="The system role of --rls (default marketing_system)."
        )

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        from django.conf import settings

        from marketing.services import api_key_create

        n, size = options["events"], options["batch"]
        roles = rls_roles(options) if options["rls"] else None
        org = self.org_fresh()
        with org_context(org):
            key = api_key_create(org=org, name="bench")[1]
        batches = [self._events(i, min(size, n - i), options["contacts"]) for i in range(0, n, size)]
        rls_figures = {}
        if roles:
            # The same work as the app role first, on a fresh org; then the org is emptied and
            # the figures below are the run without row-level security.
            advance = progress("posting batches as the app role", len(batches))
            start = time.perf_counter()
            latencies = self._post_all(batches, key, options["clients"], advance, roles=roles)
            elapsed = time.perf_counter() - start
            with org_context(org):
                stored = Event.objects.filter(org=org).count()
            rls_figures = {
                "rls_events_per_s": round(stored / elapsed),
                "rls_batch_p50_ms": percentile_ms(latencies, 50),
                "rls_batch_p95_ms": percentile_ms(latencies, 95),
            }
            self.org_empty(org)
            with org_context(org):
                key = api_key_create(org=org, name="bench")[1]
        advance = progress("posting batches", len(batches))
        start = time.perf_counter()
        latencies = self._post_all(batches, key, options["clients"], advance)
        stored_s = time.perf_counter() - start
        with org_context(org):
            stored = Event.objects.filter(org=org).count()
            contacts = Contact.objects.filter(org=org).count()
        figures = {
            "events": n,
            "batch": size,
            "clients": options["clients"],
            "stored": stored,
            "contacts_created": contacts,
            "stored_seconds": round(stored_s, 2),
            "events_per_s": round(stored / stored_s),
            "batch_p50_ms": percentile_ms(latencies, 50),
            "batch_p95_ms": percentile_ms(latencies, 95),
            "dispatch": "inline" if settings.EMBEDDED else "celery",
        }
        if rls_figures:
            rls_figures["rls_ratio"] = round(rls_figures["rls_events_per_s"] / figures["events_per_s"], 3)
            figures.update(rls_figures)
        if connection.vendor == "postgresql":
            raw = self._raw_rate(org, batches)
            figures.update(raw_events_per_s=round(raw), vs_raw=round(stored / stored_s / raw, 3))
        if not settings.EMBEDDED:
            drain_s = self._drain(org, options["workers"], progress)
            figures.update(
                dispatch_drain_seconds=round(drain_s, 2),
                dispatch_events_per_s=round(stored / drain_s),
                e2e_events_per_s=round(stored / (stored_s + drain_s)),
            )
        yield figures
        if not options["keep"]:
            self.org_empty(org)

    def _events(self, first: int, count: int, people: int) -> list[dict]:
        rng = random.Random(first)
        now = timezone.now()
        types, weights = [t for t, _ in EVENT_MIX], [w for _, w in EVENT_MIX]
        events = []
        for i in range(first, first + count):
            person = rng.randrange(people)
            who = {"email": f"person{person}@bench.example"} if person % 5 else {"anonymous_id": f"anon-{person}"}
            events.append(
                {
                    "type": rng.choices(types, weights)[0],
                    **who,
                    "message_id": f"bench-{i}",
                    "occurred_at": (now - timedelta(minutes=rng.randrange(0, 60 * 24 * 90))).isoformat(),
                    "properties": {"path": rng.choice(PATHS), "n": rng.randrange(100)},
                }
            )
        return events

    def _post_all(
        self, batches: list[list[dict]], key: str, clients: int, advance, *, roles: tuple[str, str] | None = None
    ) -> list[float]:
        """Posts every batch through the full Django stack, from ``clients`` processes at once
        (as ``roles``' app and system roles when given: ``rls_roles_apply``)."""
        import json
        import multiprocessing

        from django.db import connections

        bodies = [json.dumps({"events": b}) for b in batches]
        connections.close_all()  # children must not share the parent's connection
        # The generated events stay in the parent for the raw ceiling; frozen, the children's
        # garbage collector does not walk them (that walk showed up as 100 ms latency spikes).
        gc.freeze()
        try:
            with multiprocessing.get_context("fork").Pool(clients, rls_roles_apply, (roles,)) as pool:
                latencies = []
                for batch_latency in pool.imap_unordered(_post_one, [(body, key) for body in bodies]):
                    latencies.append(batch_latency)
                    advance(1)
        finally:
            gc.unfreeze()
        return latencies

    def _raw_rate(self, org, batches: list[list[dict]]) -> float:
        """The ceiling: the same INSERT … SELECT unnest … of the same rows into a copy of the table."""
        import json

        with org_context(org):
            contact_id = Contact.objects.filter(org=org).values_list("pk", flat=True).first()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_event_raw (LIKE marketing_event INCLUDING ALL) ON COMMIT DROP")
            start = time.perf_counter()
            for batch in batches:
                cursor.execute(
                    "INSERT INTO bench_event_raw (org_id, contact_id, type, properties, occurred_at, received_at, "
                    "source, message_id) SELECT %s, %s, t, p::jsonb, o, now(), 'raw', m FROM unnest(%s::text[], "
                    "%s::text[], %s::timestamptz[], %s::text[]) AS u(t, p, o, m) "
                    "ON CONFLICT (org_id, message_id) DO NOTHING RETURNING id",
                    [
                        org.pk,
                        contact_id,
                        [e["type"] for e in batch],
                        [json.dumps(e["properties"]) for e in batch],
                        [e["occurred_at"] for e in batch],
                        [e["message_id"] for e in batch],
                    ],
                )
                cursor.fetchall()
            elapsed = time.perf_counter() - start
        return sum(len(b) for b in batches) / elapsed

    def _drain(self, org, workers: int, progress) -> float:
        """Starts Celery workers and times until every dispatch batch of the org is done (counted in
        the org's context: row-level security shows the app role no batch outside it)."""
        with org_context(org):
            batches = DispatchBatch.objects.filter(org=org)
            total = batches.count()
            advance = progress("draining dispatch", total)
            start = time.perf_counter()
            with celery_worker(workers) as worker:
                done = batches.filter(status=DispatchBatch.Status.DONE).count
                worker_wait(worker, done, total, advance, interval=0.2)
        return time.perf_counter() - start


def rls_roles(options: dict) -> tuple[str, str]:
    """The (app, system) roles of a ``--rls`` run, checked: PostgreSQL, and both roles exist
    (``manage.py db_roles`` makes them)."""
    from django.core.management.base import CommandError

    if connection.vendor != "postgresql":
        raise CommandError("--rls needs PostgreSQL: row-level security is PostgreSQL's.")
    roles = (options["app_role"], options["system_role"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(roles)])
        found = {name for (name,) in cursor.fetchall()}
    missing = [role for role in roles if role not in found]
    if missing:
        raise CommandError(f"--rls: no role {', '.join(missing)} on the server; run manage.py db_roles first.")
    return roles


def rls_roles_apply(roles: tuple[str, str] | None) -> None:
    """In a bench process: the default alias acts as the app role and the system alias as the
    system role (``-c role=…`` at login: this process's login must be allowed to take them, e.g.
    a superuser), so row-level security applies to what it does as in production."""
    if roles is None:
        return
    from django.db import connections

    for alias, role in zip(("default", "system"), roles, strict=True):
        settings_dict = connections.settings[alias]
        options = dict(settings_dict.get("OPTIONS", {}))
        options["options"] = f"{options.get('options', '')} -c role={role}".strip()
        settings_dict["OPTIONS"] = options
        if hasattr(connections._connections, alias):
            connections[alias].close()
            del connections[alias]


def worker_wait(worker: subprocess.Popen, count: Callable[[], int], total: int, advance, *, interval: float) -> None:
    """Polls ``count()`` (e.g. the dispatch batches done) until it reaches ``total``, advancing
    the progress bar; raises if the Celery ``worker`` process ends first."""
    from django.core.management.base import CommandError

    done = 0
    while done < total:
        time.sleep(interval)
        now_done = count()
        advance(now_done - done)
        done = now_done
        if worker.poll() is not None:
            raise CommandError("the Celery worker exited early")


@contextmanager
def celery_worker(concurrency: int) -> Iterator[subprocess.Popen]:
    """A Celery worker (``concurrency`` processes) for the block, reading the broker of
    ``REDIS_URL`` with this process's environment; stopped after."""
    from django.conf import settings

    command = [sys.executable, "-m", "celery", "-A", "marketing", "worker", "-c", str(concurrency), "-l", "warning"]
    worker = subprocess.Popen(  # noqa: S603  our own interpreter and fixed arguments
        command,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _post_one(args: tuple[str, str]) -> float:
    """One batch through the full Django stack (runs in a client process); returns seconds."""
    body, key = args
    client = _client(key)
    start = time.perf_counter()
    response = client.post("/api/v1/events/", body, content_type="application/json")
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"batch refused: {response.status_code} {response.content[:300]!r}")
    return elapsed


_clients: dict[str, Client] = {}


def _client(key: str) -> Client:
    if key not in _clients:
        _clients[key] = Client(headers={"Authorization": f"Bearer {key}"})
    return _clients[key]


# --- segments -----------------------------------------------------------------------------------

SEGMENT_RULES = {
    "property": {"==": [{"var": "properties.plan"}, "pro"]},
    "property_company": {
        "and": [{"==": [{"var": "properties.plan"}, "pro"]}, {"==": [{"var": "company.industry"}, "software"]}]
    },
    "property_events": {
        "and": [
            {"==": [{"var": "properties.plan"}, "pro"]},
            {">=": [{"event_count": ["page_view", {"==": [{"var": "properties.path"}, "/pricing"]}, 30]}, 3]},
        ]
    },
}


@scenario
class SegmentsScenario(Scenario):
    """Full recompute of three segments of increasing complexity over N contacts and 5N events,
    and the incremental check per event. PostgreSQL only (data is generated in SQL)."""

    name = "segments"
    help = "Full segment recompute over N contacts / 5N events, and the per-event incremental check."
    org_slug = "bench-segments"
    org_name = "Bench (segments)"
    org_tables = (
        "marketing_segmentmembership",
        "marketing_segment",
        "marketing_dispatchbatch",
        "marketing_event",
        "marketing_contact",
        "marketing_company",
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=1_000_000, help="How many contacts (default 1000000).")
        parser.add_argument("--events-per-contact", type=int, default=5, help="Events per contact (default 5).")
        parser.add_argument("--checks", type=int, default=200, help="Incremental checks to time (default 200).")
        parser.add_argument("--fresh", action="store_true", help="Regenerate the data even if it is there.")

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        from marketing.models import Segment
        from marketing.segments import segment_recompute, segment_save, segments_check_contacts

        if connection.vendor != "postgresql":
            raise RuntimeError("bench segments generates its data in PostgreSQL; set DATABASE_URL")
        n, per = options["contacts"], options["events_per_contact"]
        org, generated_s = self._data(n, n * per, fresh=options["fresh"], progress=progress)
        figures = {"contacts": n, "events": n * per, "generate_seconds": generated_s}
        with org_context(org):
            advance = progress("recomputing segments", len(SEGMENT_RULES))
            for name, rule in SEGMENT_RULES.items():
                Segment.objects.filter(org=org, slug=name).delete()
                start = time.perf_counter()
                segment = segment_save(org=org, name=name, slug=name, rule=rule)  # the first, full computation
                figures[f"{name}_recompute_seconds"] = round(time.perf_counter() - start, 2)
                start = time.perf_counter()
                segment_recompute(segment=segment)  # again: nothing changes, every row is checked
                figures[f"{name}_steady_seconds"] = round(time.perf_counter() - start, 2)
                segment.refresh_from_db()
                figures[f"{name}_members"] = segment.member_count
                advance(1)
            figures.update(self._raw(org))
            figures["vs_raw"] = round(
                figures["raw_event_segment_seconds"] / figures["property_events_recompute_seconds"], 3
            )
            segments = list(Segment.objects.filter(org=org))
            rng = random.Random(7)
            contact_ids = list(Contact.objects.filter(org=org).values_list("pk", flat=True)[:200_000:97])
            samples = []
            advance = progress("incremental checks", options["checks"])
            for _ in range(options["checks"]):
                contact_id = rng.choice(contact_ids)
                start = time.perf_counter()
                segments_check_contacts(org=org, contact_ids=[contact_id], segments=segments)
                samples.append(time.perf_counter() - start)
                advance(1)
            figures["incremental_check_p50_ms"] = percentile_ms(samples, 50)
            figures["incremental_check_p95_ms"] = percentile_ms(samples, 95)
        yield figures

    def _raw(self, org) -> dict:
        """The ceiling: the event-count segment's matching set as one hand-written SQL count."""
        from marketing.models import Segment

        segment = Segment.objects.get(org=org, slug="property_events")
        with connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(
                "SELECT count(*) FROM marketing_contact c WHERE c.org_id = %s AND c.properties ->> 'plan' = 'pro' "
                "AND c.id IN (SELECT e.contact_id FROM marketing_event e WHERE e.org_id = %s AND e.type = "
                "'page_view' AND e.occurred_at >= now() - interval '30 days' AND e.properties ->> 'path' = "
                "'/pricing' GROUP BY e.contact_id HAVING count(*) >= 3)",
                [org.pk, org.pk],
            )
            raw_count = cursor.fetchone()[0]
            elapsed = time.perf_counter() - start
        return {
            "raw_event_segment_seconds": round(elapsed, 2),
            "raw_matches_members": raw_count == segment.member_count,
        }

    def _data(self, n: int, events: int, *, fresh: bool, progress) -> tuple[Organization, float]:
        """Contacts, companies and events generated in SQL from a fixed seed (md5 of the row number)."""
        from marketing.models import PropertyDefinition

        org = Organization.objects.filter(slug=self.org_slug).first()
        if org and not fresh:
            with org_context(org):
                have = (Contact.objects.filter(org=org).count(), Event.objects.filter(org=org, source="bench").count())
                if have == (n, events):
                    # Only the generated data stays: a previous run's segment events go.
                    Event.objects.filter(org=org).exclude(source="bench")._raw_delete(connection.alias)
                    return org, 0.0
        advance = progress("generating contacts and events", 3)
        start = time.perf_counter()
        org = self.org_fresh()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO marketing_company (org_id, name, domain, industry, size, revenue, properties, created_at, "
                "updated_at) SELECT %s, 'Company ' || g, 'c' || g || '.seg.bench', (ARRAY['software', 'retail', "
                "'finance', 'health'])[1 + g %% 4], 10 + g %% 900, NULL, '{}', now(), now() "
                "FROM generate_series(1, 10000) g",
                [org.pk],
            )
            advance(1)
            cursor.execute(
                "INSERT INTO marketing_contact (org_id, email, external_id, phone, first_name, last_name, job_title, "
                "country, time_zone, locale, lifecycle_stage, lead_status, score, properties, company_id, created_at, "
                "updated_at, last_activity_at) "
                "SELECT %s, 'p' || g || '@seg.bench', NULL, '', 'First', 'Last ' || g, '', "
                "(ARRAY['DE', 'FR', 'US', 'GB', 'BR'])[1 + g %% 5], '', '', 'lead', 'new', g %% 1000, "
                "jsonb_build_object('plan', (ARRAY['free', 'pro', 'enterprise'])[1 + (g * 7) %% 3], "
                "'seats', g %% 500), (SELECT min(id) FROM marketing_company WHERE org_id = %s) + g %% 10000, "
                "now() - (g %% 700) * interval '1 day', now(), now() - (g %% 60) * interval '1 day' "
                "FROM generate_series(1, %s) g",
                [org.pk, org.pk, n],
            )
            advance(1)
            cursor.execute(
                "INSERT INTO marketing_event (org_id, contact_id, type, properties, occurred_at, received_at, source, "
                "message_id) SELECT %s, first.id + (h %% %s), "
                "(ARRAY['page_view', 'page_view', 'page_view', 'email_opened', 'email_clicked'])[1 + (h / 7) %% 5], "
                "jsonb_build_object('path', (ARRAY['/', '/pricing', '/blog', '/docs'])[1 + (h / 11) %% 4]), "
                "now() - ((h / 13) %% 90) * interval '1 day' - (h %% 86400) * interval '1 second', now(), 'bench', "
                "'seg-' || g FROM (SELECT min(id) AS id FROM marketing_contact WHERE org_id = %s) first, "
                "LATERAL (SELECT g, ('x' || substr(md5(g::text), 1, 8))::bit(32)::int & 2147483647 AS h "
                "FROM generate_series(1, %s) g) r",
                [org.pk, n, org.pk, events],
            )
            cursor.execute("ANALYZE marketing_contact")
            cursor.execute("ANALYZE marketing_event")
            cursor.execute("ANALYZE marketing_company")
            advance(1)
        with org_context(org):
            for key, kind in (("plan", "enum"), ("seats", "number")):
                PropertyDefinition.objects.get_or_create(org=org, subject="contact", key=key, defaults={"type": kind})
            PropertyDefinition.objects.get_or_create(org=org, subject="event", key="path", defaults={"type": "string"})
        return org, round(time.perf_counter() - start, 1)


# The console scenario lives in its own module; importing it registers it.
from marketing import bench_console  # noqa: E402, F401
