"""Console API: the live map's snapshot and route, stop details, search and streets (reassign
is an action of the stops API). Included by control_tower/api/urls.py."""

from django.urls import path

from portal.api.action_views import SearchView, StopDetailsView, StreetsView
from portal.api.snapshot_views import ConsoleRouteView, ConsoleSnapshotView

urlpatterns = [
    # What the map loads first, and a route when it is opened (portal/selectors.py).
    path("console/snapshot/", ConsoleSnapshotView.as_view(), name="console-snapshot"),
    path("console/routes/<int:pk>/", ConsoleRouteView.as_view(), name="console-route"),
    # Details, search and offline streets.
    path("console/stops/<int:pk>/", StopDetailsView.as_view(), name="console-stop"),
    path("console/search/", SearchView.as_view(), name="console-search"),
    path("console/streets/", StreetsView.as_view(), name="console-streets"),
]
