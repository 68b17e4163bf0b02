"""Public endpoints of the channels app: tracking (open pixel, signed click redirect, unsubscribe)
and the providers' callbacks. Mounted at the site root by ``marketing.urls``."""

from django.urls import path

from channels_app.tracking import click_redirect, open_pixel, unsubscribe

urlpatterns = [
    path("m/o/<str:token>.gif", open_pixel, name="message-open"),
    path("m/c/<str:token>", click_redirect, name="message-click"),
    path("m/u/<str:token>", unsubscribe, name="message-unsubscribe"),
]
