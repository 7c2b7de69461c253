"""This app's REST endpoints, included under /api/v1/ by control_tower/api/urls.py."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from webhooks.api.views import WebhookDeliveryViewSet, WebhookEndpointViewSet, WebhookSettingsView

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns: list = [
    path("webhook-settings/", WebhookSettingsView.as_view(), name="webhook-settings"),
    *router.urls,
]
