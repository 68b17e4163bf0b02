"""The template library: ten ready workflows an operator starts from (docs/workflows.md,
"Templates"), installed per org as ``WorkflowTemplate`` rows by ``library_install``.

Each template is a definition in the format of docs/workflows.md. Some use actions that other apps
register (``send_email``, ``send_sms``, ``notify_slack``, ``post_social``, ``handoff_to_sales``,
``adjust_score``): a template is stored as it is, and its workflow is validated when it is
published, so until those apps are installed such a workflow cannot be published (the error
names the action).

What a definition names (message templates, destinations, segments) is listed by ``template_needs``
and shipped in ``workflows.library_content``; using a template (``workflows.services.library_use``)
creates what the org lacks. Scores fit the default scoring model of the demo (base 100, "medium"
at 300): a branch on the score asks for 300, which a contact reaches by behaviour, not by existing.
"""

import copy
from dataclasses import dataclass, field

from django.db import transaction

from marketing.models import Organization
from workflows.models import WorkflowTemplate

# Actions the templates use that apps above ``workflows`` register (not shipped by workflows).
PLUGIN_ACTIONS = ("send_email", "send_sms", "notify_slack", "post_social", "handoff_to_sales", "adjust_score")


@dataclass(frozen=True)
class Template:
    slug: str
    name: str
    description: str
    category: str
    tags: list[str]
    definition: dict
    requires: dict = field(default_factory=dict)


def _email(step_id: str, template: str, next_step: str | None, name: str = "") -> dict:
    step = {"id": step_id, "type": "action", "action": "send_email", "config": {"template": template}}
    return {**step, "next": next_step, **({"name": name} if name else {})}


WELCOME_SERIES = Template(
    slug="welcome-series",
    name="Welcome series",
    description="Three welcome emails over a week after sign-up: a welcome, tips (or the welcome again "
    "if it was not opened), and an offer on a weekday morning in the contact's time zone.",
    category=WorkflowTemplate.Category.ENGAGEMENT,
    tags=["email", "onboarding", "welcome"],
    definition={
        "trigger": {"type": "event", "event": "signed_up"},
        "settings": {"reenrollment": "never"},
        "steps": [
            _email("welcome", "welcome-1", "wait_open", "Send the welcome email"),
            {"id": "wait_open", "type": "delay", "name": "Two days", "config": {"duration": "P2D"}, "next": "opened"},
            {
                "id": "opened",
                "type": "condition",
                "name": "Opened an email lately?",
                "condition": {">": [{"event_count": ["email_opened", None, 3]}, 0]},
                "true_next": "tips",
                "false_next": "resend",
            },
            _email("tips", "welcome-2-tips", "wait_offer", "Send tips"),
            _email("resend", "welcome-1-reminder", "wait_offer", "Send the welcome again"),
            {
                "id": "wait_offer",
                "type": "delay",
                "name": "Next Tue–Thu, 09:00 local",
                "config": {"until_local_time": "09:00", "weekdays": ["tue", "wed", "thu"]},
                "next": "offer",
            },
            _email("offer", "welcome-3-offer", "tag", "Send the offer"),
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["welcomed"]}, "next": None},
        ],
    },
)

LEAD_QUALIFICATION = Template(
    slug="lead-qualification",
    name="Lead qualification",
    description="When someone asks sales for contact, score them up and route them: large companies "
    "and high scores go to sales with a Slack heads-up, the rest into nurture.",
    category=WorkflowTemplate.Category.LEAD_NURTURE,
    tags=["sales", "scoring", "routing"],
    definition={
        "trigger": {
            "type": "event",
            "event": "form_submitted",
            "filter": {"==": [{"var": "event.properties.form"}, "contact-sales"]},
        },
        "settings": {"reenrollment": "after_exit"},
        "steps": [
            {
                "id": "score",
                "type": "action",
                "name": "Score the request",
                "action": "adjust_score",
                "config": {"points": 25, "note": "Asked sales for contact"},
                "next": "route",
            },
            {
                "id": "route",
                "type": "switch",
                "name": "Route",
                "cases": [
                    {"name": "Enterprise", "when": {">=": [{"var": "company.size"}, 500]}, "next": "enterprise"},
                    {"name": "Hot lead (300+)", "when": {">=": [{"var": "score"}, 300]}, "next": "qualified"},
                ],
                "default_next": "nurture",
            },
            {
                "id": "enterprise",
                "type": "action",
                "action": "update_field",
                "config": {"field": "lifecycle_stage", "value": "sql"},
                "next": "handoff",
            },
            {
                "id": "qualified",
                "type": "action",
                "action": "update_field",
                "config": {"field": "lead_status", "value": "qualified"},
                "next": "handoff",
            },
            {
                "id": "handoff",
                "type": "action",
                "name": "Hand off to sales",
                "action": "handoff_to_sales",
                "config": {"note": "Asked sales for contact"},
                "next": "slack",
            },
            {
                "id": "slack",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "new-qualified-lead", "destination": "sales"},
                "next": None,
            },
            {
                "id": "nurture",
                "type": "action",
                "name": "Into nurture",
                "action": "add_tag",
                "config": {"tags": ["nurture"]},
                "next": "open",
            },
            {
                "id": "open",
                "type": "action",
                "action": "update_field",
                "config": {"field": "lead_status", "value": "open"},
                "next": None,
            },
        ],
    },
)

CUSTOMER_ONBOARDING = Template(
    slug="customer-onboarding",
    name="Customer onboarding",
    description="A new customer gets a welcome, help if no integration is connected within three days "
    "(with a note to customer success), and a week-two check-in. Ends early once they create a project.",
    category=WorkflowTemplate.Category.ENGAGEMENT,
    tags=["customers", "onboarding", "email"],
    definition={
        "trigger": {"type": "event", "event": "subscription_started"},
        "settings": {
            "reenrollment": "never",
            "goal": {">": [{"event_count": ["project_created", None, 30]}, 0]},
        },
        "steps": [
            {
                "id": "stage",
                "type": "action",
                "action": "update_field",
                "config": {"field": "lifecycle_stage", "value": "customer"},
                "next": "hello",
            },
            _email("hello", "onboarding-welcome", "setup", "Welcome aboard"),
            {
                "id": "setup",
                "type": "wait_for_event",
                "name": "Connects an integration?",
                "event": "integration_connected",
                "timeout": "P3D",
                "next": "tips_wait",
                "timeout_next": "help",
            },
            _email("help", "onboarding-setup-help", "csm", "Offer setup help"),
            {
                "id": "csm",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "onboarding-stalled", "destination": "customer-success"},
                "next": "tips_wait",
            },
            {"id": "tips_wait", "type": "delay", "config": {"duration": "P4D"}, "next": "checkin"},
            _email("checkin", "onboarding-week-2", "done", "Week-two check-in"),
            {"id": "done", "type": "action", "action": "add_tag", "config": {"tags": ["onboarded"]}, "next": None},
        ],
    },
)

PRODUCT_LAUNCH_DRIP = Template(
    slug="product-launch-drip",
    name="Product-launch drip",
    description="Start it for a segment from the console or the API: a teaser, an A/B-tested "
    "announcement three days later, then a score bump for those who click or a last call for the rest.",
    category=WorkflowTemplate.Category.CAMPAIGN,
    tags=["launch", "email", "a/b test"],
    definition={
        "trigger": {"type": "manual"},
        "settings": {"reenrollment": "never"},
        "steps": [
            _email("teaser", "launch-teaser", "wait", "Teaser"),
            {"id": "wait", "type": "delay", "config": {"duration": "P3D"}, "next": "ab"},
            {
                "id": "ab",
                "type": "split",
                "name": "A/B subject line",
                "branches": [
                    {"name": "A", "weight": 50, "next": "announce_a"},
                    {"name": "B", "weight": 50, "next": "announce_b"},
                ],
            },
            _email("announce_a", "launch-announcement-a", "clicked", "Announcement A"),
            _email("announce_b", "launch-announcement-b", "clicked", "Announcement B"),
            {
                "id": "clicked",
                "type": "wait_for_event",
                "name": "Clicks within five days?",
                "event": "email_clicked",
                "timeout": "P5D",
                "next": "interested",
                "timeout_next": "last_call",
            },
            {
                "id": "interested",
                "type": "action",
                "action": "adjust_score",
                "config": {"points": 10, "note": "Clicked the launch announcement"},
                "next": "tag",
            },
            {
                "id": "tag",
                "type": "action",
                "action": "add_tag",
                "config": {"tags": ["launch-interested"]},
                "next": None,
            },
            _email("last_call", "launch-last-call", None, "Last call"),
        ],
    },
)

LEAD_NURTURE = Template(
    slug="lead-nurture",
    name="Lead nurture",
    description="After a content download, a guide, a case study and a webinar invitation four days "
    "apart, then sales for leads that scored 300 or more. Leaves the run once the lead becomes an SQL.",
    category=WorkflowTemplate.Category.LEAD_NURTURE,
    tags=["nurture", "content", "email"],
    definition={
        "trigger": {"type": "event", "event": "content_downloaded"},
        "settings": {
            "reenrollment": "after_exit",
            "exit": {"in": [{"var": "lifecycle_stage"}, ["sql", "opportunity", "customer"]]},
        },
        "steps": [
            _email("guide", "nurture-guide", "gap_1", "Send the guide"),
            {"id": "gap_1", "type": "delay", "config": {"duration": "P4D"}, "next": "case_study"},
            _email("case_study", "nurture-case-study", "gap_2", "Send the case study"),
            {"id": "gap_2", "type": "delay", "config": {"duration": "P4D"}, "next": "webinar"},
            _email("webinar", "nurture-webinar", "gap_3", "Invite to the webinar"),
            {"id": "gap_3", "type": "delay", "config": {"duration": "P4D"}, "next": "hot"},
            {
                "id": "hot",
                "type": "condition",
                "name": "Score 300 or more?",
                "condition": {">=": [{"var": "score"}, 300]},
                "true_next": "handoff",
                "false_next": "tag",
            },
            {
                "id": "handoff",
                "type": "action",
                "action": "handoff_to_sales",
                "config": {"note": "Nurtured lead scored 300+"},
                "next": None,
            },
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["nurtured"]}, "next": None},
        ],
    },
)

CRISIS_RESPONSE = Template(
    slug="crisis-response",
    name="Crisis response to a negative mention",
    description="A negative social mention alerts Slack and the console at once, escalates to "
    "leadership when its reach is large, and posts a reply only after a marketer approves it.",
    category=WorkflowTemplate.Category.SOCIAL,
    tags=["social", "crisis", "approval"],
    definition={
        "trigger": {
            "type": "event",
            "event": "social_mention",
            "filter": {"==": [{"var": "event.properties.sentiment"}, "negative"]},
        },
        "settings": {"reenrollment": "always"},
        "steps": [
            {"id": "alert", "type": "parallel", "name": "Alert everyone", "branches": ["slack", "console"]},
            {
                "id": "slack",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "negative-mention", "destination": "social-team"},
                "next": "alerted",
            },
            {
                "id": "console",
                "type": "action",
                "action": "notify",
                "config": {"message": "A negative mention needs a reply."},
                "next": "alerted",
            },
            {"id": "alerted", "type": "merge", "mode": "all", "next": "reach"},
            {
                "id": "reach",
                "type": "condition",
                "name": "Reach of 10,000 or more?",
                "condition": {">=": [{"var": "workflow.trigger.properties.reach"}, 10000]},
                "true_next": "escalate",
                "false_next": "approve",
            },
            {
                "id": "escalate",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "negative-mention-large-reach", "destination": "leadership"},
                "next": "approve",
            },
            {
                "id": "approve",
                "type": "approval",
                "name": "Approve the reply",
                "approvers": {"role": "marketer"},
                "timeout": "PT4H",
                "approved_next": "reply",
                "rejected_next": "handled",
                "timeout_next": "overdue",
            },
            {
                "id": "reply",
                "type": "action",
                "action": "post_social",
                "config": {"template": "crisis-reply", "destination": "company-social"},
                "next": "handled",
            },
            {
                "id": "overdue",
                "type": "action",
                "action": "notify",
                "config": {"message": "No one approved the reply to a negative mention within four hours."},
                "next": "handled",
            },
            {
                "id": "handled",
                "type": "action",
                "action": "add_tag",
                "config": {"tags": ["mention-handled"]},
                "next": None,
            },
        ],
    },
)

INFLUENCER_LIFECYCLE = Template(
    slug="influencer-campaign-lifecycle",
    name="Influencer campaign lifecycle",
    description="From signing to payout: the brief, reminders until content arrives, a marketer's "
    "approval (or a revision round), publishing, a check of every deliverable, a payout note to "
    "finance and thanks.",
    category=WorkflowTemplate.Category.SOCIAL,
    tags=["social", "influencers", "approval"],
    definition={
        "trigger": {"type": "event", "event": "influencer_signed"},
        "settings": {"reenrollment": "after_exit"},
        "steps": [
            _email("brief", "influencer-brief", "content", "Send the brief"),
            {
                "id": "content",
                "type": "wait_for_event",
                "name": "Content within two weeks?",
                "event": "content_submitted",
                "timeout": "P14D",
                "next": "review",
                "timeout_next": "chase",
            },
            _email("chase", "influencer-reminder", "last_chance", "Chase"),
            {
                "id": "last_chance",
                "type": "wait_for_event",
                "event": "content_submitted",
                "timeout": "P7D",
                "next": "review",
                "timeout_next": "dropped",
            },
            {
                "id": "review",
                "type": "approval",
                "name": "Approve the content",
                "approvers": {"role": "marketer"},
                "timeout": "P3D",
                "approved_next": "publish",
                "rejected_next": "revise",
                "timeout_next": "publish",
            },
            _email("revise", "influencer-revision", "last_chance", "Ask for a revision"),
            {
                "id": "publish",
                "type": "action",
                "action": "post_social",
                "config": {"template": "influencer-post", "destination": "company-social"},
                "next": "settle",
            },
            {
                "id": "settle",
                "type": "delay",
                "name": "A week of reach",
                "config": {"duration": "P7D"},
                "next": "check",
            },
            {
                "id": "check",
                "type": "loop",
                "name": "Each deliverable",
                "over": "workflow.trigger.properties.deliverables",
                "as": "deliverable",
                "max": 20,
                "body_next": "log_deliverable",
                "next": "payout",
            },
            {
                "id": "log_deliverable",
                "type": "action",
                "action": "log",
                "config": {"message": "Deliverable checked"},
                "next": "check",
            },
            {
                "id": "payout",
                "type": "action",
                "name": "Request the payout",
                "action": "notify_slack",
                "config": {"template": "influencer-payout", "destination": "finance"},
                "next": "thanks",
            },
            _email("thanks", "influencer-thanks", "alumni", "Thank them"),
            {
                "id": "alumni",
                "type": "action",
                "action": "add_tag",
                "config": {"tags": ["influencer-alumni"]},
                "next": None,
            },
            {
                "id": "dropped",
                "type": "action",
                "action": "add_tag",
                "config": {"tags": ["influencer-dropped"]},
                "next": None,
            },
        ],
    },
)

WEEKLY_REPORT = Template(
    slug="weekly-performance-report",
    name="Weekly performance report",
    description="Every Monday at 09:00 the members of the report-recipients segment get the weekly "
    "performance email, and #marketing hears that it went out.",
    category=WorkflowTemplate.Category.REPORTING,
    tags=["reporting", "schedule"],
    requires={"segments": ["report-recipients"]},
    definition={
        "trigger": {"type": "schedule", "segment": "report-recipients", "cron": "0 9 * * 1"},
        "settings": {"reenrollment": "always"},
        "steps": [
            _email("report", "weekly-performance-report", "slack", "Send the report"),
            {
                "id": "slack",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "weekly-report-sent", "destination": "marketing"},
                "next": None,
            },
        ],
    },
)

CHURN_PREVENTION = Template(
    slug="churn-prevention",
    name="Churn prevention",
    description="A customer inactive for 30 days gets a we-miss-you email; if they do not log in "
    "within a week, a win-back offer, a note to customer success and a lower score.",
    category=WorkflowTemplate.Category.ENGAGEMENT,
    tags=["retention", "customers", "win-back"],
    definition={
        "trigger": {"type": "date_relative", "field": "last_activity_at", "offset_days": 30},
        "settings": {"reenrollment": "after_exit"},
        "steps": [
            {
                "id": "customer",
                "type": "condition",
                "name": "A customer?",
                "condition": {"==": [{"var": "lifecycle_stage"}, "customer"]},
                "true_next": "miss_you",
                "false_next": None,
            },
            _email("miss_you", "we-miss-you", "back", "We miss you"),
            {
                "id": "back",
                "type": "wait_for_event",
                "name": "Logs in within a week?",
                "event": "login",
                "timeout": "P7D",
                "next": "reactivated",
                "timeout_next": "offer",
            },
            {
                "id": "reactivated",
                "type": "action",
                "action": "add_tag",
                "config": {"tags": ["reactivated"]},
                "next": None,
            },
            _email("offer", "win-back-offer", "csm", "Win-back offer"),
            {
                "id": "csm",
                "type": "action",
                "action": "notify_slack",
                "config": {"template": "churn-risk", "destination": "customer-success"},
                "next": "score",
            },
            {
                "id": "score",
                "type": "action",
                "action": "adjust_score",
                "config": {"points": -20, "note": "Inactive for five weeks"},
                "next": "tag",
            },
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["churn-risk"]}, "next": None},
        ],
    },
)

TRIAL_TO_PAID = Template(
    slug="trial-to-paid",
    name="Trial to paid",
    description="Over a 14-day trial: getting started, a text (or an email, without a phone number) if "
    "no feature is used in three days, "
    "sales for active trials or a discount for the rest, and a reminder before the end. The run "
    "ends as soon as the contact becomes a customer.",
    category=WorkflowTemplate.Category.CAMPAIGN,
    tags=["trial", "conversion", "email", "sms"],
    definition={
        "trigger": {"type": "event", "event": "trial_started"},
        "settings": {"reenrollment": "never", "goal": {"==": [{"var": "lifecycle_stage"}, "customer"]}},
        "steps": [
            {"id": "tag", "type": "action", "action": "add_tag", "config": {"tags": ["trial"]}, "next": "start"},
            _email("start", "trial-getting-started", "activated", "Getting started"),
            {
                "id": "activated",
                "type": "wait_for_event",
                "name": "Uses a feature within three days?",
                "event": "feature_used",
                "timeout": "P3D",
                "next": "day7",
                "timeout_next": "has_phone",
            },
            {
                "id": "has_phone",
                "type": "condition",
                "name": "Has a phone number?",
                "condition": {"!=": [{"var": ["phone", ""]}, ""]},
                "true_next": "text",
                "false_next": "help_email",
            },
            {
                "id": "text",
                "type": "action",
                "action": "send_sms",
                "config": {"template": "trial-need-help"},
                "next": "day7",
            },
            _email("help_email", "trial-need-help-email", "day7", "Offer help by email"),
            {"id": "day7", "type": "delay", "config": {"duration": "P4D"}, "next": "engaged"},
            {
                "id": "engaged",
                "type": "condition",
                "name": "Used features 3+ times this week?",
                "condition": {">=": [{"event_count": ["feature_used", None, 7]}, 3]},
                "true_next": "sales",
                "false_next": "discount",
            },
            {
                "id": "sales",
                "type": "action",
                "action": "handoff_to_sales",
                "config": {"note": "Active trial"},
                "next": "wait_end",
            },
            _email("discount", "trial-discount", "wait_end", "Discount"),
            {"id": "wait_end", "type": "delay", "config": {"duration": "P6D"}, "next": "last_day"},
            _email("last_day", "trial-ends-tomorrow", "converted", "Trial ends tomorrow"),
            {"id": "converted", "type": "goal", "name": "Became a customer?", "next": "lost"},
            {"id": "lost", "type": "action", "action": "remove_tag", "config": {"tags": ["trial"]}, "next": None},
        ],
    },
)

TEMPLATES: tuple[Template, ...] = (
    WELCOME_SERIES,
    LEAD_QUALIFICATION,
    CUSTOMER_ONBOARDING,
    PRODUCT_LAUNCH_DRIP,
    LEAD_NURTURE,
    CRISIS_RESPONSE,
    INFLUENCER_LIFECYCLE,
    WEEKLY_REPORT,
    CHURN_PREVENTION,
    TRIAL_TO_PAID,
)


# Actions whose config names a message template, and a destination, by slug.
SEND_ACTIONS = ("send_email", "send_sms", "send_push", "notify_slack", "post_social")


def template_needs(definition: dict) -> dict[str, list[str]]:
    """The slugs of the message templates, destinations and segments ``definition`` names, each
    list in the order of first mention."""
    needs: dict[str, list[str]] = {"message_templates": [], "segments": [], "destinations": []}

    def add(kind: str, slug) -> None:
        if isinstance(slug, str) and slug and slug not in needs[kind]:
            needs[kind].append(slug)

    add("segments", (definition.get("trigger") or {}).get("segment"))
    for step in definition.get("steps") or []:
        if step.get("type") == "action" and step.get("action") in SEND_ACTIONS:
            config = step.get("config") or {}
            add("message_templates", config.get("template"))
            add("destinations", config.get("destination"))
    return needs


def library_templates() -> tuple[Template, ...]:
    """The library's templates (each definition a fresh copy, safe to change)."""
    return tuple(
        Template(
            slug=t.slug,
            name=t.name,
            description=t.description,
            category=t.category,
            tags=list(t.tags),
            definition=copy.deepcopy(t.definition),
            requires=copy.deepcopy(t.requires),
        )
        for t in TEMPLATES
    )


def library_install(*, org: Organization) -> int:
    """Adds the library's templates to ``org``, or brings changed ones up to date (matched by
    slug; an operator's ``usage_count`` is kept); returns how many were added or changed."""
    changed = 0
    with transaction.atomic():
        existing = {t.slug: t for t in WorkflowTemplate.objects.filter(org=org).select_for_update().order_by("pk")}
        for template in library_templates():
            values = {
                "name": template.name,
                "description": template.description,
                "category": template.category,
                "tags": template.tags,
                "trigger": template.definition["trigger"],
                "definition": template.definition,
                "status": WorkflowTemplate.Status.ACTIVE,
            }
            row = existing.get(template.slug)
            if row is None:
                WorkflowTemplate.objects.create(org=org, slug=template.slug, **values)
                changed += 1
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.save(update_fields=[*values, "updated_at"])
                changed += 1
    return changed
