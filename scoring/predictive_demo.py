"""Demo history for predictive scoring (part of ``seed_demo``): past contacts with a learnable signal.

``HISTORY`` contacts first seen up to 210 days ago at ``acme-history-N.example`` companies, about a
third of whom became customers. Each has a hidden intent; intent (and, before converting, the
convert's own urgency) makes pricing views, demo requests, email clicks and forms more likely,
senior titles and bigger companies commoner, and conversion likelier — with noise on every
step, so the signal is learnable but not perfect. A customer's purchase is a ``purchase`` event
at its conversion time, followed by some activity afterwards that training must ignore (the
features are taken as of the purchase). Machine opens are mixed in and must count for nothing.

The rows are bulk-inserted as history (not dispatched: they are the past, not news to score or
to hand to sales). Everything is drawn from a fixed seed and keyed — emails, company domains,
event message ids — so a second ``seed_demo`` inserts nothing. ``train_scoring_model --org acme``
then reaches a held-out AUC of about 0.9.
"""

import math
import random
from datetime import timedelta

from marketing.demo import demo_seeder

HISTORY = 600
COMPANIES = 30
SEED = 8
INDUSTRIES = ["software", "manufacturing", "retail", "healthcare", "finance", "education", "logistics", "media"]
COUNTRIES = ["US", "DE", "GB", "FR", "BR", "JP", "IN", "ES"]
SIZES = [5, 12, 40, 120, 450, 1200, 5000]
TITLES = {  # by seniority, lowest first
    0: ["Software Engineer", "Data Analyst", "Marketing Specialist", "Student"],
    1: ["Marketing Manager", "Product Manager", "Operations Manager", "Team Lead"],
    2: ["VP Marketing", "Head of Growth", "Sales Director"],
    3: ["CEO", "CTO", "Founder", "CFO"],
}
PATHS = ["/", "/blog/automation-101", "/blog/lead-scoring", "/docs", "/careers"]


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means here."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _history(rng: random.Random, now) -> tuple[list[dict], list[dict]]:
    """The companies and contacts (each with its events), drawn from ``rng`` only."""
    companies = [
        {
            "domain": f"acme-history-{i}.example",
            "name": f"History Co {i}",
            "industry": rng.choice(INDUSTRIES),
            "size": SIZES[i % len(SIZES)],
        }
        for i in range(COMPANIES)
    ]
    by_size = sorted(companies, key=lambda c: c["size"])
    contacts = []
    for i in range(HISTORY):
        intent = rng.gauss(0, 1)
        converted = rng.random() < 1 / (1 + math.exp(-(2.5 * intent - 1.2)))
        # Bigger companies and senior titles go with intent, loosely.
        company_rank = min(len(by_size) - 1, max(0, int((rng.gauss(intent * 0.9, 0.8) + 2) / 4 * len(by_size))))
        company = by_size[company_rank] if rng.random() < 0.9 else None
        seniority = min(3, max(0, round(rng.gauss(1 + 0.8 * intent, 0.8))))
        # The window that matters: the 90 days before converting, or before now (a quiet spell
        # of up to a month for some who never converted).
        # First seen about as long before that point for both, so a contact's age at its as-of
        # point says nothing by itself (else "young contacts convert" would be the lesson).
        if converted:
            anchor = now - timedelta(days=rng.uniform(2, 110))
        else:
            anchor = now - timedelta(days=rng.choice([0, 0, 0, rng.uniform(0, 30)]))
        first_seen = anchor - timedelta(days=rng.uniform(20, 100))
        drive = math.exp(0.6 * intent) + (1.2 if converted else 0.0)
        mix = [
            ("page_view", {"path": "/pricing"}, 0.8 * drive),
            ("page_view", {"path": "/product/demo"}, 0.3 * drive),
            ("demo_requested", {}, 0.15 * drive),
            ("email_clicked", {}, 0.7 * drive),
            ("form_submitted", {"form": "contact"}, 0.15 * drive),
            ("content_downloaded", {"kind": "whitepaper"}, 0.3 * drive),
            ("page_view", None, 3.0),  # browsing everyone does
            ("email_opened", {}, 2.5),
            ("email_opened_machine", {}, 2.0),  # Apple MPP: says nothing about intent
        ]
        events = []
        for event_type, properties, mean in mix:
            for _ in range(_poisson(rng, mean)):
                at = anchor - timedelta(days=rng.uniform(0.05, 80))
                if at < first_seen:
                    at = first_seen + timedelta(hours=rng.uniform(1, 48))
                props = dict(properties) if properties is not None else {"path": rng.choice(PATHS)}
                events.append((event_type, props, at))
        stage = rng.choice(["subscriber", "lead", "lead", "mql", "sql", "opportunity"])
        if converted:
            stage = "customer"
            events.append(("purchase", {"plan": rng.choice(["starter", "pro", "enterprise"])}, anchor))
            # After buying: onboarding visits and clicks, which must not teach the model anything.
            for _ in range(_poisson(rng, 4)):
                at = anchor + timedelta(days=rng.uniform(0.1, 20))
                events.append((rng.choice(["page_view", "email_clicked"]), {"path": "/docs"}, min(at, now)))
        contacts.append(
            {
                "email": f"history-{i}@{company['domain'] if company else 'example.net'}",
                "first_name": f"Past{i}",
                "last_name": "Visitor",
                "company": company["domain"] if company else None,
                "job_title": rng.choice(TITLES[seniority]),
                "country": rng.choice(COUNTRIES),
                "stage": stage,
                "created_at": first_seen,
                "events": sorted(events, key=lambda e: e[2]),
            }
        )
    return companies, contacts


@demo_seeder
def demo_prediction_history(*, org, users, stdout) -> None:
    """Adds the historical contacts, companies and events that predictive scoring learns from."""
    from django.utils import timezone

    from marketing.models import Company, Contact, Event

    now = timezone.now()
    companies, contacts = _history(random.Random(SEED), now)  # noqa: S311  demo data, not secrets
    Company.objects.bulk_create(
        [
            Company(org=org, name=c["name"], domain=c["domain"], industry=c["industry"], size=c["size"])
            for c in companies
        ],
        ignore_conflicts=True,
    )
    company_ids = dict(Company.objects.filter(org=org, domain__startswith="acme-history-").values_list("domain", "pk"))
    before = Contact.objects.filter(org=org, email__startswith="history-").count()
    Contact.objects.bulk_create(
        [
            Contact(
                org=org,
                email=c["email"],
                first_name=c["first_name"],
                last_name=c["last_name"],
                company_id=company_ids.get(c["company"]),
                job_title=c["job_title"],
                country=c["country"],
                lifecycle_stage=c["stage"],
                created_at=c["created_at"],
                last_activity_at=c["events"][-1][2] if c["events"] else None,
            )
            for c in contacts
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    contact_ids = dict(
        Contact.objects.filter(org=org, email__in=[c["email"] for c in contacts]).values_list("email", "pk")
    )
    rows = [
        Event(
            org=org,
            contact_id=contact_ids[c["email"]],
            type=event_type,
            properties=properties,
            occurred_at=at,
            received_at=at,
            source="history",
            message_id=f"history-{i}-{j}",
        )
        for i, c in enumerate(contacts)
        for j, (event_type, properties, at) in enumerate(c["events"])
    ]
    events_before = Event.objects.filter(org=org, message_id__startswith="history-").count()
    Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    added_contacts = Contact.objects.filter(org=org, email__startswith="history-").count() - before
    added_events = Event.objects.filter(org=org, message_id__startswith="history-").count() - events_before
    stdout.write(
        f"Predictive history: {added_contacts} past contacts and {added_events} events added "
        f"(train with: python manage.py train_scoring_model --org {org.slug})."
    )
