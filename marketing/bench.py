"""Benchmark scenarios for ``python manage.py bench``, and the registry other apps add to.

A scenario is a small class registered with ``@scenario``; it lives in its app's ``bench``
module, declares its sizes as command-line options, and yields flat dicts of figures, each key
named with its unit (``contacts_per_s``, ``p95_ms``). The command adds ``scenario``, ``db`` and
``cores`` and prints one JSON object per line. Data is generated from a fixed seed, so two runs
measure the same work; where a raw ceiling exists, the scenario measures it in the same run and
reports the ratio (``vs_raw``).
"""

import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from marketing.models import Contact, ListMembership, Membership, Organization, Role, User
from marketing.tenancy import org_context

_scenarios: dict[str, type["Scenario"]] = {}


class Scenario:
    """One benchmark. Subclasses set ``name`` and ``help`` and implement ``run``."""

    name = ""
    help = ""

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

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=100_000, help="How many contacts (default 100000).")
        parser.add_argument("--repeat", type=int, default=20, help="Timed repetitions per query (default 20).")
        parser.add_argument("--keep", action="store_true", help="Keep the bench org's data afterwards.")

    def run(self, *, options: dict, progress) -> Iterator[dict]:
        n, repeat = options["contacts"], options["repeat"]
        org = self._fresh_org()
        user, _ = User.objects.get_or_create(username="bench-admin", defaults={"email": "bench@localhost"})
        Membership.objects.with_scopes_disabled().get_or_create(org=org, user=user, defaults={"role": Role.ADMIN})
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
                self._delete_org_data(org)

    def _fresh_org(self):
        org = Organization.objects.filter(slug=self.org_slug).first()
        if org:
            self._delete_org_data(org)
            return org
        return Organization.objects.create(slug=self.org_slug, name="Bench (contacts)")

    def _delete_org_data(self, org) -> None:
        """Set-based delete of the bench org's contacts (the ORM's cascade would walk 100k rows)."""
        with transaction.atomic():
            contacts = Contact.objects.with_scopes_disabled().filter(org=org)
            Contact.tags.through.objects.filter(contact__in=contacts)._raw_delete(connection.alias)
            ListMembership.objects.filter(contact__in=contacts)._raw_delete(connection.alias)
            contacts._raw_delete(connection.alias)

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
        if connection.vendor != "postgresql":
            statement = "ANALYZE"
        elif connection.in_atomic_block:  # VACUUM cannot run in a transaction (the test suite's)
            statement = "ANALYZE marketing_contact"
        else:
            statement = "VACUUM ANALYZE marketing_contact"
        with connection.cursor() as cursor:
            cursor.execute(statement)

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
