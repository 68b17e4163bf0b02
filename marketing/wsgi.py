"""WSGI entry point (HTTP only; production serves ASGI for websockets: marketing.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
application = get_wsgi_application()
