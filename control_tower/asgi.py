"""ASGI entry point: HTTP through Django (device protocols through the ingest fast path first),
websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from control_tower.tenancy.websocket import OrganizationWebsocketMiddleware  # noqa: E402
from control_tower.ws_guard import WebsocketOriginAllowList  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402
from tracking.ingest.fast import DeviceIngestApp  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Device protocol endpoints are answered before Django (tracking/ingest/fast.py).
        "http": DeviceIngestApp(django_asgi_app),
        # The Origin allow-list runs first: a cross-site handshake never reaches the session.
        "websocket": WebsocketOriginAllowList(
            AuthMiddlewareStack(OrganizationWebsocketMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
