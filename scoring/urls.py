"""The scoring app's API routes, mounted under /api/v1/ by ``marketing.urls``."""

urlpatterns: list = []
