"""Console API: the live map's snapshot and route, stop details, search, streets and
the reassign action. Included by control_tower/api/urls.py before the router, so
`stops/<id>/reassign/` is matched here."""

from django.urls import path

from portal.api.action_views import ReassignView, SearchView, StopDetailsView, StreetsView
from portal.api.snapshot_views import ConsoleRouteView, ConsoleSnapshotView

urlpatterns = [
    # What the map loads first, and a route when it is opened (portal/selectors.py).
    path("console/snapshot/", ConsoleSnapshotView.as_view(), name="console-snapshot"),
    path("console/routes/<int:pk>/", ConsoleRouteView.as_view(), name="console-route"),
    # Details, search, offline streets and the reassign action.
    path("console/stops/<int:pk>/", StopDetailsView.as_view(), name="console-stop"),
    path("console/search/", SearchView.as_view(), name="console-search"),
    path("console/streets/", StreetsView.as_view(), name="console-streets"),
    path("stops/<int:pk>/reassign/", ReassignView.as_view(), name="stop-reassign"),
]
