from django.urls import path

from portal.consumers import OrganizationEventsConsumer
from portal.tracking_page.consumers import TrackingConsumer

websocket_urlpatterns = [
    path("ws/v1/events/", OrganizationEventsConsumer.as_asgi()),
    # The customer tracking page: the token is the credential (docs/TRACKING_PAGE.md).
    path("ws/v1/track/<str:token>/", TrackingConsumer.as_asgi()),
]
