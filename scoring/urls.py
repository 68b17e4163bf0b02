"""The scoring app's API routes, mounted under /api/v1/ by ``marketing.urls``."""

from django.urls import path

from scoring.api import ContactScoreView

urlpatterns: list = [
    path("contacts/<int:id>/score/", ContactScoreView.as_view(), name="api-contact-score"),
]

# The sales handoff queue (scoring.handoffs_api).
from scoring.handoffs_api import HandoffViewSet  # noqa: E402

urlpatterns += [
    path("handoffs/", HandoffViewSet.as_view({"get": "list", "post": "create"}), name="api-handoff-list"),
    path("handoffs/<int:pk>/", HandoffViewSet.as_view({"get": "retrieve"}), name="api-handoff-detail"),
    path("handoffs/<int:pk>/accept/", HandoffViewSet.as_view({"post": "accept"}), name="api-handoff-accept"),
    path("handoffs/<int:pk>/reject/", HandoffViewSet.as_view({"post": "reject"}), name="api-handoff-reject"),
    path("handoffs/<int:pk>/convert/", HandoffViewSet.as_view({"post": "convert"}), name="api-handoff-convert"),
]
