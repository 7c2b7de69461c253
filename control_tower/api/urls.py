"""REST API v1: one router, every resource tenant-scoped."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from carriers.api.views import CarrierViewSet, DeviceViewSet, DriverViewSet, VehicleViewSet
from control_tower.api.views import (
    ApiKeyViewSet,
    InvitationViewSet,
    MembershipViewSet,
    MeView,
    OrganizationView,
)
from exceptions.api.views import AlertViewSet
from tracking.api.ingest_views import (
    DevicePositionViewSet,
    GpxImportView,
    PingIngestView,
    PingViewSet,
)
from tracking.api.proof_views import PodUploadView, ProofOfDeliveryViewSet
from tracking.api.route_planning_views import RoutePlanView
from tracking.api.scan_views import ScanIngestView, ScanViewSet
from tracking.api.views import HubViewSet, RouteViewSet, ShipmentViewSet, StopViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("memberships", MembershipViewSet, basename="membership")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("carriers", CarrierViewSet, basename="carrier")
router.register("drivers", DriverViewSet, basename="driver")
router.register("vehicles", VehicleViewSet, basename="vehicle")
router.register("devices", DeviceViewSet, basename="device")
router.register("hubs", HubViewSet, basename="hub")
router.register("shipments", ShipmentViewSet, basename="shipment")
router.register("routes", RouteViewSet, basename="route")
router.register("stops", StopViewSet, basename="stop")
router.register("positions", DevicePositionViewSet, basename="position")
router.register("pings", PingViewSet, basename="ping")
router.register("pods", ProofOfDeliveryViewSet, basename="pod")
router.register("scans", ScanViewSet, basename="scan")
router.register("alerts", AlertViewSet, basename="alert")

app_name = "api"
urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("organization/", OrganizationView.as_view(), name="organization"),
    path("ingest/pings", PingIngestView.as_view(), name="ingest-pings"),
    path("ingest/gpx", GpxImportView.as_view(), name="ingest-gpx"),
    path("ingest/pod", PodUploadView.as_view(), name="ingest-pod"),
    # Before the router: "plan" is not a route id.
    path("routes/plan/", RoutePlanView.as_view(), name="routes-plan"),
    path("ingest/scans", ScanIngestView.as_view(), name="ingest-scans"),
    path("incidents/", include("exceptions.incident_urls")),
    path("driver/", include("driver_app.api_urls")),
    # The dispatcher console (portal/api/urls.py), before the router: stops/<id>/reassign/.
    path("", include("portal.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("carriers.sla.api.urls")),
    path("", include("carriers.feeds.api.urls")),
    path("", include(router.urls)),
]
