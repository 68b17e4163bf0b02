"""URLs: the console (admin), the REST API under /api/v1/, its schema and docs, health probes, metrics."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from channels_app.api import DestinationViewSet, MessageTemplateViewSet
from compliance.requests_api import DataSubjectRequestViewSet
from marketing.api import CompanyViewSet, ContactViewSet
from marketing.events_api import EventsView
from marketing.health import healthz, readyz
from marketing.invitation_pages import invitation_accept_view
from marketing.metrics import metrics_view
from marketing.pickers_api import ConditionFieldsView, EventTypesView, ListViewSet, MemberViewSet, TagViewSet
from marketing.segments_api import ConditionsValidateView, SegmentViewSet
from workflows.api import WorkflowInstanceViewSet, WorkflowTemplateViewSet, WorkflowViewSet
from workflows.webhooks import workflow_webhook

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("contacts", ContactViewSet, basename="contact")
router.register("companies", CompanyViewSet, basename="company")
router.register("segments", SegmentViewSet, basename="segment")
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("workflow-instances", WorkflowInstanceViewSet, basename="workflow-instance")
router.register("workflow-templates", WorkflowTemplateViewSet, basename="workflow-template")
router.register("data-subject-requests", DataSubjectRequestViewSet, basename="data-subject-request")
# The console's pickers (read-only)
router.register("message-templates", MessageTemplateViewSet, basename="message-template")
router.register("destinations", DestinationViewSet, basename="destination")
router.register("members", MemberViewSet, basename="member")
router.register("tags", TagViewSet, basename="tag")
router.register("lists", ListViewSet, basename="list")

public = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/events/", EventsView.as_view(), name="api-events"),
    path("api/v1/conditions/validate/", ConditionsValidateView.as_view(), name="api-conditions-validate"),
    path("api/v1/conditions/fields/", ConditionFieldsView.as_view(), name="api-conditions-fields"),
    path("api/v1/event-types/", EventTypesView.as_view(), name="api-event-types"),
    path("api/v1/", include("scoring.urls")),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(**public), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema", **public), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema", **public), name="api-redoc"),
    path("t/", include("marketing.web_tracking")),
    path("v1/", include("marketing.tracking_api")),
    path("", include("channels_app.urls")),
    path("", include("compliance.urls")),
    path("hooks/workflows/<int:workflow_id>/", workflow_webhook, name="workflow-webhook"),
    path("invite/<str:token>/", invitation_accept_view, name="invitation-accept"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "marketing.error_pages.bad_request"
handler403 = "marketing.error_pages.permission_denied"
handler404 = "marketing.error_pages.not_found"
handler500 = "marketing.error_pages.server_error"
