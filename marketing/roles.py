"""What each membership role may do, as Django model permissions in the current org.

A user's permissions depend on the org they act in (admin in one, analyst in another), so they
come from the role of the current membership (``marketing.tenancy``), not from global groups.
Superusers keep every permission through Django's own backend. Finer, per-object grants (who
may publish a given workflow) come from django-guardian.

Only tenant rows are granted: the installation's own tables (schedules, users, other orgs,
auth groups, guardian's and axes' rows, inbound SMS receipts) are for superusers. ``PLATFORM_APPS``
are refused whatever ``GRANTS`` says, and an app's wildcard covers only its tenant models (those
with an ``org``, or in ``PARENT_SCOPED`` or ``CONTENT_SCOPED``). Tenants schedule their work through their own
``ScheduledJob``s.
"""

from functools import cache

from django.apps import apps

from marketing.models import Role
from marketing.tenancy import current_membership

# Per role: "app_label.model" (or "app_label.*") -> the actions allowed, as letters:
# v(iew), a(dd), c(hange), d(elete). The most specific entry wins.
OUR_APPS = ("marketing", "workflows", "scoring", "channels_app", "compliance")
# Apps whose tables serve the whole installation: one org's admin running or disabling a schedule,
# or reading login attempts, would act on every org.
PLATFORM_APPS = ("django_celery_beat", "auth", "guardian", "axes", "admin", "contenttypes", "sessions")
# Rows with no org column of their own that belong to one through their parent, edited only as
# inlines of that parent's page (a contact's lists, an import's rejected rows).
PARENT_SCOPED = ("marketing.listmembership", "marketing.importrowerror")
# Rows with no org column that belong to one through what they hold: the change history's events
# carry the org of the row they copy (marketing.change_history), and its page shows the current
# org's only.
CONTENT_SCOPED = ("marketing.changeevent",)
GRANTS: dict[str, dict[str, str]] = {
    Role.ADMIN: {
        **{f"{app}.*": "vacd" for app in OUR_APPS},
        "marketing.organization": "vc",
        "marketing.user": "",
    },
    Role.MARKETER: {
        **{f"{app}.*": "vacd" for app in ("marketing", "workflows", "channels_app")},
        "marketing.organization": "v",
        "marketing.membership": "v",
        "marketing.invitation": "",  # inviting teammates is the org admins' job
        "marketing.apikey": "",
        "marketing.user": "",
        "scoring.*": "vac",
        "compliance.*": "v",
        "compliance.subscriptiontype": "vac",  # topics are part of the marketing plan
        "marketing.auditentry": "",  # the audit log and change history: admins and compliance
        "marketing.changeevent": "",
    },
    Role.SALES: {
        "marketing.contact": "vc",
        "marketing.company": "vc",
        "marketing.tag": "v",
        "marketing.contactlist": "v",
        "scoring.*": "v",
        "scoring.handoff": "vc",  # accept, reject, convert their own (object permissions decide which)
    },
    Role.ANALYST: {
        **{f"{app}.*": "v" for app in OUR_APPS},
        "marketing.apikey": "",
        "marketing.invitation": "",
        "marketing.user": "",
        "marketing.auditentry": "",
        "marketing.changeevent": "",
    },
    Role.COMPLIANCE: {
        "marketing.contact": "vcd",
        "marketing.company": "vcd",
        "marketing.membership": "v",
        "compliance.*": "vacd",
        "channels_app.*": "v",
        "marketing.auditentry": "v",
        "marketing.changeevent": "v",
    },
}
ACTION_LETTERS = {"view": "v", "add": "a", "change": "c", "delete": "d"}


def role_allows(role: str, perm: str) -> bool:
    """Whether ``role`` grants ``perm`` ("app_label.action_model", e.g. "marketing.view_contact")."""
    app_label, _, codename = perm.partition(".")
    action, _, model = codename.partition("_")
    letter = ACTION_LETTERS.get(action)
    if letter is None or app_label in PLATFORM_APPS:
        return False
    grants = GRANTS.get(role, {})
    allowed = grants.get(f"{app_label}.{model}")
    if allowed is None:
        allowed = grants.get(f"{app_label}.*", "") if _tenant_model(app_label, model) else ""
    return letter in allowed


@cache
def _tenant_model(app_label: str, model_name: str) -> bool:
    """Whether the model's rows belong to an org: a wildcard grant reaches only those."""
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return False
    if f"{app_label}.{model_name}" in PARENT_SCOPED + CONTENT_SCOPED:
        return True
    return any(f.name == "org" for f in model._meta.get_fields())


class RoleBackend:
    """Authentication backend that only answers permission questions, from the current role."""

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm: str, obj=None) -> bool:
        if obj is not None or not user_obj.is_active:
            return False
        membership = current_membership()
        if membership is None or membership.user_id != user_obj.pk:
            return False
        return role_allows(membership.role, perm)

    def has_module_perms(self, user_obj, app_label: str) -> bool:
        if not user_obj.is_active:
            return False
        membership = current_membership()
        if membership is None or membership.user_id != user_obj.pk:
            return False
        if app_label in PLATFORM_APPS:
            return False
        return any(letter for key, letter in GRANTS.get(membership.role, {}).items() if key.split(".")[0] == app_label)
