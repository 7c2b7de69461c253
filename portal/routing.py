from django.urls import path

from portal.consumers import OrganizationEventsConsumer

websocket_urlpatterns = [
    path("ws/v1/events/", OrganizationEventsConsumer.as_asgi()),
]
