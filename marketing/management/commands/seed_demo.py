"""``python manage.py seed_demo``: the demo org ``acme`` with users, companies and contacts.

Safe to run twice: everything is keyed (usernames, slugs, emails, domains) and generated from a
fixed seed, so a second run finds what the first made and adds nothing. Later apps add their own
demo data through ``demo_seeders``.
"""

import random
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from faker import Faker

from marketing.demo import run_demo_seeders
from marketing.models import (
    Company,
    Contact,
    ContactList,
    LeadStatus,
    LifecycleStage,
    ListMembership,
    Membership,
    Organization,
    PropertyDefinition,
    Role,
    Tag,
    User,
)
from marketing.tenancy import org_context

SEED = 20261129
INDUSTRIES = ["software", "manufacturing", "retail", "healthcare", "finance", "education", "logistics", "media"]
COUNTRIES = [
    ("US", "America/New_York", "en"),
    ("DE", "Europe/Berlin", "de"),
    ("GB", "Europe/London", "en"),
    ("FR", "Europe/Paris", "fr"),
    ("BR", "America/Sao_Paulo", "pt-BR"),
    ("JP", "Asia/Tokyo", "ja"),
    ("IN", "Asia/Kolkata", "en"),
    ("ES", "Europe/Madrid", "es"),
]
JOB_TITLES = [
    "CEO",
    "CTO",
    "VP Marketing",
    "Marketing Manager",
    "Head of Growth",
    "Software Engineer",
    "Sales Director",
    "Operations Manager",
    "Product Manager",
    "Data Analyst",
    "Founder",
    "CFO",
]
TAGS = ["vip", "webinar-2026", "newsletter", "partner", "event-lead", "trial"]
LISTS = [("newsletter", "Newsletter"), ("product-updates", "Product updates"), ("beta-testers", "Beta testers")]
DEMO_SITE_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]  # where runserver serves /t/demo/
USERS = [  # username, first, last, role, superuser
    ("admin", "Ada", "Admin", Role.ADMIN, True),
    ("marketer", "Mara", "Marketer", Role.MARKETER, False),
    ("sales1", "Sam", "Seller", Role.SALES, False),
    ("sales2", "Sally", "Closer", Role.SALES, False),
]


class Command(BaseCommand):
    help = "Creates (or completes) the demo org 'acme' with users, companies and contacts. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=300, help="How many demo contacts (default 300).")
        parser.add_argument("--companies", type=int, default=40, help="How many demo companies (default 40).")
        parser.add_argument(
            "--password", default="demo", help="Password of the demo users (default: demo). Set on every run."
        )
        parser.add_argument("--force", action="store_true", help="Seed even though DEBUG is off.")

    def handle(self, *args, contacts: int, companies: int, password: str, force: bool, **options):
        if not settings.DEBUG and not force:
            raise CommandError("DEBUG is off: this looks like production. Pass --force to seed demo users anyway.")
        fake = Faker(["en_US", "de_DE", "en_GB", "fr_FR", "pt_BR", "es_ES"])
        Faker.seed(SEED)
        rng = random.Random(SEED)
        with transaction.atomic():
            acme, _ = Organization.objects.get_or_create(
                slug="acme",
                defaults={
                    "name": "Acme Inc.",
                    "postal_address": "Acme Inc., 1 Market Street, San Francisco, CA 94105, USA",
                    "default_time_zone": "America/Los_Angeles",
                    "default_country": "US",
                    "from_name": "Acme Marketing",
                    "from_email": "marketing@acme.example",
                },
            )
            # The tracking demo page (/t/demo/) calls the tracking endpoints from the console itself.
            missing = [o for o in DEMO_SITE_ORIGINS if o not in acme.allowed_origins]
            if missing:
                acme.allowed_origins = [*acme.allowed_origins, *missing]
                acme.save(update_fields=["allowed_origins"])
            globex, _ = Organization.objects.get_or_create(
                slug="globex",
                defaults={
                    "name": "Globex GmbH",
                    "postal_address": "Globex GmbH, Hauptstraße 1, 10115 Berlin, Germany",
                    "default_time_zone": "Europe/Berlin",
                    "default_country": "DE",
                    "from_name": "Globex",
                    "from_email": "news@globex.example",
                },
            )
            users = self._users(acme, password)
            with org_context(globex):  # inside its org: row-level security accepts only its rows
                Membership.objects.with_scopes_disabled().get_or_create(
                    org=globex, user=users["admin"], defaults={"role": Role.ADMIN}
                )
            with org_context(acme):
                made = self._contacts(acme, fake, rng, contacts, companies, owners=[users["sales1"], users["sales2"]])
            with org_context(globex):
                made_globex = self._contacts(globex, fake, rng, 25, 5, owners=[])
            run_demo_seeders(org=acme, users=users, stdout=self.stdout)
        self.stdout.write(f"Demo org 'acme': {made} contacts added; 'globex': {made_globex} contacts added.")
        usernames = ", ".join(username for username, *_ in USERS)
        self.stdout.write(f"Users (password: {password}): {usernames}")

    def _users(self, org: Organization, password: str) -> dict[str, User]:
        users = {}
        for username, first, last, role, superuser in USERS:
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@acme.example",
                    "is_superuser": superuser,
                    "is_staff": superuser,
                },
            )
            user.set_password(password)
            user.save(update_fields=["password"])
            with org_context(org):
                Membership.objects.with_scopes_disabled().get_or_create(org=org, user=user, defaults={"role": role})
            users[username] = user
        return users

    def _contacts(self, org, fake, rng, n_contacts: int, n_companies: int, owners: list[User]) -> int:
        """Adds the demo companies and contacts that are missing; returns how many contacts were new."""
        for key, label, kind, options in (
            ("plan", "Plan", "enum", ["free", "starter", "pro", "enterprise"]),
            ("seats", "Seats", "number", []),
        ):
            PropertyDefinition.objects.get_or_create(
                org=org,
                subject=PropertyDefinition.Subject.CONTACT,
                key=key,
                defaults={"label": label, "type": kind, "options": options},
            )
        company_rows = []
        for i in range(n_companies):
            name = fake.unique.company()
            company_rows.append(
                Company(
                    org=org,
                    name=name,
                    domain=f"{org.slug}-demo-{i}.example",
                    industry=rng.choice(INDUSTRIES),
                    size=rng.choice([5, 12, 40, 120, 450, 1200, 5000]),
                    revenue=rng.randrange(100, 50000) * 1000,
                )
            )
        Company.objects.bulk_create(company_rows, ignore_conflicts=True)
        company_list = list(Company.objects.filter(org=org, domain__startswith=f"{org.slug}-demo-"))
        tags = [Tag.objects.get_or_create(org=org, name=name)[0] for name in TAGS]
        lists = [
            ContactList.objects.get_or_create(org=org, slug=slug, defaults={"name": name})[0] for slug, name in LISTS
        ]
        now = timezone.now()
        rows = []
        for i in range(n_contacts):
            country, tz, locale = rng.choice(COUNTRIES)
            first, last = fake.first_name(), fake.last_name()
            company = rng.choice(company_list) if company_list and rng.random() < 0.85 else None
            domain = company.domain if company else rng.choice(["gmail.com", "outlook.com", "proton.me"])
            created = now - timedelta(days=rng.randrange(1, 400), minutes=rng.randrange(0, 1440))
            rows.append(
                Contact(
                    org=org,
                    email=f"{slugify(first)}.{slugify(last)}.{i}@{domain}",
                    first_name=first,
                    last_name=last,
                    company=company,
                    job_title=rng.choice(JOB_TITLES),
                    country=country,
                    time_zone=tz,
                    locale=locale,
                    lifecycle_stage=rng.choices(LifecycleStage.values, weights=[20, 40, 12, 8, 6, 10, 2, 2])[0],
                    lead_status=rng.choice(LeadStatus.values),
                    owner=rng.choice(owners) if owners and rng.random() < 0.6 else None,
                    properties={
                        "plan": rng.choice(["free", "starter", "pro", "enterprise"]),
                        "seats": rng.randrange(1, 200),
                    },
                    created_at=created,
                    last_activity_at=min(now, created + timedelta(days=rng.randrange(0, 30))),
                )
            )
        before = Contact.objects.filter(org=org).count()
        Contact.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        made = Contact.objects.filter(org=org).count() - before
        stored = {c.email: c.pk for c in Contact.objects.filter(org=org, email__in=[r.email for r in rows])}
        through = Contact.tags.through
        through.objects.bulk_create(
            [through(contact_id=stored[r.email], tag_id=rng.choice(tags).pk) for r in rows if rng.random() < 0.4],
            ignore_conflicts=True,
        )
        ListMembership.objects.bulk_create(
            [
                ListMembership(contact_id=stored[r.email], contact_list=rng.choice(lists))
                for r in rows
                if rng.random() < 0.5
            ],
            ignore_conflicts=True,
        )
        return made
