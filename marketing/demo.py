"""The demo-data registry: each app adds its part of ``seed_demo`` with ``@demo_seeder``.

A seeder lives in the app's ``demo`` module, takes ``org`` (the ``acme`` org), ``users`` (by
username) and ``stdout``, and must be idempotent, like ``seed_demo`` itself.
"""

from collections.abc import Callable

from django.utils.module_loading import autodiscover_modules

_seeders: list[Callable] = []


def demo_seeder(func: Callable) -> Callable:
    """Registers ``func`` to run at the end of ``seed_demo``, inside the acme org's context."""
    _seeders.append(func)
    return func


def run_demo_seeders(*, org, users, stdout) -> None:
    """Runs every app's registered demo seeder for ``org``."""
    from marketing.tenancy import org_context

    autodiscover_modules("demo")
    with org_context(org):
        for seeder in _seeders:
            seeder(org=org, users=users, stdout=stdout)


@demo_seeder
def demo_events(*, org, users, stdout) -> None:
    """A few weeks of behaviour for the demo contacts, through the real ingestion path.

    Message ids are derived from the contact and the step, so a second run stores nothing new.
    """
    import random
    from datetime import timedelta

    from django.utils import timezone

    from marketing.ingestion import events_ingest, events_validate
    from marketing.models import Contact

    rng = random.Random(4)
    now = timezone.now()
    paths = ["/", "/pricing", "/product/demo", "/blog/automation-101", "/case-studies/globex"]
    raw = []
    for contact in Contact.objects.filter(org=org, email__isnull=False).order_by("pk")[:200]:
        for step in range(rng.randrange(1, 8)):
            kind = rng.choices(
                ["page_view", "email_opened", "email_clicked", "content_downloaded", "demo_requested"],
                [60, 20, 10, 8, 2],
            )[0]
            properties = {"path": rng.choice(paths)} if kind == "page_view" else {}
            if kind == "content_downloaded":
                properties = {"kind": rng.choice(["whitepaper", "guide", "webinar"])}
            raw.append(
                {
                    "type": kind,
                    "contact_id": contact.pk,
                    "properties": properties,
                    "occurred_at": (now - timedelta(days=rng.randrange(0, 40), minutes=step)).isoformat(),
                    "message_id": f"demo-{contact.email}-{step}",
                }
            )
    stored = 0
    for first in range(0, len(raw), 1000):
        items, errors = events_validate(raw[first : first + 1000])
        results = events_ingest(org=org, items=items, errors=errors, source="demo")
        stored += sum(1 for r in results if r.status == "stored")
    stdout.write(f"Demo events: {stored} stored.")


@demo_seeder
def demo_segments(*, org, users, stdout) -> None:
    """Two dynamic segments to open in the console's rule builder (kept if they exist)."""
    from marketing.models import Segment
    from marketing.segments import segment_save

    examples = {
        "pro-in-germany": (
            "Pro plan in Germany",
            {"and": [{"==": [{"var": "country"}, "DE"]}, {"==": [{"var": "properties.plan"}, "pro"]}]},
        ),
        "engaged-readers": ("Engaged readers", {">=": [{"event_count": ["page_view", None, 30]}, 2]}),
    }
    for slug, (name, rule) in examples.items():
        if not Segment.objects.filter(org=org, slug=slug).exists():
            segment_save(org=org, name=name, slug=slug, rule=rule)
    stdout.write(f"Demo segments: {', '.join(examples)}.")
