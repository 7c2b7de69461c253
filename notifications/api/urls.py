"""This app's REST endpoints, included under /api/v1/ by control_tower/api/urls.py."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from notifications.api import views

router = DefaultRouter()
router.include_root_view = False
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register(
    "notification-templates", views.NotificationTemplateViewSet, basename="notification-template"
)
router.register(
    "notification-contacts", views.ContactPreferenceViewSet, basename="notification-contact"
)

urlpatterns = [
    path(
        "shipments/<int:id>/notifications/",
        views.ShipmentNotificationViewSet.as_view({"get": "list"}),
        name="shipment-notifications",
    ),
    path("notification-settings/", views.NotificationSettingsView.as_view()),
    path("notification-triggers/", views.TriggerSettingListView.as_view()),
    path("notification-triggers/<str:trigger>/", views.TriggerSettingDetailView.as_view()),
    path("", include(router.urls)),
]
