"""What a member's role reaches: tenant rows of the current org, never the installation's own tables
(schedules, users, organisations other than the current one, auth, guardian, axes)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_scopes import scopes_disabled

from marketing.models import Membership, Organization, Role
from marketing.roles import CONTENT_SCOPED, PARENT_SCOPED
from marketing.tenancy import org_context
from tests.factories import UserFactory

ACTIONS = ("view", "add", "change", "delete")


def has_org(model) -> bool:
    return any(field.name == "org" for field in model._meta.get_fields())


def perm_name(model, action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def console_request(user, membership):
    request = RequestFactory().get("/admin/")
    request.user, request.org, request.membership = user, membership.org, membership
    return request


@pytest.fixture
def beat_task(db):
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name="scoring: recompute org 1", task="scoring.tasks.scores_recompute", interval=every_minute, args="[1]"
    )


@pytest.mark.parametrize("role", Role.values)
def test_no_role_reaches_an_admin_page_of_a_model_without_an_org(org, member_factory, role):
    """Walks the console's registry: a model without an org column is the installation's, and only
    superusers manage it. ``Organization`` is the one exception, as the current org only."""
    user = member_factory(org, role)
    membership = Membership.objects.get(org=org, user=user)
    with org_context(org, membership=membership):
        request = console_request(user, membership)
        reached = []
        for model, model_admin in admin.site._registry.items():
            if has_org(model) or model is Organization or model._meta.label_lower in CONTENT_SCOPED:
                continue
            checks = {
                "module": model_admin.has_module_permission(request),
                "view": model_admin.has_view_permission(request),
                "add": model_admin.has_add_permission(request),
                "change": model_admin.has_change_permission(request),
                "delete": model_admin.has_delete_permission(request),
                **{f"perm {action}": user.has_perm(perm_name(model, action)) for action in ACTIONS},
            }
            reached += [f"{model._meta.label}: {what}" for what, allowed in checks.items() if allowed]
    assert reached == []


@pytest.mark.parametrize("role", Role.values)
def test_no_role_holds_a_permission_on_an_installation_table(org, member_factory, role):
    """The same for every model, registered in the console or not (the API checks these too)."""
    user = member_factory(org, role)
    membership = Membership.objects.get(org=org, user=user)
    with org_context(org, membership=membership):
        granted = [
            f"{model._meta.label}.{action}"
            for model in apps.get_models()
            if not has_org(model)
            and model is not Organization
            and model._meta.label_lower not in PARENT_SCOPED + CONTENT_SCOPED
            for action in ACTIONS
            if user.has_perm(perm_name(model, action))
        ]
        platform_modules = [
            label
            for label in ("django_celery_beat", "auth", "guardian", "axes", "admin", "contenttypes", "sessions")
            if user.has_module_perms(label)
        ]
    assert granted == [] and platform_modules == []


def test_an_org_admin_is_refused_the_schedules(org, other_org, member_factory, beat_task):
    """The audit's finding: an admin of org B listed, ran and switched off every org's schedules."""
    admin_b = member_factory(other_org, Role.ADMIN, username="admin-b")
    client = Client()
    client.force_login(admin_b)

    pages = [
        reverse("admin:django_celery_beat_periodictask_changelist"),
        reverse("admin:django_celery_beat_periodictask_add"),
        reverse("admin:django_celery_beat_periodictask_change", args=[beat_task.pk]),
        reverse("admin:django_celery_beat_intervalschedule_changelist"),
        reverse("admin:django_celery_beat_crontabschedule_add"),
    ]
    for page in pages:
        assert client.get(page).status_code == 403, page
    for action in ("run_tasks", "disable_tasks"):
        response = client.post(
            reverse("admin:django_celery_beat_periodictask_changelist"),
            {"action": action, "_selected_action": [beat_task.pk]},
        )
        assert response.status_code == 403
    added = client.post(
        reverse("admin:django_celery_beat_crontabschedule_add"),
        {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*", "timezone": "UTC"},
    )
    assert added.status_code == 403
    assert not CrontabSchedule.objects.exists()
    beat_task.refresh_from_db()
    assert beat_task.enabled
    index = client.get(reverse("admin:index")).content.decode()
    assert "django_celery_beat" not in index and "Periodic tasks" not in index


def test_a_superuser_still_manages_the_schedules(db, beat_task):
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get(reverse("admin:django_celery_beat_periodictask_changelist")).status_code == 200
    client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "disable_tasks", "_selected_action": [beat_task.pk]},
    )
    beat_task.refresh_from_db()
    assert not beat_task.enabled


def test_an_org_admin_reaches_only_the_current_orgs_settings(org, other_org, member_factory):
    admin_b = member_factory(other_org, Role.ADMIN, username="admin-b")
    client = Client()
    client.force_login(admin_b)

    assert client.get(reverse("admin:marketing_organization_change", args=[other_org.pk])).status_code == 200
    for page in ("change", "history", "delete"):
        response = client.get(reverse(f"admin:marketing_organization_{page}", args=[org.pk]))
        assert response.status_code in (403, 404), page
    refused = client.post(
        reverse("admin:marketing_organization_change", args=[org.pk]),
        {"name": "Taken over", "slug": "org-a", "postal_address": "x", "default_time_zone": "UTC"},
    )
    assert refused.status_code in (403, 404)
    with scopes_disabled():
        org.refresh_from_db()
    assert org.name == "Org A"
    listing = client.get(reverse("admin:marketing_organization_changelist"))
    assert [o.pk for o in listing.context["cl"].result_list] == [other_org.pk]
