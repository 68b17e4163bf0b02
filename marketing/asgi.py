"""ASGI entry point: Django for HTTP, Channels for websockets (live workflow status).

Serve with ``daphne marketing.asgi:application`` (or ``uvicorn``); websocket routes are
collected from the apps' ``routing`` modules. HTTP goes through ``BodyLimits`` first: a body
over its route's limit is refused with a 413 before Django reads it (``marketing.body_limits``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the routes import models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from marketing.body_limits import BodyLimits  # noqa: E402
from workflows.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimits(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
