"""The console's sidebar: pages grouped by job, each shown only to whom its list is open.

django-unfold calls ``sidebar_navigation(request)`` on every page (settings ``UNFOLD``). An item
appears when its model is registered in the console and ``request.user.has_perm`` grants its
view permission in the current org (``marketing.roles``), so a sales rep sees no Settings and a
marketer no System; unfold hides a group whose items are all hidden. System holds the engine's
own rows (org admins read them) and, for superusers alone, the installation's tables.
"""

from collections.abc import Callable

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse

from marketing.admin import is_org_admin

# (group title, [(item title, "app_label.model", material icon)]); a model not registered in
# the console (a part not installed yet) is left out.
GROUPS: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "Contacts",
        [
            ("Contacts", "marketing.contact", "person"),
            ("Companies", "marketing.company", "domain"),
            ("Lists", "marketing.contactlist", "list"),
            ("Tags", "marketing.tag", "sell"),
            ("Imports", "marketing.importjob", "upload_file"),
            ("Events", "marketing.event", "bolt"),
            ("Identity conflicts", "marketing.identityconflict", "call_split"),
        ],
    ),
    (
        "Segments",
        [
            ("Segments", "marketing.segment", "filter_alt"),
            ("Segment members", "marketing.segmentmembership", "group"),
        ],
    ),
    (
        "Workflows",
        [
            ("Workflows", "workflows.workflow", "account_tree"),
            ("Library", "workflows.workflowtemplate", "library_books"),
            ("Approvals", "workflows.approval", "task_alt"),
            ("Runs", "workflows.workflowinstance", "play_circle"),
            ("Finished runs", "workflows.automationexecution", "history"),
            ("Versions", "workflows.workflowversion", "difference"),
        ],
    ),
    (
        "Messages",
        [
            ("Templates", "channels_app.messagetemplate", "mail"),
            ("Broadcasts", "channels_app.broadcast", "campaign"),
            ("Outbox", "channels_app.message", "outbox"),
            ("Suppressions", "channels_app.suppression", "block"),
        ],
    ),
    (
        "Scoring",
        [
            ("Scoring models", "scoring.scoringmodel", "speed"),
            ("Scoring rules", "scoring.scoringrule", "rule"),
            ("Scores", "scoring.contactscore", "leaderboard"),
            ("Score history", "scoring.scoreledger", "receipt_long"),
            ("Predictive models", "scoring.predictivemodel", "model_training"),
        ],
    ),
    (
        "Sales queue",
        [
            ("Handoffs", "scoring.handoff", "handshake"),
            ("Handoff policies", "scoring.handoffpolicy", "policy"),
        ],
    ),
    (
        "Compliance",
        [
            ("Consent records", "compliance.consentrecord", "verified_user"),
            ("Consent regimes", "compliance.consentregime", "policy"),
            ("Awaiting confirmation", "compliance.pendingconsent", "mark_email_unread"),
            ("Data-subject requests", "compliance.datasubjectrequest", "assignment_ind"),
            ("Data retention", "compliance.retentionpolicy", "auto_delete"),
            ("Topics", "compliance.subscriptiontype", "label"),
            ("Topic choices", "compliance.topicchoice", "checklist"),
            ("Audit log", "marketing.auditentry", "manage_search"),
            ("Change history", "marketing.changeevent", "history"),
        ],
    ),
    (
        "Settings",
        [
            ("Organisation", "marketing.organization", "apartment"),
            ("Members", "marketing.membership", "badge"),
            ("API keys", "marketing.apikey", "key"),
            ("Destinations", "channels_app.destination", "send"),
            ("Schedules", "workflows.scheduledjob", "schedule"),
            ("Custom properties", "marketing.propertydefinition", "tune"),
        ],
    ),
]

# Read by org admins (their org's rows); hidden from the other roles.
SYSTEM_INTERNALS = [
    ("Dispatch batches", "marketing.dispatchbatch", "inventory_2"),
    ("Step runs", "workflows.workflowsteprun", "format_list_numbered"),
    ("Deliveries", "workflows.delivery", "local_shipping"),
    ("Contact merges", "marketing.contactmerge", "merge"),
]
# The installation's own tables: superusers alone.
SYSTEM_PLATFORM = [
    ("Users", "marketing.user", "manage_accounts"),
    ("Periodic tasks", "django_celery_beat.periodictask", "event_repeat"),
    ("Intervals", "django_celery_beat.intervalschedule", "timer"),
    ("Crontabs", "django_celery_beat.crontabschedule", "calendar_month"),
    ("Clocked", "django_celery_beat.clockedschedule", "alarm"),
    ("Solar events", "django_celery_beat.solarschedule", "wb_sunny"),
    ("Login attempts", "axes.accessattempt", "login"),
    ("Login failures", "axes.accessfailurelog", "gpp_bad"),
    ("Login log", "axes.accesslog", "receipt"),
]


def _may_view(label: str) -> Callable[[HttpRequest], bool]:
    app_label, model_name = label.split(".")
    return lambda request: request.user.has_perm(f"{app_label}.view_{model_name}")


def _internal(label: str) -> Callable[[HttpRequest], bool]:
    may_view = _may_view(label)
    return lambda request: is_org_admin(request) and may_view(request)


def _superuser(request: HttpRequest) -> bool:
    return request.user.is_superuser


def _items(entries: list[tuple[str, str, str]], permission) -> list[dict]:
    items = []
    for title, label, icon in entries:
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        if not admin.site.is_registered(model):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        items.append({"title": title, "icon": icon, "link": url, "permission": permission(label)})
    return items


def sidebar_navigation(request: HttpRequest) -> list[dict]:
    """The sidebar's groups for this request, in unfold's ``SIDEBAR["navigation"]`` shape."""
    navigation = [{"items": [{"title": "Home", "icon": "home", "link": reverse("admin:index")}]}]
    navigation += [{"title": title, "items": _items(entries, _may_view)} for title, entries in GROUPS]
    system = _items(SYSTEM_INTERNALS, _internal) + _items(SYSTEM_PLATFORM, lambda label: _superuser)
    navigation.append({"title": "System", "items": system})
    return navigation


def favicon_url(request: HttpRequest) -> str:
    """The console's icon (an SVG under static/)."""
    return static("marketing/favicon.svg")
