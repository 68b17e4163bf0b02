"""Scoring: models and their rules, each contact's score per model with the ledger that explains
it (docs/scoring.md), trained predictive models, and the sales handoff queue.

The arithmetic: ``ContactScore.score = ScoringModel.base + Σ ScoreLedger.delta`` for the contact
and model, always. A rule's points, a fit rule, decay, the clamp to ``minimum``/``maximum``, a
manual adjustment and a recomputation are all ledger rows, so the breakdown adds up.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from marketing.change_history import history_tracked
from marketing.models import Contact, Event, TenantModel


@history_tracked()
class ScoringModel(TenantModel):
    """A way of scoring contacts; an org may have several, one of them the default (whose score
    is mirrored on ``Contact.score``).

    ``thresholds``: named bands, lowest first, and what crossing one upward fires, e.g.
    ``[{"name": "low", "score": 100}, {"name": "medium", "score": 300},
    {"name": "high", "score": 500, "actions": [{"type": "handoff"},
    {"type": "enrol", "workflow": "sales-ready"}, {"type": "notify", "destination": "sales"}]}]``.
    Crossing a threshold either way records a ``score_threshold_crossed`` event.
    """

    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    is_default = models.BooleanField(default=False, help_text="Mirrored on Contact.score; one per organisation.")
    base = models.IntegerField(default=100, help_text="Every contact's score before any rule.")
    minimum = models.IntegerField(default=0)
    maximum = models.IntegerField(default=1000)
    decay_factor = models.FloatField(
        default=0.95, help_text="What (score − base) is multiplied by per window without activity."
    )
    decay_window_days = models.PositiveIntegerField(default=30)
    thresholds = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["org", "slug"], name="scoringmodel_unique_slug"),
            models.UniqueConstraint(fields=["org"], condition=Q(is_default=True), name="scoringmodel_one_default"),
        ]

    def __str__(self) -> str:
        return self.name


@history_tracked()
class ScoringRule(TenantModel):
    """Points for what a contact does (``behaviour``: an event type and a filter rule over the
    contact and the event) or is (``fit``: a rule over the contact and company, counted once).

    ``cap_count`` per ``cap_period``: a behaviour rule counts at most that many times per contact
    in the period (e.g. pricing page views at most 3 a day). ``creates_handoff``: an event that
    matches also hands the contact to sales (the default model's ``demo_requested`` rule)."""

    class Kind(models.TextChoices):
        BEHAVIOUR = "behaviour", "Behaviour (an event)"
        FIT = "fit", "Fit (contact and company properties)"

    class Period(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BEHAVIOUR)
    event_type = models.CharField(max_length=100, blank=True, help_text="Behaviour rules: the event's type.")
    condition = models.JSONField(
        null=True, blank=True, help_text="A JsonLogic rule over the contact (and the event); empty: always."
    )
    points = models.IntegerField(help_text="Negative to take points off.")
    cap_count = models.PositiveIntegerField(null=True, blank=True)
    cap_period = models.CharField(max_length=5, choices=Period.choices, blank=True)
    creates_handoff = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "kind", "event_type", "name"]
        indexes = [models.Index(fields=["model", "kind", "event_type"], name="scoringrule_lookup")]

    def __str__(self) -> str:
        return f"{self.name} ({self.points:+d})"


class ContactScore(TenantModel):
    """A contact's current score in one model, the band it is in, and the predictive model's
    conversion probability with its top factors (null when no model has predicted)."""

    # Decay rewrites a million of these rows in one statement: every index is paid on every row,
    # so the foreign keys lean on the composite indexes below instead of one index each.
    org = models.ForeignKey("marketing.Organization", on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="scores", db_index=False)
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="scores", db_index=False)
    score = models.IntegerField()
    band = models.CharField(max_length=50, blank=True, help_text="The highest threshold reached.")
    probability = models.FloatField(null=True, blank=True)
    factors = models.JSONField(default=list, blank=True, help_text='[{"feature", "value", "effect"}]')
    predicted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Decay's "once per window" marker, on the row decay rewrites anyway: reading it costs nothing,
    # where finding each contact's newest decay row meant scanning the whole ledger every day.
    decayed_at = models.DateTimeField(null=True, blank=True, help_text="When the score last decayed.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "model"], name="contactscore_unique")]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.score} in {self.model_id}"


def _ledger_key(to, on_delete) -> models.ForeignKey:
    """A ledger row's reference: neither indexed nor checked by the database (see ScoreLedger);
    nullable where a deletion sets it to NULL."""
    nullable = on_delete is models.SET_NULL
    return models.ForeignKey(
        to,
        on_delete=on_delete,
        null=nullable,
        blank=nullable,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )


class ScoreLedger(TenantModel):
    """One change of one contact's score in one model, and why. Append-only.

    Unique per (event, rule): a redelivered event scores once."""

    class Reason(models.TextChoices):
        RULE = "rule", "Behaviour rule"
        FIT = "fit", "Fit rule"
        DECAY = "decay", "Decay"
        CAP = "cap", "Clamped to the model's range"
        MANUAL = "manual", "Adjusted by hand or by a workflow"
        RECOMPUTE = "recompute", "Recomputed after a rule change"

    # Decay appends a row per decayed contact (a million in one statement): a decay row is
    # indexed twice (the primary key and ``scoreledger_contact``), not once per foreign key.
    # Deleting an org or a scoring model, or a user who adjusted scores, scans the table: rare.
    #
    # Nor does PostgreSQL check the foreign keys row by row (``db_constraint=False``): for each
    # inserted row the check looks up, and share-locks, the contact, model and org it names,
    # which cost a 1,000,000-contact decay 12 s at commit, more than writing the rows. Only
    # scoring's own code writes the ledger, from rows it has just loaded; every deletion in the
    # product goes through the ORM, whose ``on_delete`` cascades (and SET_NULLs) keep it whole.
    org = _ledger_key("marketing.Organization", models.CASCADE)
    contact = _ledger_key(Contact, models.CASCADE)
    model = _ledger_key(ScoringModel, models.CASCADE)
    delta = models.IntegerField()
    score_after = models.IntegerField()
    reason = models.CharField(max_length=10, choices=Reason.choices)
    rule = _ledger_key(ScoringRule, models.SET_NULL)
    event = _ledger_key(Event, models.SET_NULL)
    note = models.CharField(max_length=300, blank=True)
    actor = _ledger_key(settings.AUTH_USER_MODEL, models.SET_NULL)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "rule"],
                condition=Q(event__isnull=False, rule__isnull=False),
                name="scoreledger_once_per_event_rule",
            )
        ]
        indexes = [
            models.Index(fields=["contact", "model", "-at"], name="scoreledger_contact"),
            # Caps count a rule's rows per contact; a rule's deletion nulls its rows through it.
            models.Index(
                fields=["rule", "contact", "at"], condition=Q(rule__isnull=False), name="scoreledger_rule_caps"
            ),
            # An event's deletion (retention) nulls its rows through it.
            models.Index(fields=["event"], condition=Q(event__isnull=False), name="scoreledger_event"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} → {self.score_after} ({self.reason})"


class PredictiveModel(TenantModel):
    """A trained conversion model (scikit-learn, stored with skops), its held-out metrics and
    feature importances. The newest ``active`` one predicts; none means rules only."""

    version = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=100)
    artifact = models.BinaryField(help_text="The fitted estimator, serialised with skops.")
    feature_names = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, help_text="auc, precision, recall, f1, base_rate, rows, positives")
    importances = models.JSONField(default=list, help_text='[{"feature", "importance"}], highest first')
    active = models.BooleanField(default=True)
    trained_at = models.DateTimeField(default=timezone.now)
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["org", "version"], name="predictivemodel_unique_version")]

    def __str__(self) -> str:
        return f"v{self.version} ({self.algorithm}, AUC {self.metrics.get('auc', '?')})"


@history_tracked(exclude=("rr_cursor",))
class HandoffPolicy(TenantModel):
    """How an org hands contacts to sales: when, to whom, and how fast they must answer.

    ``territories``: ``{"DE": [user ids], "FR": [...], "*": [...]}`` by the contact's country.
    ``skills``: ``{"analytics": [user ids], ...}`` by the value of the contact property
    ``skill_property`` (e.g. ``product_interest``). Round-robin and workload pick among ``reps``."""

    class Strategy(models.TextChoices):
        ROUND_ROBIN = "round_robin", "Round-robin"
        TERRITORY = "territory", "Territory (country → reps)"
        SKILL = "skill", "Skill (product interest → reps)"
        WORKLOAD = "workload", "Workload (fewest open)"

    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    reps = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    territories = models.JSONField(default=dict, blank=True)
    skills = models.JSONField(default=dict, blank=True)
    skill_property = models.CharField(max_length=100, blank=True, default="product_interest")
    sla_hours = models.PositiveIntegerField(default=24)
    nurture_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hand off contacts nurtured this long (in a lead stage); empty: never."
    )
    notify_destination = models.SlugField(
        max_length=100, blank=True, help_text="A Slack destination told of each new handoff (besides the rep's email)."
    )
    rr_cursor = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "handoff policies"
        constraints = [models.UniqueConstraint(fields=["org"], name="handoffpolicy_one_per_org")]

    def __str__(self) -> str:
        return f"{self.get_strategy_display()}, SLA {self.sla_hours} h"


class Handoff(TenantModel):
    """A contact handed to sales: assigned to a rep, with an SLA to accept by. A rep accepts,
    rejects (back to nurture, with a reason) or marks it converted. One open handoff per contact."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected (back to nurture)"
        CONVERTED = "converted", "Converted"

    class Reason(models.TextChoices):
        THRESHOLD = "threshold", "Crossed the handoff threshold"
        DEMO_REQUEST = "demo_request", "Asked for a demo"
        NURTURED = "nurtured", "Nurtured long enough"
        WORKFLOW = "workflow", "A workflow step"
        MANUAL = "manual", "By hand"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="handoffs")
    model = models.ForeignKey(ScoringModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=15, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="handoffs"
    )
    score = models.IntegerField(help_text="The contact's score when handed off.")
    sla_due_at = models.DateTimeField("SLA due")
    rejection_reason = models.TextField(blank=True)
    source_event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["sla_due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact"], condition=Q(status__in=["open", "accepted"]), name="handoff_one_open_per_contact"
            )
        ]
        indexes = [models.Index(fields=["org", "status", "assignee"], name="handoff_queue")]
        permissions = [("view_all_handoffs", "Can see every rep's handoffs (sales manager)")]

    def __str__(self) -> str:
        # The console's header names a handoff by this: whose lead it is (one read of the contact).
        contact = self.contact
        name = f"{contact.first_name} {contact.last_name}".strip() or contact.email or f"#{contact.pk}"
        return f"Handoff: {name} ({self.get_status_display().lower()})"
