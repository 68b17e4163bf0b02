"""Public endpoints of the channels app: tracking (open pixel, signed click redirect, unsubscribe)
and the providers' callbacks. Mounted at the site root by ``marketing.urls``."""

from django.urls import include, path

from channels_app import push_subscriptions, sms_webhooks
from channels_app.tracking import click_redirect, open_pixel, unsubscribe

urlpatterns = [
    path("m/o/<str:token>.gif", open_pixel, name="message-open"),
    path("m/c/<str:token>", click_redirect, name="message-click"),
    path("m/u/<str:token>", unsubscribe, name="message-unsubscribe"),
    path("m/sms/status/<str:token>", sms_webhooks.status_callback, name="sms-status"),
    path("m/sms/inbound", sms_webhooks.inbound, name="sms-inbound"),
    path("m/push/key", push_subscriptions.vapid_key, name="push-key"),
    path("m/push/subscriptions", push_subscriptions.subscriptions, name="push-subscriptions"),
    path("m/push/unsubscribe", push_subscriptions.unsubscribe, name="push-unsubscribe"),
    # ESP webhooks: anymail's views behind a guard (channels_app/esp_webhooks.py), reports handled by
    # channels_app/esp_tracking.py
    path("hooks/esp/", include("channels_app.esp_webhooks")),
]
