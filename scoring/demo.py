"""Demo data of scoring (part of ``seed_demo``): the default "Lead score" model of issue 8 with its
behavioural and fit rules, then the demo's stored events scored through it.

Rules are matched to the event types the product records: ``page_view`` (``properties.path``,
from the tracking API's page calls), ``email_opened`` / ``email_clicked`` / ``unsubscribed``
(channels' tracking; a machine's open or click is ``email_opened_machine`` /
``email_clicked_machine``, which no rule here names, so it scores nothing), ``email_replied``
(sent by an integration), ``form_submitted`` (``properties.form``, from hosted forms),
``content_downloaded`` (``properties.kind``) and ``demo_requested`` (its rule hands the contact
to sales).
"""

from marketing.demo import demo_seeder

MODEL = {
    "slug": "lead-score",
    "name": "Lead score",
    "is_default": True,
    "base": 100,
    "minimum": 0,
    "maximum": 1000,
    "decay_factor": 0.95,
    "decay_window_days": 30,
    "thresholds": [
        {"name": "low", "score": 100},
        {"name": "medium", "score": 300},
        {"name": "high", "score": 500, "actions": [{"type": "handoff"}]},
    ],
}

PATH = {"var": ["event.properties.path", ""]}


def _path_is(path: str) -> dict:
    return {"==": [PATH, path]}


def _path_has(fragment: str) -> dict:
    return {"in": [fragment, PATH]}


def _property_is(key: str, value: str) -> dict:
    return {"==": [{"var": [f"event.properties.{key}", ""]}, value]}


def _title_has(*words: str) -> dict:
    return {"or": [{"in": [word, {"var": ["job_title", ""]}]} for word in words]}


# (name, event type, condition, points, cap (count, period) or None, creates handoff)
BEHAVIOUR = [
    ("Page view: homepage", "page_view", _path_is("/"), 5, (3, "day"), False),
    ("Page view: pricing", "page_view", _path_has("/pricing"), 15, (3, "day"), False),
    ("Page view: product demo", "page_view", _path_has("/product/demo"), 25, (2, "day"), False),
    ("Page view: case studies", "page_view", _path_has("/case-studies"), 10, (3, "day"), False),
    ("Page view: blog", "page_view", _path_has("/blog"), 3, (5, "day"), False),
    ("Email opened", "email_opened", None, 2, (5, "day"), False),
    ("Email clicked", "email_clicked", None, 10, (5, "day"), False),
    ("Email replied", "email_replied", None, 25, None, False),
    ("Unsubscribed", "unsubscribed", None, -50, None, False),
    ("Form: newsletter", "form_submitted", _property_is("form", "newsletter"), 20, None, False),
    ("Form: contact", "form_submitted", _property_is("form", "contact"), 50, None, False),
    ("Form: demo request", "form_submitted", _property_is("form", "demo"), 100, None, True),
    ("Form: trial signup", "form_submitted", _property_is("form", "trial"), 200, None, False),
    ("Demo requested", "demo_requested", None, 100, None, True),
    ("Download: whitepaper", "content_downloaded", _property_is("kind", "whitepaper"), 30, None, False),
    ("Download: guide", "content_downloaded", _property_is("kind", "guide"), 20, None, False),
    ("Download: template", "content_downloaded", _property_is("kind", "template"), 15, None, False),
    ("Download: webinar", "content_downloaded", _property_is("kind", "webinar"), 40, None, False),
]

TARGET_COUNTRIES = ["US", "GB", "DE", "FR", "NL", "CA"]
FIT = [
    ("Fit: senior title (VP, Head, Director)", _title_has("VP", "Head", "Director"), 30),
    ("Fit: company of 50 or more", {">=": [{"var": ["company.size", 0]}, 50]}, 20),
    ("Fit: software industry", {"==": [{"var": ["company.industry", ""]}, "software"]}, 15),
    ("Fit: target country", {"in": [{"var": ["country", ""]}, TARGET_COUNTRIES]}, 10),
]


def lead_score_model(*, org):
    """Creates (once) the default "Lead score" model and its rules; rules already there (by name)
    are left as the operator edited them. Returns the model."""
    from scoring.models import ScoringModel, ScoringRule

    fields = {k: v for k, v in MODEL.items() if k != "slug"}
    if ScoringModel.objects.filter(org=org, is_default=True).exclude(slug=MODEL["slug"]).exists():
        fields["is_default"] = False  # the org chose another default; keep it
    model, _ = ScoringModel.objects.get_or_create(org=org, slug=MODEL["slug"], defaults=fields)
    existing = set(ScoringRule.objects.filter(org=org, model=model).values_list("name", flat=True))
    rules = [
        ScoringRule(
            org=org,
            model=model,
            name=name,
            kind=ScoringRule.Kind.BEHAVIOUR,
            event_type=event_type,
            condition=condition,
            points=points,
            cap_count=cap[0] if cap else None,
            cap_period=cap[1] if cap else "",
            creates_handoff=handoff,
        )
        for name, event_type, condition, points, cap, handoff in BEHAVIOUR
        if name not in existing
    ] + [
        ScoringRule(org=org, model=model, name=name, kind=ScoringRule.Kind.FIT, condition=condition, points=points)
        for name, condition, points in FIT
        if name not in existing
    ]
    ScoringRule.objects.bulk_create(rules)
    return model


@demo_seeder
def demo_scoring(*, org, users, stdout) -> None:
    """The default model and its rules, then every stored event of the org scored through them
    (idempotent per (event, rule): a second run adds nothing)."""
    from marketing.models import Event
    from scoring.rules import events_score

    model = lead_score_model(org=org)
    changed: set[int] = set()
    # The predictive demo's history (source "history", past customers) is training data, not
    # activity to score: scoring it would hand long-converted contacts to sales.
    events = Event.objects.filter(org=org).exclude(source="history").order_by("contact_id", "occurred_at", "id")
    batch = []
    for event in events.iterator(chunk_size=1000):
        batch.append(event)
        if len(batch) >= 1000:
            changed |= events_score(org=org, events=batch)
            batch = []
    changed |= events_score(org=org, events=batch)
    stdout.write(f"Scoring model '{model.name}': {model.rules.count()} rules, {len(changed)} contacts scored.")


from scoring import predictive_demo  # noqa: F401, E402  its seeder runs after this one
