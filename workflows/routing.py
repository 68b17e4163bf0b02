"""Websocket routes of the console: live workflow status (``workflows.live_status``)."""

from django.urls import path

from workflows.live_status import WorkflowStatusConsumer

websocket_urlpatterns = [
    path("ws/workflows/", WorkflowStatusConsumer.as_asgi()),
    path("ws/workflows/<int:workflow_id>/", WorkflowStatusConsumer.as_asgi()),
]
