"""Public pages of the compliance app, reached from signed links (no login)."""

from django.urls import path

from compliance.consent_pages import consent_confirm_page
from compliance.preference_pages import preference_centre_page
from compliance.request_pages import request_download_page, request_verify_page

app_name = "compliance"
urlpatterns: list = [
    path("privacy/requests/confirm/<str:token>/", request_verify_page, name="dsar-verify"),
    path("privacy/requests/download/<str:token>/", request_download_page, name="dsar-download"),
    path("privacy/consent/confirm/<str:token>/", consent_confirm_page, name="consent-confirm"),
    path("preferences/<str:token>/", preference_centre_page, name="preferences"),
]
