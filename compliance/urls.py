"""Public pages of the compliance app, reached from signed links (no login)."""

app_name = "compliance"
urlpatterns: list = []
