"""Console pages of the scoring app (registered on the console admin site): scoring models with
their rules inline (conditions checked at save, each error on its field), contact scores with the
breakdown that explains them, and the read-only ledger.

Who sees what follows the member's role (``marketing.roles``): admins and marketers edit models,
sales and analysts look, compliance has no scoring pages.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from unfold.admin import StackedInline
from unfold.contrib.filters.admin import AutocompleteSelectFilter
from unfold.widgets import UnfoldAdminTextareaWidget

from marketing.admin import ReadOnlyAdmin, RuleField, TenantAdmin, rule_builder_config
from marketing.conditions import rule_errors
from scoring.models import ContactScore, PredictiveModel, ScoreLedger, ScoringModel, ScoringRule
from scoring.selectors import not_scored_reason, score_breakdown
from scoring.threshold_rows import ThresholdsField, ThresholdsWidget, threshold_messages

THRESHOLD_ACTIONS = {"handoff", "enrol", "notify"}
REPLAY_DAYS = 30  # how far back the console's replay action reaches (the command takes any N)


def threshold_errors(thresholds) -> list[str]:
    """Problems of a model's thresholds: a list, lowest first, of {"name", "score", "actions"}."""
    if not isinstance(thresholds, list):
        return ['Thresholds are a list, e.g. [{"name": "high", "score": 500, "actions": [{"type": "handoff"}]}].']
    errors, previous, names = [], None, set()
    for index, item in enumerate(thresholds):
        where = f"thresholds[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: an object with name and score.")
            continue
        name, score = item.get("name"), item.get("score")
        if not isinstance(name, str) or not name:
            errors.append(f"{where}.name: a name is required.")
        elif name in names:
            errors.append(f"{where}.name: “{name}” is used twice.")
        names.add(name)
        if not isinstance(score, int) or isinstance(score, bool):
            errors.append(f"{where}.score: a whole number is required.")
        elif previous is not None and score <= previous:
            errors.append(f"{where}.score: thresholds go lowest first ({score} after {previous}).")
        else:
            previous = score
        for position, spec in enumerate(item.get("actions") or []):
            kind = spec.get("type") if isinstance(spec, dict) else None
            if kind not in THRESHOLD_ACTIONS:
                errors.append(f"{where}.actions[{position}].type: one of {', '.join(sorted(THRESHOLD_ACTIONS))}.")
            elif kind == "enrol" and not spec.get("workflow"):
                errors.append(f"{where}.actions[{position}].workflow: the workflow's slug is required.")
    return errors


def threshold_choices(org) -> dict[str, list[tuple[str, str]]]:
    """What a threshold row's selects offer: the org's workflows (to enrol in), Slack templates and
    Slack destinations (to notify), by slug."""
    if org is None:
        return {}
    from channels_app.models import Channel, Destination, MessageTemplate
    from workflows.models import Workflow

    return {
        "workflow": list(Workflow.objects.filter(org=org).order_by("name").values_list("slug", "name")),
        "template": list(
            MessageTemplate.objects.filter(org=org, channel=Channel.SLACK).order_by("name").values_list("slug", "name")
        ),
        "destination": list(
            Destination.objects.filter(org=org, channel=Channel.SLACK).order_by("name").values_list("slug", "name")
        ),
    }


class ScoringModelForm(forms.ModelForm):
    org = None  # set by the admin: the threshold rows offer its workflows, templates and destinations

    thresholds = ThresholdsField(
        required=False,
        widget=ThresholdsWidget,
        help_text="One row per band, lowest first (rows are put in order of their minimum score when saved). "
        "A contact whose score reaches a row's minimum score is in that band; crossing it upward can hand the "
        "contact to sales, enrol them in a workflow and post a Slack notification. Leave a row empty to remove it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["thresholds"].widget.choices = threshold_choices(self.org)
        if self.initial.get("thresholds") is None:
            self.initial["thresholds"] = []

    class Meta:
        model = ScoringModel
        fields = (
            "name",
            "slug",
            "is_default",
            "active",
            "base",
            "minimum",
            "maximum",
            "decay_factor",
            "decay_window_days",
            "thresholds",
        )

    def clean(self):
        cleaned = super().clean()
        if "thresholds" in cleaned:
            errors = threshold_errors(cleaned["thresholds"] if cleaned["thresholds"] is not None else [])
            if errors:
                self.add_error("thresholds", threshold_messages(errors))
            elif cleaned["thresholds"] is None:
                cleaned["thresholds"] = []
        low, high, base = cleaned.get("minimum"), cleaned.get("maximum"), cleaned.get("base")
        if low is not None and high is not None and low >= high:
            self.add_error("maximum", "The maximum must be above the minimum.")
        elif base is not None and low is not None and high is not None and not low <= base <= high:
            self.add_error("base", f"The base must lie between the minimum ({low}) and the maximum ({high}).")
        factor = cleaned.get("decay_factor")
        if factor is not None and not 0 <= factor <= 1:
            self.add_error("decay_factor", "A factor between 0 (forget everything) and 1 (no decay).")
        return cleaned


class ScoringRuleForm(forms.ModelForm):
    """A rule's condition is checked as it will run: over the contact, with ``event.*`` for
    behaviour rules; the kind decides which fields apply."""

    org = None  # set by the formset or the admin: custom properties are looked up in it

    condition = RuleField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="The builder above writes this rule (JsonLogic); change it here only for a rule the builder "
        "cannot show. Empty: the rule always applies.",
    )

    class Meta:
        model = ScoringRule
        fields = (
            "name",
            "kind",
            "event_type",
            "condition",
            "points",
            "cap_count",
            "cap_period",
            "creates_handoff",
            "active",
        )
        labels = {"cap_count": "At most", "cap_period": "times per", "creates_handoff": "Hands the contact to sales"}
        help_texts = {
            "points": "Added to the score each time the rule matches; a negative number takes points off.",
            "cap_count": "Behaviour rules: how many times the rule may score for one contact in the period "
            "(e.g. 3 times per day). Empty: no limit.",
            "cap_period": "The period the limit counts in.",
            "event_type": "Behaviour rules: the event that is scored, e.g. page_view or email_clicked.",
            "creates_handoff": "Behaviour rules: a matching event also hands the contact to sales.",
        }

    def clean(self):
        cleaned = super().clean()
        kind, event_type = cleaned.get("kind"), cleaned.get("event_type")
        if kind == ScoringRule.Kind.BEHAVIOUR and not event_type:
            self.add_error("event_type", "A behaviour rule needs the event type it scores.")
        if kind == ScoringRule.Kind.FIT:
            if event_type:
                self.add_error("event_type", "A fit rule scores the contact, not an event: leave it empty.")
            if cleaned.get("cap_count") or cleaned.get("cap_period"):
                self.add_error("cap_count", "A fit rule counts once; caps apply to behaviour rules.")
            if cleaned.get("creates_handoff"):
                self.add_error("creates_handoff", "Only a behaviour rule (an event) can hand a contact off.")
        if bool(cleaned.get("cap_count")) != bool(cleaned.get("cap_period")):
            self.add_error("cap_period", "A cap needs both a count and a period.")
        condition = cleaned.get("condition")
        if condition not in (None, {}, True):
            errors = rule_errors(condition, "contact", org=self.org)
            if kind == ScoringRule.Kind.FIT and '"event.' in json.dumps(condition):
                errors.append("A fit rule has no event: it may not read event.*.")
            if errors:
                self.add_error("condition", errors)
        return cleaned


class ScoringRuleFormSet(forms.BaseInlineFormSet):
    """New rules belong to the model's org, and are checked against its properties."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.org = self.instance.org if self.instance.org_id else None
        if form.instance.org_id is None and self.instance.org_id is not None:
            form.instance.org_id = self.instance.org_id
        return form

    @property
    def empty_form(self):
        form = super().empty_form
        form.org = self.instance.org if self.instance.org_id else None
        return form


# One field a line: the theme squeezes fields that share a line into narrow columns.
RULE_LAYOUT = ScoringRuleForm.Meta.fields


class ScoringRuleInline(StackedInline):
    """The model's rules, one block each: the condition needs the width of the page."""

    model = ScoringRule
    form = ScoringRuleForm
    formset = ScoringRuleFormSet
    extra = 0
    fields = RULE_LAYOUT
    show_change_link = True


def rule_builder_context(request) -> dict:
    """The rule builder's config for a page of scoring rule conditions (contact and event fields)."""
    return {"rule_builder": {**rule_builder_config(org=request.org), "mode": "conditions"}}


@admin.register(ScoringModel)
class ScoringModelAdmin(TenantAdmin):
    """Scoring models: range, decay, thresholds, and their rules inline."""

    form = ScoringModelForm
    list_display = ("name", "slug", "is_default", "active", "base", "maximum", "decay_factor", "rule_count")
    list_filter = ("active", "is_default")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (ScoringRuleInline,)
    actions = ("recompute", "replay_and_recompute")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        form_class.org = request.org
        return form_class

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if self.has_add_permission(request) if obj is None else self.has_change_permission(request, obj):
            context.update(rule_builder_context(request))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(rules_total=Count("rules"))

    @admin.display(description="rules", ordering="rules_total")
    def rule_count(self, obj) -> int:
        return obj.rules_total

    @admin.action(
        description="Recompute the scores of the selected models (after a rule changed)", permissions=["change"]
    )
    def recompute(self, request, queryset):
        self._queue(request, queryset, replay_days=0, done="Recomputation")

    @admin.action(
        description=f"Score the last {REPLAY_DAYS} days of events with new rules, then recompute (after adding a rule)",
        permissions=["change"],
    )
    def replay_and_recompute(self, request, queryset):
        self._queue(request, queryset, replay_days=REPLAY_DAYS, done=f"Replay of the last {REPLAY_DAYS} days")

    def _queue(self, request, queryset, *, replay_days: int, done: str) -> None:
        """One ``scores_recompute_model`` task per selected model, sent once the request commits."""
        from marketing.celery import enqueue_on_commit
        from scoring.tasks import scores_recompute_model

        for model in queryset:
            enqueue_on_commit(scores_recompute_model, model_id=model.pk, replay_days=replay_days)
        self.message_user(request, f"{done} queued for {queryset.count()} model(s).", messages.SUCCESS)

    def save_formset(self, request, form, formset, change):
        for rule_form in formset.forms:
            if rule_form.instance.org_id is None:
                rule_form.instance.org_id = form.instance.org_id
        super().save_formset(request, form, formset, change)


class RuleKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return ScoringRule.Kind.choices

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


@admin.register(ScoringRule)
class ScoringRuleAdmin(TenantAdmin):
    """Every model's rules in one list, to search and filter across models."""

    form = ScoringRuleForm
    list_display = ("name", "model", "kind", "event_type", "points", "cap", "creates_handoff", "active")
    list_filter = ("model", RuleKindFilter, "event_type", "creates_handoff", "active")
    search_fields = ("name", "event_type")
    list_select_related = ("model",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        form_class.org = request.org
        return form_class

    def get_fields(self, request, obj=None):
        return ["model", *RULE_LAYOUT]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if self.has_add_permission(request) if obj is None else self.has_change_permission(request, obj):
            context.update(rule_builder_context(request))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "model":
            kwargs["queryset"] = ScoringModel.objects.filter(org=request.org)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="cap")
    def cap(self, obj: ScoringRule) -> str:
        return f"{obj.cap_count} a {obj.cap_period}" if obj.cap_count and obj.cap_period else "—"


@admin.register(ContactScore)
class ContactScoreAdmin(ReadOnlyAdmin):
    """Each contact's score per model; the page explains it (the breakdown and recent changes)."""

    list_display = ("contact", "model", "score", "band", "probability", "updated_at")
    list_filter = ("model", "band")
    search_fields = ("contact__email", "contact__first_name", "contact__last_name")
    list_select_related = ("contact", "model")
    show_full_result_count = False
    ordering = ("-score", "pk")
    fields = ("contact", "model", "score", "band", "probability", "predicted_at", "updated_at", "breakdown")
    readonly_fields = fields

    @admin.display(description="breakdown")
    def breakdown(self, obj: ContactScore) -> str:
        data = score_breakdown(contact=obj.contact, model=obj.model)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td class='num'>{}</td><td class='num'>{}</td></tr>",
            ((item["rule"], item["reason"], f"{item['points']:+d}", item["count"]) for item in data["breakdown"]),
        )
        recent = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td class='num'>{}</td><td class='num'>{}</td><td>{}</td></tr>",
            (
                (
                    row["at"],
                    row["rule"] or row["reason"],
                    f"{row['delta']:+d}",
                    row["score_after"],
                    f"{row['event']['type']} at {row['event']['occurred_at']}" if row["event"] else row["note"],
                )
                for row in data["recent"]
            ),
        )
        factors = ""
        if data["probability"] is not None:
            factors = format_html(
                "<p>Conversion probability: <strong>{}%</strong> ({})</p>",
                round(data["probability"] * 100, 1),
                ", ".join(str(f.get("feature")) for f in data["factors"][:5] if isinstance(f, dict)) or "no factors",
            )
        reason = not_scored_reason(org=obj.org, contact=obj.contact)
        return format_html(
            "{}<p>Base <strong>{}</strong> + the rows below = <strong>{}</strong></p>"
            "<table><thead><tr><th>Rule or reason</th><th>Reason</th><th>Points</th><th>Rows</th></tr></thead>"
            "<tbody>{}</tbody></table>{}"
            "<h3>Recent changes</h3><table><thead><tr><th>At</th><th>Rule or reason</th><th>Delta</th>"
            "<th>Score</th><th>Event</th></tr></thead><tbody>{}</tbody></table>",
            format_html("<p class='not-scored'><strong>{}</strong></p>", reason) if reason else "",
            data["base"],
            data["score"],
            rows,
            factors,
            recent,
        )


@admin.register(ScoreLedger)
class ScoreLedgerAdmin(ReadOnlyAdmin):
    """Every change of every score, and why: append-only, never edited here."""

    list_display = ("at", "contact", "model", "delta", "score_after", "reason", "rule", "event", "note")
    list_filter = ("reason", "model", ("rule", AutocompleteSelectFilter), "at")
    list_filter_submit = True
    search_fields = ("contact__email", "note")
    list_select_related = ("contact", "model", "rule", "event")
    show_full_result_count = False
    date_hierarchy = None


@admin.register(PredictiveModel)
class PredictiveModelAdmin(ReadOnlyAdmin):
    """Trained conversion models (``train_scoring_model`` makes them), with their held-out
    metrics and feature importances. Deactivating every version falls back to rules only."""

    list_display = ("version", "algorithm", "active", "trained_at", "auc", "precision", "recall", "rows")
    list_filter = ("active", "algorithm")
    fields = ("version", "algorithm", "active", "trained_at", "trained_by", "metrics_table", "importance_table")
    readonly_fields = fields
    actions = ["deactivate"]

    def _metric(self, obj: PredictiveModel, name: str):
        value = (obj.metrics or {}).get(name)
        return round(value, 3) if isinstance(value, float) else value

    @admin.display(description="AUC")
    def auc(self, obj):
        return self._metric(obj, "auc")

    @admin.display(description="precision")
    def precision(self, obj):
        return self._metric(obj, "precision")

    @admin.display(description="recall")
    def recall(self, obj):
        return self._metric(obj, "recall")

    @admin.display(description="rows (held out)")
    def rows(self, obj):
        return self._metric(obj, "test_rows")

    @admin.display(description="held-out metrics")
    def metrics_table(self, obj: PredictiveModel) -> str:
        plain = {k: v for k, v in (obj.metrics or {}).items() if not isinstance(v, dict | list)}
        rows = format_html_join("", "<tr><td>{}</td><td class='num'>{}</td></tr>", sorted(plain.items()))
        return format_html("<table><tbody>{}</tbody></table>", rows)

    @admin.display(description="feature importances")
    def importance_table(self, obj: PredictiveModel) -> str:
        items = [i for i in (obj.importances or []) if isinstance(i, dict)][:25]
        rows = format_html_join(
            "", "<tr><td>{}</td><td class='num'>{}</td></tr>", ((i.get("feature"), i.get("importance")) for i in items)
        )
        return format_html(
            "<table><thead><tr><th>Feature</th><th>Importance</th></tr></thead><tbody>{}</tbody></table>", rows
        )

    @admin.action(description="Deactivate (score with rules only)", permissions=["change_active"])
    def deactivate(self, request, queryset):
        count = queryset.update(active=False)
        self.message_user(request, f"{count} model version(s) deactivated; scoring goes on with rules.")

    def has_change_active_permission(self, request) -> bool:
        return request.user.has_perm("scoring.change_predictivemodel")


from scoring import handoffs_admin  # noqa: F401, E402  the sales queue's pages
